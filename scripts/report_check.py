#!/usr/bin/env python3
"""Open a crome run's HTML report in headless Chromium and check that its plots render.

Checks: the page loads from file:// with no network (plotly.js is embedded), every figure div becomes a rendered
plotly plot with an SVG, the accuracy table is present, the vulnerabilities section and the example counterfactual
pairs (with word diffs and reward tables) are visible, every section says how to read it, and no JavaScript error
is logged. Saves a full-page
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
        vuln = page.locator('#vulnerabilities')
        vuln_ok = vuln.count() == 1 and vuln.is_visible() and (vuln.locator('table').count() == 1 or
                                                               vuln.locator('p.none').count() == 1)
        examples = page.locator('#examples .example')
        n_ex = examples.count()
        ex_ok = n_ex >= 5 and examples.first.is_visible() and page.locator('#examples del, #examples ins').count() > 0
        sections = page.locator('section').count()
        how = page.locator('section p.how').count()
        shot = report.with_suffix('.png'); page.screenshot(path=str(shot), full_page=True)
        if vuln.count(): vuln.screenshot(path=str(report.with_name('report_vulnerabilities.png')))
        if n_ex: page.locator('#examples').screenshot(path=str(report.with_name('report_examples.png')))
        b.close()
    ok = n_figs >= 3 and rendered == n_figs and tables >= 1 and vuln_ok and ex_ok and how == sections and not errors
    print(f'figures {rendered}/{n_figs} rendered, tables {tables}, vulnerabilities visible {vuln_ok}, example pairs {n_ex} '
          f'(visible with diffs {ex_ok}), sections with how-to-read {how}/{sections}, errors {errors or "none"}; '
          f'screenshot {shot} ({time.time() - t0:.1f} s)')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
