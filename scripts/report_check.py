#!/usr/bin/env python3
"""Open a crome run's HTML report in headless Chromium and check that its plots render.

Checks: the page loads from file:// with no network (plotly.js is embedded), every figure div becomes a rendered
plotly plot with an SVG, the accuracy table is present, and no JavaScript error is logged. Saves a full-page
screenshot next to the report (report.png). Needs Debian's chromium and the Python playwright package.
Usage: python scripts/report_check.py [runs/demo/report.html]   (exit 0 when every check passes)"""
import sys, time
from pathlib import Path

ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync']


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    report = Path(argv[0] if argv else 'runs/demo/report.html').resolve()
    if not report.exists(): print(f'no report at {report}: run `crome demo` first'); return 2
    from playwright.sync_api import sync_playwright
    errors, t0 = [], time.time()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path='/usr/bin/chromium', args=ARGS)
        page = b.new_page(viewport={'width': 1280, 'height': 900})
        page.on('pageerror', lambda e: errors.append(str(e)))
        page.route('http*://**', lambda route: (errors.append(f'network request: {route.request.url}'), route.abort()))
        page.goto(report.as_uri())
        n_figs = page.locator('div.fig').count()
        page.wait_for_function('n => document.querySelectorAll(".js-plotly-plot .main-svg").length >= n', arg=n_figs, timeout=60_000)
        rendered = page.locator('.js-plotly-plot').count()
        tables = page.locator('table.tbl').count()
        shot = report.with_suffix('.png'); page.screenshot(path=str(shot), full_page=True)
        b.close()
    ok = n_figs >= 3 and rendered == n_figs and tables >= 1 and not errors
    print(f'figures {rendered}/{n_figs} rendered, tables {tables}, errors {errors or "none"}; screenshot {shot} ({time.time() - t0:.1f} s)')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
