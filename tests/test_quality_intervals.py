"""benchmarks/quality.py: the intervals a results file reports can be recomputed from its stored per-pair verdicts
(`--resummarise`), and the testbed resamples the pairs a seed's cue kinds share once."""
import json, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / 'benchmarks')]
quality = pytest.importorskip('quality')
from crome.evaluate import save_results  # noqa: E402
from crome.stats import bootstrap_ci  # noqa: E402

RECIPES, CUES, SEEDS = ('vanilla', 'rrm', 'crome'), ('signoff', 'markdown'), (0, 1, 2)


def fake_testbed(seed: int = 0) -> pd.DataFrame:
    "Per (task, seed) its own pairs (lengths differ by seed) shared by the cue kinds; per-pair difficulty."
    rng, rows = np.random.default_rng(seed), []
    for task in ('relevance', 'requested_item'):
        for s in SEEDS:
            p = rng.beta(0.3, 0.3, 40 + s)  # one chance per pair, shared by cues and recipes
            for cue in CUES:
                for r in RECIPES:
                    rows.append(dict(task=task, recipe=r, cue=cue, seed=s, split='test', flip_share=rng.random(),
                                     n_kept=10.0, clean_correct=(rng.random(len(p)) < p).astype(int).tolist(),
                                     reversed_correct=(rng.random(len(p)) < p / 2).astype(int).tolist()))
    return pd.DataFrame(rows)


def test_testbed_keys_are_seeds_and_resummarise_reproduces(tmp_path):
    A = fake_testbed()
    g = A[(A.task == 'relevance') & (A.recipe == 'crome')]
    assert quality._pair_keys(g) == [0, 1, 2, 0, 1, 2]  # sorted by (cue, seed): a seed's cues share its pairs
    with pytest.raises(ValueError, match='same length'):  # keyed by cue, arrays of different seeds would be mixed
        bootstrap_ci(quality._units(g, 'clean_correct'), pairs=['markdown'] * 3 + ['signoff'] * 3)
    S, D = quality.summarise_a(A, 200)
    res = {'meta': {'config': {'n_boot': 200}}, 'testbed': A.drop(columns=['clean_correct', 'reversed_correct']),
           'testbed_verdicts': A[['task', 'cue', 'seed', 'recipe', 'clean_correct', 'reversed_correct']],
           'testbed_summary': S, 'testbed_differences': D, 'testbed_goals': quality.goals_a(D)}
    src, out = save_results(res, tmp_path / 'run.json'), tmp_path / 'again.json'
    quality.resummarise(str(src), str(out))
    a, b = json.loads(src.read_text()), json.loads(out.read_text())
    for k in ('testbed_summary', 'testbed_differences', 'testbed_goals'): assert a[k] == b[k], k
    assert b['resummarised']['parts'] == ['testbed'] and b['resummarised']['n_boot'] == {'testbed': 200}
    # crossed over a seed's cues: wider than treating the two cue kinds' answers to one pair as two pairs
    row = S[(S.task == 'relevance') & (S.recipe == 'crome')].iloc[0]
    nested = bootstrap_ci(quality._units(g, 'clean_correct'), n_boot=200, pairs=range(6))
    assert row.clean_high - row.clean_low > nested[2] - nested[1]


def _part_a(A: pd.DataFrame, path: Path, seeds=SEEDS, **cfg) -> Path:
    S, D = quality.summarise_a(A, 200)
    meta = {'config': {'n_boot': 200, 'cues': list(CUES)} | cfg, 'seeds': list(seeds), 'commit': 'abc'}
    return save_results({'meta': meta, 'testbed': A.drop(columns=['clean_correct', 'reversed_correct']),
                         'testbed_verdicts': A[['task', 'cue', 'seed', 'recipe', 'clean_correct', 'reversed_correct']],
                         'testbed_summary': S, 'testbed_differences': D, 'testbed_goals': quality.goals_a(D)}, path)


def test_add_tasks_recomputes_over_all_tasks_and_refuses_other_settings(tmp_path):
    A = fake_testbed()
    base = _part_a(A, tmp_path / 'base.json')
    X = A[A.task == 'relevance'].assign(task='excluded_item')  # the same verdicts under a new task name
    extra = _part_a(X, tmp_path / 'x.json')
    out = tmp_path / 'all.json'
    quality.add_tasks(str(base), str(extra), str(out))
    r, b = json.loads(out.read_text()), json.loads(base.read_text())
    S = pd.DataFrame(r['testbed_summary']).set_index(['task', 'recipe'])
    assert list(S.index.get_level_values(0).unique()) == ['relevance', 'requested_item', 'excluded_item']
    num = ['clean', 'clean_low', 'clean_high', 'reversed', 'reversed_low', 'reversed_high']
    assert np.allclose(S.loc['excluded_item'][num].values, S.loc['relevance'][num].values)  # same verdicts, same CIs
    assert r['testbed_summary'][:6] == b['testbed_summary']  # the base's tasks are unchanged
    assert r['meta_testbed_added'][0]['tasks'] == ['excluded_item'] and r['meta'] == b['meta']
    assert any(g['goal'].startswith('excluded_item: Crome >= vanilla') for g in r['testbed_goals'])
    text = '\n'.join(pytest.importorskip('results_md').testbed(r))
    assert '_Task excluded_item added later (`quality.py --add-tasks`, same settings and seeds):_ _' in text
    assert '**excluded item** (within-prompt attribute; prompt-answer similarity points at the wrong answer)' in text
    with pytest.raises(SystemExit, match='already'):
        quality.add_tasks(str(out), str(extra), str(tmp_path / 'twice.json'))
    with pytest.raises(SystemExit, match='n_demo'):
        quality.add_tasks(str(base), str(_part_a(X, tmp_path / 'y.json', n_demo=99)), str(tmp_path / 'no.json'))
    with pytest.raises(SystemExit, match='seeds'):
        quality.add_tasks(str(base), str(_part_a(X, tmp_path / 'z.json', seeds=(0, 1))), str(tmp_path / 'no.json'))


def test_real_verdicts_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    p = {'Safety': rng.beta(0.3, 0.3, 30), 'Chat': rng.beta(0.3, 0.3, 50)}
    per_seed = [{sec: {m: (rng.random(len(q)) < q).astype(float) for m in ('vanilla', 'rrm', 'crome', 'length')}
                 for sec, q in p.items()} for _ in SEEDS]
    for s in per_seed: s['Avg'] = {m: np.concatenate([s[x][m] for x in p]) for m in s['Safety']}
    recs = quality.verdict_records(list(SEEDS), per_seed)
    back = quality.per_seed_from(json.loads(json.dumps(recs)))
    assert [list(s) for s in back] == [list(s) for s in per_seed]
    assert all((back[i][sec][m] == per_seed[i][sec][m]).all() for i in range(3) for sec in per_seed[i]
               for m in per_seed[i][sec])
    power, diffs = quality.summarise_b(per_seed, ['length'], 200)
    res = {'meta': {'config': {'n_boot': 200}}, 'real_verdicts': recs, 'real_power': power, 'real_differences': diffs}
    src, out = save_results(res, tmp_path / 'real.json'), tmp_path / 'real2.json'
    quality.resummarise(str(src), str(out))
    a, b = json.loads(src.read_text()), json.loads(out.read_text())
    assert a['real_power'] == b['real_power'] and a['real_differences'] == b['real_differences']
    assert b['resummarised']['parts'] == ['real']


def test_ablation_pools_tasks_as_strata(tmp_path):
    ablation = pytest.importorskip('crome_ablation')
    A = fake_testbed()
    A = A[A.recipe == 'crome'].drop(columns='recipe')
    zero = A.task == 'requested_item'  # tasks far apart: the pooled mean depends on the mix
    A.loc[zero, 'reversed_correct'] = A.loc[zero, 'reversed_correct'].map(lambda x: [0] * len(x))
    A = pd.concat([A.assign(variant='default'), A.assign(variant='lambda 2')], ignore_index=True)
    S, D, best = ablation.summarise(A)
    both = S[(S.task == 'both') & (S.variant == 'default')].iloc[0]
    free = bootstrap_ci([np.asarray(x, float) for x in A[A.variant == 'default'].reversed_correct], n_boot=2000,
                        pairs=list(zip(A[A.variant == 'default'].task, A[A.variant == 'default'].seed)))
    assert both.reversed_high - both.reversed_low < free[2] - free[1]  # the task mix is not counted as noise
    assert best == {'crome': 'default'} and (D.reversed_diff == 0).all()  # identical variants: nothing is selected
    rows = A.drop(columns=['clean_correct', 'reversed_correct'])
    res = {'meta': {}, 'summary': S, 'vs_default': D, 'selected': best, 'rows': rows,
           'verdicts': A[['variant', 'task', 'cue', 'seed', 'clean_correct', 'reversed_correct']]}
    src, out = save_results(res, tmp_path / 'abl.json'), tmp_path / 'abl2.json'
    ablation.resummarise(str(src), str(out))
    a, b = json.loads(src.read_text()), json.loads(out.read_text())
    assert a['summary'] == b['summary'] and a['vs_default'] == b['vs_default'] and b['selected'] == {'crome': 'default'}


def fake_instances(seed: int) -> pd.DataFrame:
    "Robustness instances of 30 pairs (1-6 transformations each) for two models; per-pair difficulty shared."
    rng = np.random.default_rng(seed)
    q, rows = np.random.default_rng(9).beta(0.3, 0.3, 30), []
    for m in ('vanilla', 'crome'):
        for side in ('both', 'rejected'):
            for p in range(30):
                for t in range(1 + p % 6):
                    rows.append(dict(model=m, side=side, transformation=f't{t}', pair=f'id{p}', clean_ok=1.0,
                                     ok=float(rng.random() > q[p] / (2 if m == 'crome' else 1))))
    return pd.DataFrame(rows)


def test_robustness_drops_cluster_pairs_and_resummarise(tmp_path):
    from crome.stats import clustered_ci
    insts = [fake_instances(s) for s in SEEDS]
    recs = [r for s, inst in zip(SEEDS, insts) for r in quality.robustness_pair_records(inst, s)]
    D = quality.summarise_drops(json.loads(json.dumps(recs)), 300).set_index(['side', 'model'])
    for side, m in (('both', 'vanilla'), ('rejected', 'crome')):
        g = [i[(i.model == m) & (i.side == side)] for i in insts]
        want = clustered_ci([(x.clean_ok - x.ok).to_numpy() for x in g], [x.pair.to_numpy() for x in g], n_boot=300)
        row = D.loc[(side, m)]
        assert np.allclose([row['drop'], row.drop_low, row.drop_high], want, atol=1e-12), (row, want)
        assert abs(row.accuracy - np.mean([x.ok.mean() for x in g])) < 1e-12 and row.seeds == 3
    # instances of one pair are not independent: pooling them as pairs would give a narrower interval
    g = [i[(i.model == 'vanilla') & (i.side == 'both')] for i in insts]
    naive = bootstrap_ci([(x.clean_ok - x.ok).to_numpy() for x in g], n_boot=300)
    assert D.loc[('both', 'vanilla'), 'drop_high'] - D.loc[('both', 'vanilla'), 'drop_low'] > 1.3 * (naive[2] - naive[1])
    gv, gc = ([i[(i.model == m) & (i.side == 'both')] for i in insts] for m in ('vanilla', 'crome'))
    want = clustered_ci([(c.clean_ok - c.ok).to_numpy() - (v.clean_ok - v.ok).to_numpy() for c, v in zip(gc, gv)],
                        [c.pair.to_numpy() for c in gc], n_boot=300)  # paired: same seeds, pairs, transformations
    row = D.loc[('both', 'crome')]
    assert np.allclose([row.vs_baseline, row.vs_baseline_low, row.vs_baseline_high], want, atol=1e-12)
    assert row.verdict.startswith('crome - vanilla') and pd.isna(D.loc[('both', 'vanilla'), 'verdict'])
    res = {'meta': {'config': {'n_boot': 300}}, 'real_robustness_pairs': recs, 'real_robustness_drops': D.reset_index()}
    src, out = save_results(res, tmp_path / 'rob.json'), tmp_path / 'rob2.json'
    quality.resummarise(str(src), str(out))
    a, b = json.loads(src.read_text()), json.loads(out.read_text())
    assert a['real_robustness_drops'] == b['real_robustness_drops'] and b['resummarised']['parts'] == ['robustness']


def test_goal_status_needs_the_interval_to_clear_the_threshold():
    assert quality.goal_status(0.21, 0.30, 0.20) == 'met'
    assert quality.goal_status(0.16, 0.21, 0.20) == 'undecided'  # point estimate may be above: still undecided
    assert quality.goal_status(0.10, 0.19, 0.20) == 'not met'
    assert quality.goal_status(-0.01, 0.05, -0.02) == 'met'  # "within 0.02 of vanilla (or above)"
    D = pd.DataFrame([dict(task=t, compare=c, split=s, diff=0.19, low=0.17, high=0.22)
                      for t in ('relevance', 'requested_item') for c in ('crome - vanilla', 'crome - rrm')
                      for s in ('clean', 'reversed')])
    G = quality.goals_a(D).set_index('goal')
    assert G.loc['relevance: Crome >= vanilla + 0.20 reversed', 'status'] == 'undecided'
    assert not G.loc['relevance: Crome >= vanilla + 0.20 reversed', 'met']
    assert G.loc['requested_item: Crome >= RRM + 0.05 reversed', 'status'] == 'met'


def fake_real_test():
    "Test pairs of three subsets, interleaved sections (Chat = prompt-match + pandalm, as old runs had it)."
    from crome.schema import make_record, to_dataset
    rng, recs = np.random.default_rng(3), []
    for sub, n in (('hh-harmless', 6), (quality.PROMPT_MATCH, 5), ('gsm8k-reasoning', 4), ('pandalm', 7)):
        for i in range(n):
            a, b = 'x' * int(rng.integers(1, 30)), 'y' * int(rng.integers(1, 30))
            recs.append(make_record(f'{sub} prompt {i}', a, b, id=f'{sub}-{i}', subset=sub))
    return to_dataset(recs, check=False)


def test_drop_subset_removes_its_positions_and_robustness_pairs(tmp_path, monkeypatch):
    from crome.evaluate import POOLED, section_correct
    from crome.scorers import LengthScorer
    test = fake_real_test()
    D = {'train': test.select(range(3)), 'validation': test.select(range(3, 5)), 'test': test}
    monkeypatch.setattr(quality, 'real_data', lambda a, prompt_match=False: D)

    class Noisy:  # a model whose verdicts differ by seed
        def __init__(self, seed): self.rng = np.random.default_rng(seed)
        def score(self, prompts, responses): return self.rng.random(len(responses))
    per_seed = [section_correct({'crome': Noisy(s), 'rrm': Noisy(s + 5), 'vanilla': Noisy(s + 10), 'length': LengthScorer()}, test,
                                section_map=quality.LEGACY_SECTIONS) for s in SEEDS]
    subs = np.array(test['subset'])
    ids = np.array(test['id'])
    rob = [dict(seed=s, model=m, side='both', pair=ids.tolist(), n=[2] * len(ids), ok=[1] * len(ids),
                clean_ok=[1] * len(ids)) for s in SEEDS for m in ('vanilla', 'crome')]
    power, diffs = quality.summarise_b(per_seed, ['length'], 200)
    cfg = dict(n_boot=200, n_hh=1, n_gsm=1, n_gsm_test=1, n_bon=1)
    res = {'meta': {'config': cfg}, 'real_sizes': {'train': 3, 'validation': 2, 'test': len(test)},
           'real_verdicts': quality.verdict_records(list(SEEDS), per_seed), 'real_power': power,
           'real_differences': diffs, 'real_robustness_pairs': rob, 'real_robustness': [{'x': 1}]}
    src, out = save_results(res, tmp_path / 'real.json'), tmp_path / 'dropped.json'
    quality.resummarise(str(src), str(out), [quality.PROMPT_MATCH])
    b = json.loads(out.read_text())
    keep = subs != quality.PROMPT_MATCH
    chat = np.isin(subs, ['pandalm', quality.PROMPT_MATCH])
    back = quality.per_seed_from(b['real_verdicts'])
    for i in range(len(SEEDS)):
        assert (back[i][POOLED]['crome'] == per_seed[i][POOLED]['crome'][keep]).all()
        assert (back[i]['Chat']['vanilla'] == per_seed[i]['Chat']['vanilla'][keep[chat]]).all()
        assert (back[i]['Safety']['crome'] == per_seed[i]['Safety']['crome']).all()
    assert b['real_sizes']['test'] == keep.sum() and set(pd.DataFrame(b['real_power']).n) == {6, 4, 7, keep.sum()}
    assert all(len(r['pair']) == keep.sum() and not any(p.startswith(quality.PROMPT_MATCH) for p in r['pair'])
               for r in b['real_robustness_pairs'])
    d = b['resummarised']['dropped'][0]
    assert d['test_pairs'] == 5 and d['verdict_positions'] == {'Safety': 0, 'Chat': 5, 'Reasoning': 0, POOLED: 5}
    assert d['robustness']['pairs_dropped'] == 5 and 'real_robustness' in d['not_recomputed'][0]
    assert b['resummarised']['parts'] == ['real', 'robustness']
    quality.resummarise(str(out), str(tmp_path / 'again.json'), [quality.PROMPT_MATCH])  # not dropped twice
    c = json.loads((tmp_path / 'again.json').read_text())
    assert c['real_verdicts'] == b['real_verdicts'] and c['resummarised']['dropped'] == b['resummarised']['dropped']
    # a split that does not reproduce the run's stored verdicts is refused
    bad = dict(D, test=test.select(list(range(1, len(test))) + [0]))
    monkeypatch.setattr(quality, 'real_data', lambda a, prompt_match=False: bad)
    with pytest.raises(SystemExit, match='length baseline'):
        quality.resummarise(str(src), str(tmp_path / 'x.json'), [quality.PROMPT_MATCH])


def test_results_md_goal_rule_matches_quality_and_reads_old_goals():
    results_md = pytest.importorskip('results_md')
    for low, high in ((0.1, 0.3), (0.19, 0.25), (0.2, 0.2), (0.0, 0.1), (-0.03, -0.01)):
        for thr in (-0.02, 0.05, 0.2):
            assert results_md.goal_status(low, high, thr) == quality.goal_status(low, high, thr)
    D = pd.DataFrame([dict(task=t, compare=c, split=s, diff=0.0, low=0.0, high=0.0)
                      for t in ('relevance', 'requested_item') for c in ('crome - vanilla', 'crome - rrm')
                      for s in ('clean', 'reversed')])
    for r in quality.goals_a(D).itertuples():  # files written before goals stored a threshold: read from the wording
        assert results_md.goal_threshold(r.goal) == r.threshold


def test_results_md_renders_both_ablation_formats():
    results_md = pytest.importorskip('results_md')
    ablation = pytest.importorskip('crome_ablation')
    A = fake_testbed()
    A = A[A.recipe == 'crome'].drop(columns='recipe')
    A = pd.concat([A.assign(variant=v) for v in ('default', 'lambda 2', 'rrm: default', 'rrm: lambda 2')],
                  ignore_index=True)
    S, D, best = ablation.summarise(A)
    meta = {'commit': 'f' * 40, 'dirty': False, 'seeds': [100, 101], 'config': {'cues': 'signoff,markdown'}}
    new = json.loads(json.dumps({'meta': meta, 'summary': S.to_dict('records'), 'vs_default': D.to_dict('records'),
                                 'selected': best, 'verdicts': []}))
    text = '\n'.join(results_md.ablation(new))
    assert '| RRM | rrm: lambda 2 |' in text and '| Crome | lambda 2 |' in text and 'RRM **rrm: default**' in text
    assert 'Crome **default** (the default stays)' in text and '2 cue kinds' in text
    assert all(repr(v) in text for v in ablation.NOT_EXERCISED) and 'Not run' in text
    assert "include quality.py's test seeds" not in text
    S1 = S[~S.variant.str.startswith('rrm:')]
    old = json.loads(json.dumps({'meta': meta | {'seeds': [0, 1, 2]}, 'summary': S1.to_dict('records'),
                                 'vs_default': D[D.recipe == 'crome'].drop(columns='recipe').to_dict('records'),
                                 'selected': 'lambda 2', 'verdicts': []}))
    text = '\n'.join(results_md.ablation(old))
    assert '| recipe |' not in text and 'Selected: **lambda 2**' in text and "include quality.py's test seeds" in text


def test_results_md_names_the_files_changed_since_a_results_commit():
    results_md = pytest.importorskip('results_md')
    c = 'a' * 40
    assert results_md.changed_note(c, []) == ''
    assert 'cannot be told' in results_md.changed_note(c, None)
    one = results_md.changed_note(c, ['crome/oracle_base.py'])
    assert '`crome/oracle_base.py`, which it runs, differs between' in one and '`aaaaaaaaaa`' in one
    many = results_md.changed_note(c, ['crome/_modidx.py'] + [f'crome/m{i}.py' for i in range(4)])
    assert '`crome/m2.py` and 2 more, which it runs, differ' in many and 'm3' not in many and '_modidx' not in many
    assert results_md.code_changed('HEAD') == [] and results_md.code_changed('0' * 40) is None


def test_results_md_bon_intervals_and_paired_differences():
    results_md = pytest.importorskip('results_md')
    rng = np.random.default_rng(0)
    rows = [dict(model=m, n=n, train_seed=s, accuracy=0.0, random_acc=0.25, oracle_acc=1.0,
                 correct=(rng.random(60) < (0.9 if m == 'crome' else 0.3)).astype(int).tolist())
            for m in ('vanilla', 'crome') for n in (1, 8) for s in range(5)]
    B = pd.DataFrame(rows)
    t, lines = results_md._bon_table(B)
    m, lo, hi = bootstrap_ci([r['correct'] for r in rows if r['model'] == 'crome' and r['n'] == 8])
    assert t.loc['crome', 8] == f'{m:.3f} [{lo:.3f}, {hi:.3f}]' and lo < m < hi
    assert len(lines) == 5 and 'Crome - vanilla' in lines[3] and '(significant)' in lines[3]
    assert 'Crome significantly above the random pick (0.250)' in lines[2]
    old, none = results_md._bon_table(B.drop(columns='correct').assign(accuracy=0.5))
    assert none == [] and old.loc['crome', 8] == 0.5


def test_results_md_pooled_power_needs_the_better_baseline_per_section():
    results_md = pytest.importorskip('results_md')
    G = pd.DataFrame([dict(model='crome', vs_length_low=0.03, vs_cosine_low=0.01, vs_best_baseline_low=-0.05,
                           best_baseline=0.546, above_baselines=False),
                      dict(model='length', vs_length_low=None, vs_cosine_low=-0.08, vs_best_baseline_low=-0.2,
                           best_baseline=0.546, above_baselines=False)])
    line = results_md._pooled_power_line(G, False)
    assert 'cannot rank recipes' in line and '0.546' in line and 'Crome above each baseline pooled only' in line and '0.546;' in line
    ok = results_md._pooled_power_line(G.assign(above_baselines=[True, False]), True)
    assert 'Crome significantly above both' in ok and 'can rank recipes' in ok


def test_results_md_names_the_file_each_section_reads(tmp_path):
    "A results file's recorded command often names another --out file: the line says which file it was read from."
    results_md = pytest.importorskip('results_md')
    p = tmp_path / 'quality_finetune.json'
    p.write_text(json.dumps({'meta': {'command': 'quality.py --out qf10.json', 'commit': 'HEAD'},
                             'meta_testbed_added': [{'command': 'quality.py --out x.json'}]}))
    d = results_md.load(str(p))
    line = results_md.meta_line(d['meta'], 'quality.py')
    assert line.startswith('_`results/quality_finetune.json`, written by `quality.py --out qf10.json`'), line
    assert results_md.meta_line(d['meta_testbed_added'][0]).startswith('_`results/quality_finetune.json`, written by')
