"results_md names, for each results file, only the changed crome/ files that its benchmark script runs."
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / 'benchmarks')]
import results_md  # noqa: E402


def test_imports_reads_every_form_of_crome_import(tmp_path):
    f = tmp_path / 'x.py'
    f.write_text('from . import model\nfrom .packed import a\nimport crome.data as D\nfrom crome import stats\n'
                 'import common\ndef g():\n    from crome.train import x\n')
    assert results_md._imports(f) == {'crome.model', 'crome.packed', 'crome.data', 'crome.stats', 'common',
                                      'crome.train'}


def test_script_files_follow_benchmark_helpers_and_crome_modules():
    score = results_md.script_files('score_speed.py')
    assert {'crome/model.py', 'crome/packed.py', 'crome/encoding.py'} <= score  # packed: through crome.model
    assert 'crome/cli.py' not in score and 'crome/_modidx.py' not in score
    assert 'crome/train.py' in results_md.script_files('device_speed.py')  # through train_speed.py's helpers
    assert results_md.script_files('no_such_script.py') is None


def test_code_changed_keeps_only_files_the_script_runs(monkeypatch):
    class R: returncode, stdout = 0, 'crome/cli.py\ncrome/packed.py\ncrome/_modidx.py\n'
    monkeypatch.setattr(results_md.subprocess, 'run', lambda *a, **k: R)
    assert results_md.code_changed('abc', 'score_speed.py') == ['crome/packed.py']
    assert results_md.code_changed('abc', '?') == ['crome/cli.py', 'crome/packed.py', 'crome/_modidx.py']
    assert results_md.code_changed('', 'score_speed.py') is None


def test_imports_reads_modules_imported_by_name(tmp_path):
    "crome.edits imports its edit families with importlib from a tuple of names: a change there moves the numbers."
    f = tmp_path / 'x.py'
    f.write_text("import importlib\nMODS = ('crome.causal_edits', 'crome.eval_edits')\n"
                 "def load():\n    for m in MODS: importlib.import_module(m)\n")
    assert {'crome.causal_edits', 'crome.eval_edits'} <= results_md._imports(f)
    g = tmp_path / 'y.py'
    g.write_text("import logging\nlog = logging.getLogger('crome.data')\n")  # no import by name: a string only
    assert results_md._imports(g) == {'logging'}
    for script in ('quality.py', 'fidelity.py', 'augment_offline.py'):
        assert {'crome/causal_edits.py', 'crome/minimal_edits.py', 'crome/spurious_edits.py',
                'crome/eval_edits.py'} <= results_md.script_files(script), script
