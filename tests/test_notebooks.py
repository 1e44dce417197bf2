"""Run every notebook in nbs/ as a test (nbdev's executor), so CI prints one pytest line per notebook.

Cells flagged `#| slow` run unless CROME_SKIP_SLOW=1."""
import os
from pathlib import Path
import pytest
from nbdev.test import test_nb as run_nb  # renamed: pytest would collect a bare `test_nb`

NBS = sorted((Path(__file__).resolve().parents[1] / 'nbs').glob('*.ipynb'))
SKIP = ['slow'] if os.environ.get('CROME_SKIP_SLOW') == '1' else []


@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_notebook(nb):
    ok, secs = run_nb(nb, skip_flags=SKIP, basepath=nb.parents[1])
    assert ok, f'{nb.name} failed (traceback above)'
