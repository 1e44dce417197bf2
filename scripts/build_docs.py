#!/usr/bin/env python3
"""Build the documentation site without Quarto: every notebook in nbs/ as a static HTML page plus an API reference.

Pages are rendered by nbconvert (lab template) from the notebooks as committed, outputs included (plotly figures
show their static image fallback; see scripts/run_notebooks.py); each page gets a navigation bar. `api.html`
lists every public name of every crome module (from its `__all__`) with its signature, the one-line docstring, the
documented parameters (docments comments) and a link to the notebook that defines it. Output: _docs/ (ignored by
git). With --check, the site is opened in headless Chromium (Debian's /usr/bin/chromium + playwright): every page
loads from file:// with no JavaScript error and no network request, every navigation link resolves, every image
decodes, and the API page lists the public functions; screenshots go to _docs/_check/.

Usage: python scripts/build_docs.py [--out _docs] [--check]
"""
from __future__ import annotations
import argparse, html, importlib, inspect, json, re, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAV_STYLE = ('position:sticky;top:0;z-index:10;background:#f6f8fa;border-bottom:1px solid #ddd;padding:6px 12px;'
             'font:14px system-ui,sans-serif;display:flex;flex-wrap:wrap;gap:4px 12px')
E = html.escape


def notebooks() -> list[Path]:
    nbs = sorted((ROOT / 'nbs').glob('*.ipynb'))
    return [p for p in nbs if p.stem == 'index'] + [p for p in nbs if p.stem != 'index']


def title_of(nb) -> str:
    for c in nb.cells:
        if c.cell_type == 'markdown' and c.source.startswith('# '): return c.source.splitlines()[0][2:].strip()
    return 'notebook'


def nav_html(pages: list[tuple[str, str]], current: str) -> str:
    bold = ' style="font-weight:bold"'
    links = ''.join(f'<a href="{E(f)}"{bold if f == current else ""}>{E(t)}</a>' for f, t in pages)
    return f'<nav class="crome-nav" style="{NAV_STYLE}">{links}</nav>'


def render_notebook(path: Path, nav: str) -> str:
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(path, 4)
    for c in nb.cells:  # drop the nbdev_export cell and nbdev directives from what a reader sees
        if c.cell_type == 'code': c.source = '\n'.join(l for l in c.source.split('\n') if not l.startswith('#|'))
    nb.cells = [c for c in nb.cells if not (c.cell_type == 'code' and ('nbdev_export()' in c.source or not c.source.strip()))]
    body, _ = HTMLExporter(template_name='lab').from_notebook_node(nb)
    return re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav, body, count=1)


def _modules() -> list[str]:
    return sorted(p.stem for p in (ROOT / 'crome').glob('*.py') if not p.stem.startswith('_'))


def _source_nb(mod) -> str | None:
    head = Path(mod.__file__).read_text(encoding='utf-8').split('\n', 4)
    m = next((re.search(r'nbs/([\w.-]+)\.ipynb', l) for l in head if 'nbs/' in l), None)
    return m.group(1) if m else None


def api_html(nav: str) -> str:
    sys.path.insert(0, str(ROOT))
    from fastcore.docments import docments
    parts = ['<h1>API reference</h1><p>Every public name of every crome module, with its signature, summary and '
             'documented parameters. The notebook linked beside each module explains and tests it.</p>']
    for name in _modules():
        try: mod = importlib.import_module(f'crome.{name}')
        except Exception as e:
            parts.append(f'<h2>crome.{E(name)}</h2><p>could not import: {E(repr(e))}</p>'); continue
        nb = _source_nb(mod)
        link = f' <small>(<a href="{E(nb)}.html">{E(nb)}</a>)</small>' if nb else ''
        parts.append(f'<h2 id="{E(name)}">crome.{E(name)}{link}</h2><p>{E((mod.__doc__ or "").strip())}</p><dl>')
        for sym in getattr(mod, '__all__', []):
            obj = getattr(mod, sym, None)
            if obj is None or inspect.ismodule(obj): continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                parts.append(f'<dt><code>{E(sym)}</code></dt><dd>{E(type(obj).__name__)}</dd>'); continue
            try: sig = str(inspect.signature(obj))
            except (TypeError, ValueError): sig = '(...)'
            doc = (inspect.getdoc(obj) or '').split('\n')[0]
            try: params = {k: v for k, v in docments(obj).items() if v and k != 'return'}
            except Exception: params = {}
            plist = ''.join(f'<li><code>{E(k)}</code>: {E(v)}</li>' for k, v in params.items())
            kind = 'class ' if inspect.isclass(obj) else ''
            parts.append(f'<dt id="{E(name)}.{E(sym)}"><code>{kind}<b>{E(sym)}</b>{E(sig)}</code></dt>'
                         f'<dd>{E(doc)}{f"<ul>{plist}</ul>" if plist else ""}</dd>')
        parts.append('</dl>')
    style = ('body{font-family:system-ui,sans-serif;margin:0}main{max-width:1100px;margin:1em auto;padding:0 1em}'
             'dt{margin-top:10px}dd{margin-left:1.5em;color:#333}code{font-size:13px}')
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>crome API reference</title><style>{style}'
            f'</style></head><body>{nav}<main>{"".join(parts)}</main></body></html>')


def build(out: Path) -> list[Path]:
    import nbformat
    out.mkdir(parents=True, exist_ok=True)
    nbs = notebooks()
    pages = [(('index' if p.stem == 'index' else p.stem) + '.html', 'crome' if p.stem == 'index' else
              f'{p.stem.split("_")[0]} {title_of(nbformat.read(p, 4))}') for p in nbs] + [('api.html', 'API')]
    written = []
    for p, (fname, _) in zip(nbs, pages):
        (out / fname).write_text(render_notebook(p, nav_html(pages, fname)), encoding='utf-8'); written.append(out / fname)
    (out / 'api.html').write_text(api_html(nav_html(pages, 'api.html')), encoding='utf-8'); written.append(out / 'api.html')
    return written


CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']


def check(out: Path, pages: list[Path]) -> list[str]:
    "Open every page in headless Chromium; return the failed checks."
    from playwright.sync_api import sync_playwright
    fails, shots = [], out / '_check'
    shots.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path='/usr/bin/chromium', args=CHROMIUM_ARGS)
        page = b.new_page(viewport={'width': 1280, 'height': 900})
        errors = []
        page.on('pageerror', lambda e: errors.append(str(e)))
        page.route('http*://**', lambda route: (errors.append(f'network request {route.request.url}'), route.abort()))
        for p in pages:
            errors.clear()
            page.goto(p.as_uri()); page.wait_for_load_state('load')
            links = page.eval_on_selector_all('nav.crome-nav a', 'as => as.map(a => a.getAttribute("href"))')
            missing = [h for h in links if not (out / h).exists()]
            bad_imgs = page.eval_on_selector_all('img', 'is => is.filter(i => !i.complete || i.naturalWidth === 0)'
                                                      '.map(i => (i.src || "").slice(0, 40))')
            if missing: fails.append(f'{p.name}: navigation links to missing pages {missing}')
            if bad_imgs: fails.append(f'{p.name}: {len(bad_imgs)} images do not decode')
            if errors: fails.append(f'{p.name}: {errors[:3]}')
            if p.name in ('index.html', 'api.html', '11a_figures.html', '11b_report.html',
                          '11d_train_figures.html'):
                page.screenshot(path=str(shots / p.with_suffix('.png').name))
        page.goto((out / 'api.html').as_uri())
        for name in ('load_pairs', 'PairBrowser', 'build_report', 'fetch_data', 'run'):
            if page.locator(f'dt:has-text("{name}")').count() == 0: fails.append(f'api.html does not list {name}')
        b.close()
    return fails


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default=str(ROOT / '_docs'), help='output folder (default _docs/)')
    ap.add_argument('--check', action='store_true', help='open the site in headless Chromium and check it')
    a = ap.parse_args(argv)
    t0, out = time.time(), Path(a.out)
    pages = build(out)
    print(f'{len(pages)} pages -> {out} ({time.time() - t0:.1f} s); open {out / "index.html"}')
    if not a.check: return 0
    fails = check(out, pages)
    print('docs check: ' + ('PASS' if not fails else 'FAIL\n  ' + '\n  '.join(fails)) + f'; screenshots in {out / "_check"}')
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main())
