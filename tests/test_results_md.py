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


def test_share_needed_is_what_the_measured_speedup_implies():
    "speedup = ceiling x crome share / pipeline share holds in the committed file, so the share needed for 2x is exact."
    import json
    s = json.loads((ROOT / 'benchmarks' / 'results' / 'score_speed.json').read_text())
    for v in s['distributions'].values():
        crome, need = v['share_of_peak_crome'], results_md.share_needed(v)
        assert abs(v['speedup_same_batch'] * need / crome - 2) < 1e-6
    v = {'share_of_peak': {'pipeline_bs32': {'executed': 0.57}}, 'speedup_bound_equal_efficiency': 1.5}
    assert abs(results_md.share_needed(v) - 0.76) < 1e-12 and results_md.share_needed({}) is None


def test_speed_names_the_share_a_missed_goal_needs():
    v = {'texts_per_s': {'crome': 30.0, 'pipeline_bs32': 20.0}, 'speedup_same_batch': 1.5, 'speedup_vs_bs1': 1.6,
         'max_abs_diff_vs_pipeline_same_batch': 3e-6, 'share_of_peak_crome': 0.6,
         'speedup_bound_equal_efficiency': 1.25,
         'share_of_peak': {'pipeline_bs32': {'executed': 0.5}}, 'peak_probe_after': {'flops_per_s': 2e11}}
    s = {'distributions': {'long': v, 'mixed': {**v, 'speedup_same_batch': 2.5}}, 'config': {'batch': 32},
         'commit': 'abc', 'command': 'score_speed.py', 'seeds': [0], 'device': 'cpu', 'peak_probe_start':
         {'flops_per_s': 2e11}, 'peak_probe_end': {'flops_per_s': 2e11}, 'bf16': 'skipped'}
    text = '\n'.join(results_md.speed(None, s))
    assert 'long: **not met** (2x needs crome at 80% of the matmul peak, now 60%)' in text
    assert 'mixed: met;' not in text and 'mixed: met.' in text


def test_speed_goal_reads_the_interval_of_paired_rounds():
    lo_hi = results_md.ratio_interval([2.0, 4.0], [1.0, 1.0])  # logs ln2, ln4: mean ln(2.83), se ln(2)/2, t(1) 12.706
    assert abs(lo_hi[0] - 8 ** 0.5) < 1e-12 and abs(lo_hi[1] - 8 ** 0.5 * 2 ** (-12.706 / 2)) < 1e-9
    assert results_md.ratio_interval([1.0], [1.0]) is None
    v = lambda r: {'seconds_all_reps': {'pipeline_bs32': list(r), 'crome': [1.0] * len(r)}}
    assert results_md.speed_goal(v([3.0, 3.1, 2.9]), 'pipeline_bs32').startswith('met (3.00x [')
    assert results_md.speed_goal(v([1.5, 1.6, 1.55]), 'pipeline_bs32').startswith('**not met** (1.55x [')
    assert results_md.speed_goal(v([1.8, 2.3, 2.0]), 'pipeline_bs32').startswith('**undecided** (')
    assert results_md.speed_goal({'speedup_same_batch': 1.9}, 'pipeline_bs32') == '**not met**'  # no rounds: medians
    assert results_md.speed_goal({'speedup_vs_best_pipeline': 2.1}, 'pipeline_sorted') == 'met'


def test_testbed_baselines_pairs_only_matching_units_and_says_what_clean_accuracy_shows():
    "The testbed's untrained baselines: paired with part A only on the same units; the summary line names the task."
    import numpy as np, pandas as pd
    import testbed_baselines as tb
    unit = lambda task, recipe, cue, seed, c, r: dict(task=task, recipe=recipe, cue=cue, seed=seed,
                                                      clean_correct=np.array(c), reversed_correct=np.array(r))
    V = pd.DataFrame([unit('t', 'cosine', k, s, [1, 1, 0, 1] * 25, [1, 0, 0, 1] * 25)
                      for k in ('a', 'b') for s in (0, 1)])
    Q = pd.DataFrame([unit('t', 'crome', k, s, [1] * 100, [1, 1, 1, 0] * 25) for k in ('a', 'b') for s in (0, 1)]
                     + [unit('t', 'rrm', k, s, [1] * 99, [1] * 99) for k in ('a', 'b') for s in (0, 1)])
    vs = tb.versus_cosine(V, Q, n_boot=200)
    crome = [r for r in vs if r['recipe'] == 'crome']
    assert [round(r['diff'], 3) for r in crome] == [0.25, 0.25] and all(r['low'] > 0 for r in crome)
    assert [r.get('note') for r in vs if r['recipe'] == 'rrm'] == ['other units or pair counts than this run: '
                                                                   'not paired'] * 2  # 99 pairs, not 100
    S = tb.summarise(V, n_boot=200)
    assert (S[0]['rule'], S[0]['clean'], S[0]['reversed'], S[0]['pairs']) == ('cosine', 0.75, 0.5, 400)
    b = dict(commit='abc', seeds=[0, 1], summary=S, config={'quality_commit': 'def'},
             versus_cosine=[r for r in vs if r['recipe'] == 'crome'])
    text = '\n'.join(results_md.testbed_baselines(b))
    assert '| t | cosine (untrained) | 0.750 [' in text and '- t, clean: crome - cosine +0.250 [' in text
    assert '_t: Crome significantly above the untrained cosine rule on clean pairs._' in text
    b['versus_cosine'] = [dict(r, low=-0.1) for r in b['versus_cosine']]
    assert 'no trained recipe is above the untrained cosine rule' in '\n'.join(results_md.testbed_baselines(b))
    # below chance (excluded_item): beating the cosine rule is not enough, the clean interval must clear 0.5
    b['summary'] = [dict(S[0], clean=0.02, clean_low=0.01, clean_high=0.03)]
    b['versus_cosine'] = [dict(r, low=0.3) for r in b['versus_cosine']]
    q = {'testbed_summary': [dict(task='t', recipe='crome', clean=0.6, clean_low=0.55, clean_high=0.65)]}
    text = '\n'.join(results_md.testbed_baselines(b, q))
    assert '_t: the cosine rule is below chance here (0.020 clean' in text and 'above 0.5 as well: Crome._' in text
    q['testbed_summary'][0]['clean_low'] = 0.45
    assert 'above 0.5 as well: none does._' in '\n'.join(results_md.testbed_baselines(b, q))
