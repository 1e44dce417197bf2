#!/usr/bin/env python3
"""Real-browser check of the inspect notebook (or of a run opened with `crome inspect`): JupyterLab + headless Chromium.

With --run-dir RUN, the notebook is the one `crome inspect RUN` writes (the pair browser over the finished run's
pairs, scored by its own models, then its reward-shift and robustness figures), so this checks what a user sees
after `crome demo` and `crome inspect runs/demo`.

Starts JupyterLab on 127.0.0.1 (free port, no token, all Jupyter config/data/runtime dirs in a temporary
folder) over a temporary copy of nbs/11_inspect.ipynb (the source notebook is never written; the copy drops the
nbdev_export cell), opens it in
headless Chromium, waits until the kernel is connected and idle, runs all cells, then checks that

  1. every code cell ran and none produced an error output,
  2. the pair browser widget rendered (its filter dropdowns and buttons are in the page),
  3. plotly figures rendered (at least one `.js-plotly-plot`, including the reward-shift figure),
  4. clicking `next` in the page moves the browser to row 2 (a real widget round trip through the kernel),
  5. the notebook saved from JupyterLab does not embed plotly.js and stays under --max-notebook-mb,

and saves screenshots to runs/browser_check/: inspect.png (the demo pair browser with the reward-shift figure
below it), browser.png and shift.png (element shots). The server is stopped with SIGTERM.

Needs Debian's chromium (`apt-get install -y chromium`; never `playwright install`) and the Python
`playwright` package. Exit status 0 when every check passes. Usage: python scripts/browser_check.py [--help]
"""
from __future__ import annotations
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']


def log(msg: str, t0: float = time.time()):
    print(f'[browser_check {time.time() - t0:6.1f}s] {msg}', flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def start_lab(work: Path, port: int) -> subprocess.Popen:
    "JupyterLab on 127.0.0.1:port serving `work`, with every Jupyter dir inside `work/.jupyter`."
    j = work / '.jupyter'
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(j / 'config'), JUPYTER_DATA_DIR=str(j / 'data'), JUPYTER_RUNTIME_DIR=str(j / 'runtime'),
               IPYTHONDIR=str(j / 'ipython'), HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', TRANSFORMERS_OFFLINE='1',
               OMP_WAIT_POLICY='PASSIVE', TOKENIZERS_PARALLELISM='false', TQDM_DISABLE='1',
               **({'CROME_DATA': os.environ['CROME_DATA']} if os.environ.get('CROME_DATA') else {}))
    # the kernel spec lives in the data dir we replace: point it at this interpreter
    ks = j / 'data' / 'kernels' / 'python3'; ks.mkdir(parents=True)
    (ks / 'kernel.json').write_text(json.dumps({'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
                                                'display_name': 'Python 3', 'language': 'python'}))
    notif = j / 'config' / 'lab' / 'user-settings' / '@jupyterlab' / 'apputils-extension'
    notif.mkdir(parents=True)
    (notif / 'notification.jupyterlab-settings').write_text(json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))
    cmd = [sys.executable, '-m', 'jupyter', 'lab', '--ip=127.0.0.1', f'--port={port}', '--no-browser', '--allow-root',
           '--IdentityProvider.token=', '--ServerApp.password=', '--LabApp.news_url=None',
           '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate', '--LabApp.expose_app_in_browser=True',
           f'--ServerApp.root_dir={work}']
    out = open(work / 'jupyter.log', 'w')
    return subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_http(url: str, timeout: float, proc: subprocess.Popen):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None: raise RuntimeError(f'jupyter lab exited with {proc.returncode}')
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200: return
        except OSError: time.sleep(0.5)
    raise TimeoutError(f'{url} did not answer within {timeout} s')


def copy_notebook(src: Path, dst: Path):
    "Copy the notebook without its `nbdev_export` cell (the copy is outside the nbdev project)."
    nb = json.loads(src.read_text(encoding='utf-8'))
    nb['cells'] = [c for c in nb['cells'] if 'nbdev_export' not in ''.join(c.get('source', ''))]
    dst.write_text(json.dumps(nb, indent=1), encoding='utf-8')


KERNEL_READY = '''() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}'''
RUN_STATE = '''() => {
  const w = window.jupyterapp.shell.currentWidget;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  const k = w.sessionContext.session.kernel;
  let errors = [];
  cells.forEach((c, i) => { const o = c.model.outputs;
    for (let j = 0; j < o.length; j++) { const x = o.get(j).toJSON();
      if (x.output_type === 'error') errors.push(`cell ${i}: ${x.ename}: ${x.evalue}`); } });
  return {n: cells.length, ran: cells.filter(c => c.model.executionCount !== null).length,
          busy: document.querySelectorAll('.jp-InputArea-prompt').length > 0 &&
                [...document.querySelectorAll('.jp-InputArea-prompt')].some(p => p.textContent.includes('*')),
          status: k ? k.status : 'none', errors};
}'''


def check(page, args, out: Path) -> list[str]:
    "Run the notebook in the page and return the failed checks."
    fails = []
    page.wait_for_function(KERNEL_READY, timeout=args.kernel_timeout * 1000)
    log('kernel connected and idle; running all cells')
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    end, state = time.time() + args.run_timeout, None
    page.wait_for_timeout(2000)
    while time.time() < end:
        state = page.evaluate(RUN_STATE)
        if state['errors'] or (state['ran'] == state['n'] and state['status'] == 'idle' and not state['busy']): break
        page.wait_for_timeout(1000)
    log(f"cells run: {state['ran']}/{state['n']}, kernel {state['status']}")
    if state['errors']: fails.append('error outputs: ' + '; '.join(state['errors']))
    if state['ran'] != state['n'] or state['busy']: fails.append(f"only {state['ran']} of {state['n']} code cells ran within {args.run_timeout} s")
    page.wait_for_timeout(1500)  # let widget views and figures finish rendering

    browsers = page.locator('.crome-pair-browser')
    n_browsers, n_plots = browsers.count(), page.locator('.js-plotly-plot').count()
    log(f'pair browsers rendered: {n_browsers}, plotly figures rendered: {n_plots}')
    if n_browsers == 0: fails.append('no pair browser widget rendered'); return fails
    if n_plots == 0 and args.expect_figures: fails.append('no plotly figure rendered')
    br = browsers.first
    br.scroll_into_view_if_needed()
    if br.locator('select').count() < 6: fails.append(f"browser shows {br.locator('select').count()} dropdowns, expected 6 (5 filters + model)")
    pos = br.locator('.crome-position')
    page.wait_for_function('(el) => el.innerText.includes("row 1 of")', arg=pos.element_handle(), timeout=15000)
    before = pos.inner_text()
    br.locator('.crome-next button, button.crome-next').first.click()
    try:
        page.wait_for_function('(el) => el.innerText.includes("row 2 of")', arg=pos.element_handle(), timeout=15000)
        log(f'clicked next: "{before.strip()}" -> "{pos.inner_text().strip()}"')
    except Exception:
        fails.append(f'clicking next did not move the browser (position still {pos.inner_text()!r})')
    br.locator('.crome-prev button, button.crome-prev').first.click()
    page.wait_for_function('(el) => el.innerText.includes("row 1 of")', arg=pos.element_handle(), timeout=15000)

    # the cell after the demo browser holds the reward-shift figure: put the browser at the top and shoot
    cells = page.locator('.jp-Notebook .jp-Cell')
    i, j = page.evaluate('''() => { const cs = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
        const i = cs.findIndex(c => c.querySelector('.crome-pair-browser'));
        const j = cs.findIndex((c, k) => k > i && c.querySelector('.js-plotly-plot'));
        return [i, j]; }''')
    shift_plot = cells.nth(j).locator('.js-plotly-plot').first if j > i >= 0 else page.locator('.no-such-element')
    cells.nth(i).evaluate('(el) => el.scrollIntoView({block: "start"})')
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / 'inspect.png'))
    br.screenshot(path=str(out / 'browser.png'))
    if shift_plot.count():
        shift_plot.screenshot(path=str(out / 'shift.png'))
        title = shift_plot.locator('.gtitle').first.text_content() if shift_plot.locator('.gtitle').count() else ''
        log(f'reward-shift figure title: {title!r}')
        if 'Reward shift' not in title: fails.append(f'the figure after the browser is not the reward-shift figure ({title!r})')
        box, vp = shift_plot.bounding_box(), page.viewport_size
        if not box or box['y'] + 100 > vp['height']: fails.append('the reward-shift figure is not in view in inspect.png')
    elif args.expect_figures: fails.append('no plotly figure in the cell after the pair browser')
    if args.all_figures:
        figs = out / 'figures'; figs.mkdir(exist_ok=True)
        plots = page.locator('.js-plotly-plot')
        for k in range(plots.count()):
            plots.nth(k).scroll_into_view_if_needed(); plots.nth(k).screenshot(path=str(figs / f'figure_{k:02d}.png'))
        log(f'saved {plots.count()} figure screenshots to {figs}')
    return fails


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--notebook', default=str(ROOT / 'nbs' / '11_inspect.ipynb'), help='notebook to run (a copy is used)')
    ap.add_argument('--out', default=str(ROOT / 'runs' / 'browser_check'), help='folder for screenshots and the run log')
    ap.add_argument('--port', type=int, default=0, help='server port (0: a free one)')
    ap.add_argument('--chromium', default='/usr/bin/chromium', help='Chromium executable')
    ap.add_argument('--kernel-timeout', type=float, default=90, help='seconds to wait for a connected, idle kernel')
    ap.add_argument('--run-timeout', type=float, default=300, help='seconds to wait for all cells to run')
    ap.add_argument('--max-notebook-mb', type=float, default=3.0, help='largest acceptable size of the saved, executed notebook')
    ap.add_argument('--all-figures', action='store_true', help='also save a screenshot of every plotly figure (figures/)')
    ap.add_argument('--keep', action='store_true', help='keep the temporary folder (server log, executed notebook)')
    ap.add_argument('--run-dir', help='a finished run folder: check the notebook `crome inspect RUN_DIR` writes instead')
    args = ap.parse_args(argv)
    if not Path(args.chromium).exists(): sys.exit(f'{args.chromium} not found: apt-get install -y chromium (never `playwright install`)')
    try: from playwright.sync_api import sync_playwright
    except ImportError: sys.exit('python playwright is missing: pip install playwright (into the project venv)')
    t0 = time.time()
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix='crome_browser_check_'))
    if args.run_dir:
        sys.path.insert(0, str(ROOT))
        from crome.cli import inspect_notebook
        nb = inspect_notebook(args.run_dir, work / 'inspect.ipynb')
    else:
        nb = work / Path(args.notebook).name
        copy_notebook(Path(args.notebook), nb)
    args.expect_figures = 'shift_figure(' in nb.read_text(encoding='utf-8')
    port = args.port or free_port()
    proc = start_lab(work, port)
    fails = []
    try:
        wait_http(f'http://127.0.0.1:{port}/api/status', 60, proc)
        log(f'JupyterLab up on 127.0.0.1:{port}')
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={'width': 1400, 'height': 1500})
            page.goto(f'http://127.0.0.1:{port}/lab/tree/{nb.name}', timeout=60000)
            fails = check(page, args, out)
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            page.wait_for_timeout(2000)
            browser.close()
        mb = nb.stat().st_size / 2 ** 20
        log(f'saved executed notebook: {mb:.2f} MB (JupyterLab\'s plotly extension adds a PNG snapshot per figure)')
        if 'Plotly, Inc.' in nb.read_text(encoding='utf-8'): fails.append('the saved notebook embeds plotly.js (set use_small_renderer())')
        if mb > args.max_notebook_mb: fails.append(f'the executed notebook is {mb:.1f} MB (limit {args.max_notebook_mb} MB)')
    except Exception as e:
        fails.append(f'{type(e).__name__}: {e}')
    finally:
        proc.send_signal(signal.SIGTERM)
        try: proc.wait(timeout=30)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
        shutil.copy(work / 'jupyter.log', out / 'jupyter.log')
        if not args.keep: shutil.rmtree(work, ignore_errors=True)
        else: log(f'kept {work}')
    dt = time.time() - t0
    (out / 'result.json').write_text(json.dumps({'ok': not fails, 'failures': fails, 'seconds': round(dt, 1)}, indent=1))
    for f in fails: print(f'FAIL: {f}', file=sys.stderr)
    log(f"{'PASS' if not fails else 'FAILED'} in {dt:.1f} s; screenshots in {out}")
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main())
