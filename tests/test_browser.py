"""Real-browser checks (headless Debian chromium + playwright): the inspect notebook in JupyterLab, and a run's
HTML report. Skipped, with the reason, where chromium or playwright is missing (.ci/run installs chromium)."""
import shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import needs_data

ROOT = Path(__file__).resolve().parents[1]
try:
    import playwright  # noqa: F401
    HAVE_PW = True
except ImportError:
    HAVE_PW = False
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (Path('/usr/bin/chromium').exists() and HAVE_PW),
                                 reason='needs /usr/bin/chromium (apt-get install -y chromium) and the playwright package')]


@needs_data  # the notebook's hh-rlhf cells read the public data set
def test_inspect_notebook_in_jupyterlab():
    r = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'browser_check.py')], capture_output=True, text=True, timeout=420, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (ROOT / 'runs' / 'browser_check' / 'inspect.png').stat().st_size > 50_000


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    from crome.pipeline import run
    d = tmp_path_factory.mktemp('runs')
    return run({'name': 'rep', 'out_dir': str(d / 'rep'), 'data': {'n': 200}, 'train': {'steps': 20, 'batch_size': 32},
                'evaluate': {'max_pairs': 12}})


def test_report_renders_in_chromium(demo_run):
    res = demo_run
    r = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'report_check.py'), str(res['report'])], capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'errors none' in r.stdout and 'vulnerabilities visible True' in r.stdout and 'visible with diffs True' in r.stdout
    assert res['report'].with_suffix('.png').exists() and res['report'].with_name('report_examples.png').exists()


def test_inspector_on_a_finished_run_in_jupyterlab(demo_run, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'browser_check.py'), '--run-dir', str(demo_run['dir']),
                        '--out', str(tmp_path / 'shots')], capture_output=True, text=True, timeout=420, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / 'shots' / 'inspect.png').stat().st_size > 50_000
