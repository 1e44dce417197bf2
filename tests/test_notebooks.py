"""Run every notebook in nbs/ as a test (nbdev's executor), so CI prints one pytest line per notebook.

Cells flagged `#| slow` run unless CROME_SKIP_SLOW=1. Cells flagged `#| data` read the public data sets (or use what
such a cell defined): they run when the data is there (conftest.HAVE_DATA) and are skipped, with the rest of their
notebook still run, when it is not (CI)."""
import json, os, re
from pathlib import Path
import pytest
from nbdev.test import test_nb as run_nb  # renamed: pytest would collect a bare `test_nb`
from conftest import HAVE_DATA, REAL_DATA

NBS = sorted((Path(__file__).resolve().parents[1] / 'nbs').glob('*.ipynb'))
SKIP = (['slow'] if os.environ.get('CROME_SKIP_SLOW') == '1' else []) + ([] if HAVE_DATA else ['data'])


@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_notebook(nb):
    ok, secs = run_nb(nb, skip_flags=SKIP, basepath=nb.parents[1])
    assert ok, f'{nb.name} failed (traceback above)'


def test_cells_reading_the_data_are_flagged():
    "A test cell that calls a loader on the data folder carries `#| data`, so CI (no data) skips it, not the notebook."
    def directives(s): return {m[1] for ln in s.splitlines() if (m := re.match(r'#\|\s*(\w+)', ln))}
    bad = [f'{p.name}: {s.splitlines()[0][:60]!r}' for p in NBS for c in json.loads(p.read_text())['cells']
           if c['cell_type'] == 'code' for s in [''.join(c['source'])]
           if REAL_DATA.search(s) and not {'export', 'exports', 'data'} & directives(s)]
    assert not bad, 'add `#| data` to these cells (first line): ' + '; '.join(bad)
