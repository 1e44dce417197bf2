#!/usr/bin/env python3
"""Re-execute notebooks in place so that they read as documentation: small, deterministic outputs.

Each notebook runs top to bottom in a fresh python3 kernel (cwd nbs/, offline, one thread, TQDM disabled,
PYTHONHASHSEED=0). The `nbdev_export` cell is not run; `#| slow` cells run unless --skip-slow (then they keep no
output). Afterwards the outputs are made small and stable:

  - absolute paths (the data folder, temporary folders, the checkout) become placeholders (`$CROME_DATA`, `<tmp>`, `.`),
  - progress bars (tqdm on stderr, progress widgets) are dropped, long text is cut to --max-lines lines,
  - a plotly figure keeps its JSON (interactive in JupyterLab) and gets a static image fallback (JPEG) rendered by
    plotly.js in headless Chromium (`/usr/bin/chromium` + the playwright package), which is what git hosts and
    the static docs show; the HTML that loads plotly.js from a CDN is dropped,
  - `nbdev_clean` then strips execution counts and metadata (run it after this script, as always).

--check executes copies only and exits 1 if any cell fails (for CI). Usage:
  python scripts/run_notebooks.py nbs/11b_report.ipynb [more ...] [--skip-slow] [--check]
"""
from __future__ import annotations
import argparse, base64, copy, json, os, re, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLOTLY = 'application/vnd.plotly.v1+json'
CHROMIUM = '/usr/bin/chromium'
ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync']


def kernel_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', TRANSFORMERS_OFFLINE='1', TQDM_DISABLE='1',
               OMP_NUM_THREADS='1', OMP_WAIT_POLICY='PASSIVE', TOKENIZERS_PARALLELISM='false', PYTHONHASHSEED='0',
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return env


def skip_cell(src: str, skip_slow: bool) -> bool:
    return 'nbdev_export()' in src or '#| eval: false' in src or (skip_slow and '#| slow' in src)


def execute(path: Path, skip_slow: bool, timeout: int):
    "Run a copy of the notebook (skipped cells emptied); return (executed copy, error or None)."
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    nb = nbformat.read(path, 4)
    run = copy.deepcopy(nb)
    for c in run.cells:
        if c.cell_type == 'code' and skip_cell(c.source, skip_slow): c.source = ''
    old = dict(os.environ)
    os.environ.update(kernel_env())
    try:
        client = NotebookClient(run, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}})
        try: client.execute(); err = None
        except CellExecutionError as e: err = str(e).splitlines()[-1] if str(e) else 'cell failed'
    finally:
        os.environ.clear(); os.environ.update(old)
    for c, r in zip(nb.cells, run.cells):
        if c.cell_type == 'code': c.outputs = r.outputs if r.source else []
    return nb, err


def _subs() -> list[tuple[re.Pattern, str]]:
    out = []
    data = os.environ.get('CROME_DATA')
    if data: out.append((re.compile(re.escape(str(Path(data).resolve()))), '$CROME_DATA'))
    out.append((re.compile(re.escape(str(ROOT))), '.'))
    out.append((re.compile(re.escape(tempfile.gettempdir()) + r'/[\w.-]+'), '<tmp>'))
    out.append((re.compile(r'/(?:work|home|root)/[\w./-]*shared/data'), '$CROME_DATA'))
    return out


def clean_text(s: str, subs, max_lines: int) -> str:
    for pat, rep in subs: s = pat.sub(rep, s)
    lines = s.split('\n')
    if len(lines) > max_lines: lines = lines[:max_lines] + [f'... ({len(lines) - max_lines} more lines)']
    return '\n'.join(lines)


def clean_outputs(nb, max_lines: int) -> list[dict]:
    "Make outputs small and stable; return the plotly figures that need a PNG (output dicts)."
    subs, figs = _subs(), []
    for c in nb.cells:
        if c.cell_type != 'code': continue
        keep = []
        for o in c.outputs:
            if o.output_type == 'stream':
                if o.name == 'stderr' and ('it/s]' in o.text or 's/it]' in o.text or '%|' in o.text): continue
                o.text = clean_text(o.text, subs, max_lines)
            elif o.output_type in ('display_data', 'execute_result'):
                d = o.data
                if 'application/vnd.jupyter.widget-view+json' in d and 'text/plain' in d and \
                        re.search(r'(?i)progress|HBox\(children=\(HTML', d['text/plain']):
                    continue  # a progress widget
                if PLOTLY in d:
                    d.pop('text/html', None)
                    figs.append(o)
                for k in ('text/plain', 'text/html', 'text/markdown'):
                    if k in d: d[k] = clean_text(d[k] if isinstance(d[k], str) else ''.join(d[k]), subs,
                                                 max_lines if k == 'text/plain' else 10 * max_lines)
            elif o.output_type == 'error':
                o.traceback = [clean_text(t, subs, max_lines) for t in o.traceback]
            keep.append(o)
        c.outputs = keep
    return figs


TO_JPEG = """async ([f, w, h]) => {
  const png = await Plotly.toImage({data: f.data, layout: f.layout}, {format: 'png', width: w, height: h, scale: 1});
  const img = new Image(); img.src = png; await img.decode();
  const c = document.createElement('canvas'); c.width = w; c.height = h;
  const x = c.getContext('2d'); x.fillStyle = '#fff'; x.fillRect(0, 0, w, h); x.drawImage(img, 0, 0);
  return c.toDataURL('image/jpeg', 0.8);
}"""  # JPEG at 0.8: a third of the PNG's size, still sharp enough for a chart

PAGE = '<html><head><meta charset="utf-8"><script>{js}</script></head><body><div id="f"></div></body></html>'


def add_png(figs: list, width: int = 860) -> int:
    "Render each plotly output's figure to a JPEG fallback in headless Chromium; returns how many got one."
    if not figs or not Path(CHROMIUM).exists(): return 0
    try: from playwright.sync_api import sync_playwright
    except ImportError: return 0
    import plotly
    js = (Path(plotly.__file__).parent / 'package_data' / 'plotly.min.js').read_text(encoding='utf-8')
    page_file = Path(tempfile.mkdtemp()) / 'plotly.html'
    page_file.write_text(PAGE.format(js=js), encoding='utf-8')
    n = 0
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = b.new_page()
        page.route('http*://**', lambda route: route.abort())
        page.goto(page_file.as_uri())
        for o in figs:
            fig = o.data[PLOTLY]
            fig = json.loads(fig) if isinstance(fig, str) else fig
            h = int((fig.get('layout') or {}).get('height') or 450)
            url = page.evaluate(TO_JPEG, [fig, width, h])
            o.data['image/jpeg'] = url.split(',', 1)[1]
            n += 1
        b.close()
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('notebooks', nargs='+', help='notebooks to re-execute in place')
    ap.add_argument('--skip-slow', action='store_true', help='do not run `#| slow` cells (they keep no output)')
    ap.add_argument('--check', action='store_true', help='execute only; write nothing; exit 1 if a cell fails')
    ap.add_argument('--timeout', type=int, default=900, help='seconds per cell')
    ap.add_argument('--max-lines', type=int, default=40, help='longest text output kept, in lines')
    ap.add_argument('--no-png', action='store_true', help='no static image fallback for plotly figures')
    a = ap.parse_args(argv)
    import nbformat
    failed = []
    for p in map(Path, a.notebooks):
        t0 = time.time()
        nb, err = execute(p.resolve(), a.skip_slow, a.timeout)
        if err: failed.append(p.name); print(f'{p.name}: FAILED ({err})'); continue
        if a.check: print(f'{p.name}: ok ({time.time() - t0:.1f} s)'); continue
        figs = clean_outputs(nb, a.max_lines)
        pngs = 0 if a.no_png else add_png(figs)
        nbformat.write(nb, p)
        print(f'{p.name}: ok ({time.time() - t0:.1f} s), {len(figs)} plotly figures, {pngs} image fallbacks, '
              f'{p.stat().st_size / 1024:.0f} KB')
    if failed: print(f'failed: {", ".join(failed)}'); return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
