"""results_md: for each results file only the changed crome/ files its script runs are named; speed and device ratios
carry their per-round intervals or say they have none; odd file shapes render or fail by name; RESULTS.md is current."""
import difflib, re, statistics, subprocess, sys
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
        crome, need = v['share_of_peak_crome'], results_md.share_needed(v, 'pipeline_bs32')
        assert abs(v['speedup_same_batch'] * need / crome - 2) < 1e-6
    v = {'share_of_peak': {'pipeline_bs32': {'executed': 0.57}}, 'speedup_bound_equal_efficiency': 1.5}
    assert abs(results_md.share_needed(v, 'pipeline_bs32') - 0.76) < 1e-12
    assert results_md.share_needed({}, 'pipeline_bs32') is None and results_md.share_needed(v, 'pipeline_bs16') is None


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


def _score_file(batch: int) -> dict:
    "A score_speed.py file at --batch `batch`: its pipeline contender is named pipeline_bs{batch}."
    B = f'pipeline_bs{batch}'
    v = {'texts_per_s': {'crome': 30.0, B: 20.0}, 'speedup_same_batch': 1.5, 'speedup_vs_bs1': 1.6,
         'max_abs_diff_vs_pipeline_same_batch': 3e-6, 'share_of_peak_crome': 0.6, 'speedup_bound_equal_efficiency': 1.25,
         'share_of_peak': {B: {'executed': 0.5}}, 'peak_probe_after': {'flops_per_s': 2e11},
         'seconds_all_reps': {B: [3.0, 3.1, 2.9], 'crome': [1.0, 1.0, 1.0]}}
    return {'distributions': {'mixed': v}, 'config': {'batch': batch}, 'commit': 'abc', 'command': 'score_speed.py',
            'seeds': [0], 'device': 'cpu', 'peak_probe_start': {'flops_per_s': 2e11},
            'peak_probe_end': {'flops_per_s': 2e11}, 'bf16': 'skipped'}


def test_speed_reads_the_pipeline_of_the_files_own_batch():
    "Review: `score_speed.py --batch 16` wrote pipeline_bs16 and results_md read pipeline_bs32 (KeyError)."
    text = '\n'.join(results_md.speed(None, _score_file(16)))
    assert 'Scoring vs a transformers `pipeline` (batch 16)' in text and '| mixed | 30.0 | 20.0 | 1.50x |' in text
    assert 'mixed: met (3.00x [' in text and '| 50% |' in text  # the goal and the pipeline's share read bs16
    assert results_md.speed_goal({'speedup_same_batch': 2.5}, 'pipeline_bs16') == 'met'


def _run(pps: float, rounds: list | None = None) -> dict:
    r = {'config': {'batch_size': 64, 'max_length': 256}, 'pairs_per_s': pps, 'nonpad_tokens_per_s': 100.0 * pps,
         'share_of_probe_peak': 0.02, 'mfu_nominal': 0.01}
    return r | ({'repeats': [{'round': k, 'pairs_per_s': x} for k, x in enumerate(rounds)]} if rounds else {})


def _device_file(packed, padded, scoring: dict | None = None, **kw) -> dict:
    "A device_speed.py training file: single runs (numbers) or rounds (lists)."
    one = lambda x: _run(statistics.median(x), x) if isinstance(x, list) else _run(x)
    sc = scoring or {'texts': 4096, 'batch': 64, 'texts_per_s': {'crome': 2000.0, 'pipeline': 1000.0},
                     'speedup_same_batch': 2.0, 'max_abs_diff_untruncated': 1e-7}
    return {'commit': 'abc', 'command': 'device_speed.py', 'seeds': [0], 'device': 'NVIDIA H200', 'wall_s': 90,
            'device_name': 'NVIDIA H200', 'cuda': '13.0', 'versions': {'torch': '2', 'transformers': '5'},
            'peak_probe_flops_per_s': {'bfloat16': 6.8e14}, 'config': {'batch': 64}, 'quick': False,
            'runs': {'minilm_packed': one(packed), 'minilm_padded': one(padded)}, 'scoring': sc, **kw}


def _scoring_only(rounds: bool) -> dict:
    v = {'texts_kind': 'mixed (all lengths)', 'texts': 1536, 'batch': 64, 'tokenizers_parallelism': False,
         'texts_per_s': {'crome': 1200.0, 'pipeline': 800.0, 'pipeline_sorted': 1000.0}, 'speedup_same_batch': 1.5,
         'encode_s': 0.5, 'crome_s': 1.3, 'max_abs_diff_untruncated': 1e-7}
    if rounds: v |= {'rounds': 3, 'seconds_all_rounds': {'crome': [1.0, 1.1, 0.9], 'pipeline': [1.5, 1.6, 1.4],
                                                          'pipeline_sorted': [1.0, 1.2, 0.95]}}
    d = _device_file(1.0, 1.0, scoring_variants=[v])
    del d['scoring']
    return d | {'runs': {}}


def test_device_labels_single_runs_and_gives_rounds_their_interval():
    "Review: single-shot GPU ratios (packed first, no warm-up) read as rankings, e.g. packed 0.96x as 'slower'."
    old = '\n'.join(results_md.device({'a.json': _device_file(1000.0, 1040.0)}))
    assert 'a.json: 0.96x (single run)' in old and "0.96x in `a.json` is not 'slower'" in old
    assert '(2.00x, single round)' in old and 'do not rank crome against the pipeline' in old
    sc = {'texts': 4096, 'batch': 64, 'rounds': 3, 'max_abs_diff_untruncated': 1e-7, 'speedup_same_batch': 1.5,
          'texts_per_s': {'crome': 2000.0, 'pipeline': 1000.0, 'pipeline_sorted': 1800.0},
          'seconds_all_rounds': {'crome': [1.0, 1.0, 1.0], 'pipeline': [2.0, 2.1, 1.9], 'pipeline_sorted': [1.0, 1.2, 0.9]}}
    new = '\n'.join(results_md.device({'b.json': _device_file([1000.0, 1010.0, 990.0], [1040.0, 1000.0, 1010.0], sc)}))
    assert 'b.json: 0.98x [0.92, 1.05] (interval includes 1: no ranking), 3 rounds' in new and 'single run' not in new
    assert ('crome over the pipeline 2.00x [1.76, 2.26], over the sorted pipeline 1.03x [0.71, 1.47] (interval '
            'includes 1: no ranking), 3 rounds') in new and 'single round' not in new
    far = '\n'.join(results_md.device({'c.json': _device_file([1300.0, 1320.0, 1310.0], [1000.0, 1005.0, 995.0])}))
    assert 'c.json: 1.31x [' in far and 'no ranking' not in far.split('Packed over padded')[1].split('\n')[0]


def test_device_routes_a_scoring_only_file_and_names_a_quick_one():
    "Review: a --scoring-only file at a training file's path raised KeyError 'scoring'; a --quick file showed as GPU."
    text = '\n'.join(results_md.device({'device_speed.json': _scoring_only(rounds=True)}))
    assert 'Scoring alone: _`results/device_speed.json`, written by' in text and '| mixed (all lengths): 1536 | 64 | off |' in text
    assert 'Medians of 3 alternating rounds' in text and '1.50x [' in text and 'speedup vs sorted pipeline' in text
    old = '\n'.join(results_md.device({'device_scoring.json': _scoring_only(rounds=False)}))
    assert '_Each row is a single timed round' in old and 'sorted pipeline' not in old.split('|---')[0]
    quick = _device_file(5.0, 4.0, quick=True, device_name='cpu')
    text = '\n'.join(results_md.device({'device_speed.json': quick}))
    assert '_`device_speed.json` is not shown: it is a `--quick` check of the script' in text
    assert '| device_speed.json |' not in text and 'Packed over padded' not in text
    cpu = '\n'.join(results_md.device({'x.json': _device_file(5.0, 4.0, device_name='cpu'),
                                        'g.json': _device_file(5.0, 4.0)}))
    assert 'x.json` is not shown: it is measured on a CPU' in cpu and '| g.json | minilm_packed |' in cpu
    import pytest
    with pytest.raises(ValueError, match='y.json: neither a training file'):
        results_md.device({'y.json': {'quick': False, 'device_name': 'NVIDIA H200', 'runs': {}}})


def test_train_speed_ratios_are_per_round_with_their_interval():
    "Review: crome / TRL ratios were medians over 3 rounds without an interval, unlike score_speed's."
    import json
    t = json.loads((ROOT / 'benchmarks' / 'results' / 'train_speed.json').read_text())
    text = '\n'.join(results_md.speed(t, None))
    assert ('without length grouping 2.43x [2.16, 2.73]; with it (both trainers grouped) 1.89x [1.39, 2.58]; with '
            "crome's packed forward off (the like-for-like padded comparison) 1.15x [0.87, 1.51] (interval includes 1: "
            'no ranking).') in text
    assert '1.80x' not in text and text.count('no ranking') == 1  # 1.80x: the ratio of medians, not per round
    trl = {r['round']: r['pairs_per_s'] for r in t['runs']['trl:on']['repeats']}
    for r in t['runs']['crome:on']['repeats']: r['pairs_per_s'] = trl[r['round']] * (0.9, 1.1, 1.0)[r['round']]
    text = results_md.train_ratios(t, 3)
    assert 'with it (both trainers grouped) 1.00x [0.' in text and '] (interval includes 1: no ranking); with' in text
    assert text.count('no ranking') == 2  # and the padded one's, as in the file; the ungrouped lies above 1
    for r in t['runs'].values(): r.pop('repeats')
    assert results_md.train_ratios(t, 0).startswith('crome / TRL pairs/s (ratio of medians, no interval')


def test_testbed_baselines_says_when_no_recipe_is_paired():
    "Review: every versus_cosine row unpaired (only 'note') raised AttributeError 'verdict'."
    S = [dict(task='t', rule='cosine', clean=0.75, clean_low=0.7, clean_high=0.8, reversed=0.5, reversed_low=0.45,
              reversed_high=0.55)]
    V = [dict(task='t', split=s, recipe='crome', note='other units or pair counts than this run: not paired')
         for s in ('clean', 'reversed')]
    b = dict(commit='abc', seeds=[0], summary=S, config={'quality_commit': 'def'}, versus_cosine=V)
    text = '\n'.join(results_md.testbed_baselines(b))
    assert '- t, clean: crome: other units or pair counts than this run: not paired' in text
    assert "_No trained recipe is paired with the cosine rule" in text and 'significantly above' not in text


CHANGED = re.compile(r' \((?:code changed since: .*?, which it runs, differs? between `\w+` and HEAD when this file was '
                     r'written|whether crome/ changed since cannot be told: commit unknown to git)\)')


def test_regenerating_results_md_from_the_committed_json_matches_the_committed_file(tmp_path):
    """RESULTS.md is generated: regenerating it from the committed JSON gives the committed file, except the notes of
    which crome/ files changed since each results commit (they move with every commit)."""
    out = tmp_path / 'RESULTS.md'
    r = subprocess.run([sys.executable, 'results_md.py', '--out', str(out)], cwd=ROOT / 'benchmarks',
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    norm = lambda f: [CHANGED.sub('', x) for x in f.read_text().splitlines()]
    diff = list(difflib.unified_diff(norm(ROOT / 'benchmarks' / 'results' / 'RESULTS.md'), norm(out), 'committed',
                                     'regenerated', n=0, lineterm=''))
    assert not diff, ('RESULTS.md is stale: run `cd benchmarks && python results_md.py`\n'
                      + '\n'.join(x[:200] for x in diff[:12]))


def test_changed_note_pattern_removes_only_the_note():
    a = results_md.changed_note('abcdef1234567', ['crome/a.py', 'crome/b.py'])
    assert CHANGED.sub('', f'_x at commit `y`{a}; seeds 0._') == '_x at commit `y`; seeds 0._'
    assert CHANGED.sub('', results_md.changed_note('?', None)) == ''


def test_untracked_result_files_do_not_mark_a_run_dirty(monkeypatch):
    "A results JSON or log an earlier benchmark wrote beside its script is output, not code; any other change is dirty."
    import common
    for status, want in [('', False), ('?? benchmarks/q.json\n?? benchmarks/tb.json\n?? benchmarks/q.log', False),
                         ('?? benchmarks/q.log.py', True), ('?? crome/notes.log', False),
                         ('?? benchmarks/new_helper.py', True), (' M crome/data.py', True),
                         ('M  benchmarks/results/quality.json', True)]:
        monkeypatch.setattr(common, 'git', lambda *a, s=status: s)
        assert common.dirty() is want, status
