"""device_speed.py's timing without a GPU or a model: an untimed warm-up, alternating rounds, a sorted-pipeline
contender, every round kept; --quick and --scoring-only cannot overwrite the committed GPU training file."""
import argparse, sys
from pathlib import Path
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / 'benchmarks')]
import device_speed as D  # noqa: E402


def test_round_orders_alternate_so_no_configuration_always_runs_first():
    assert D.round_orders(['a', 'b', 'c'], 3) == [['a', 'b', 'c'], ['c', 'b', 'a'], ['a', 'b', 'c']]
    assert D.round_orders({'x': 1, 'y': 2}, 2) == [['x', 'y'], ['y', 'x']]


def test_out_path_keeps_quick_and_scoring_only_off_the_committed_file(tmp_path):
    "Review: a --quick CPU check written to the default --out replaced the committed GPU file."
    ns = lambda out=None, quick=False, scoring_only=False: argparse.Namespace(out=out, quick=quick,
                                                                           scoring_only=scoring_only)
    assert D.out_path(ns()) == D.DEFAULT_OUT
    for kw in ({'quick': True}, {'scoring_only': True}):
        with pytest.raises(SystemExit, match='needs --out FILE'): D.out_path(ns(**kw))
        with pytest.raises(SystemExit, match='is the committed GPU training file'):
            D.out_path(ns(str(D.DEFAULT_OUT), **kw))
    with pytest.raises(SystemExit, match='--quick: --out .* is in benchmarks/results/'):
        D.out_path(ns(str(D.DEFAULT_OUT.parent / 'device_quick.json'), quick=True))
    scoring = D.DEFAULT_OUT.parent / 'device_scoring.json'
    assert D.out_path(ns(str(scoring), scoring_only=True)) == scoring.resolve()
    assert D.out_path(ns(str(tmp_path / 'q.json'), quick=True)) == (tmp_path / 'q.json').resolve()


def test_train_rounds_warm_up_untimed_then_alternate_and_keep_every_round(monkeypatch):
    "Review: training ran packed then padded once each with no warm-up; now a warm-up and alternating rounds."
    calls, speed = [], {'p': iter([10.0, 14.0, 12.0]), 'q': iter([5.0, 7.0, 6.0])}

    def fake_run(name, ds, cfg, flops_fn, pk, nominal, model=None):
        calls.append((name, cfg['max_steps'], model))
        pps = 1.0 if 'warm-up' in name else next(speed[name.split(' ')[0]])
        return ({'pairs': cfg['max_steps'] * 2, 'train_runtime_s': 1 / pps, 'pairs_per_s': pps,
                 'nonpad_tokens_per_s': 10 * pps, 'useful_flops_per_s': pps, 'share_of_probe_peak': pps / 100,
                 'mfu_nominal': None, 'config': cfg}, object())
    monkeypatch.setattr(D, 'train_run', fake_run)
    specs = {'p': ({'max_steps': 50, 'output_dir': None}, None, None), 'q': ({'max_steps': 50}, None, lambda: 'model')}
    runs, warm = D.train_rounds('ds', specs, 1.0, None, rounds=3, warmup_steps=4)
    assert calls == [('p (warm-up)', 4, None), ('q (warm-up)', 4, 'model'), ('p [round 0]', 50, None),
                     ('q [round 0]', 50, 'model'), ('q [round 1]', 50, 'model'), ('p [round 1]', 50, None),
                     ('p [round 2]', 50, None), ('q [round 2]', 50, 'model')]
    assert [w['run'] for w in warm] == ['p', 'q'] and all(w['steps'] == 4 for w in warm)
    assert runs['p']['pairs_per_s'] == 12.0 and runs['q']['pairs_per_s'] == 6.0  # medians
    assert [r['pairs_per_s'] for r in runs['p']['repeats']] == [10.0, 14.0, 12.0]
    assert [r['round'] for r in runs['q']['repeats']] == [0, 1, 2] and runs['p']['config'] == {'max_steps': 50}
    calls.clear(); speed.update(p=iter([1.0]), q=iter([1.0]))
    _, warm = D.train_rounds('ds', specs, 1.0, None, rounds=1, warmup_steps=0)
    assert warm == [] and [c[0] for c in calls] == ['p [round 0]', 'q [round 0]']


class FakeRM:
    "Scores a text pair by its length; encodes a pair as that many tokens (so longer texts sort first)."
    max_length = 100

    def __init__(self): self.scored = []
    def save(self, d): pass
    def encode(self, P, R): return {'input_ids': [[0] * (len(p) + len(r)) for p, r in zip(P, R)]}
    def tokenizer(self, P, R): return self.encode(P, R)

    def score(self, P, R, batch_size):
        self.scored.append(len(P))
        return np.array([float(len(p) + len(r)) for p, r in zip(P, R)])


def test_scoring_times_rounds_of_crome_the_pipeline_and_the_sorted_pipeline(monkeypatch):
    "Review: one timed round, crome sorting by length while the pipeline took texts as given; no sorted contender."
    import transformers
    seen = []

    def fake_pipe(xs, batch_size, truncation, max_length):
        seen.append([x['text'] for x in xs])
        return [{'score': float(len(x['text']) + len(x['text_pair']))} for x in xs]
    transformers.pipeline  # loading it can replace sys.modules['transformers']: patch the module imports will see
    monkeypatch.setattr(sys.modules['transformers'], 'pipeline', lambda *a, **k: fake_pipe)
    P = ['a' * n for n in (3, 9, 1, 7, 5, 2, 8, 4, 6, 10)]
    R = ['r'] * len(P)
    rm = FakeRM()
    r = D.scoring(rm, P, R, batch=2, dev=-1, rounds=3)
    assert rm.scored == [8, 10, 10, 10]  # the warm-up on the first 4 batches, then one full pass per round
    assert seen[:2] == [P[:8], sorted(P[:8], key=len, reverse=True)]  # warm-up: as given, then sorted
    S = sorted(P, key=len, reverse=True)
    assert seen[2:] == [P, S, S, P, P, S]  # rounds alternate: crome, pipeline, sorted; then reversed; then again
    assert r['rounds'] == 3 and set(r['seconds_all_rounds']) == {'crome', 'pipeline', 'pipeline_sorted'}
    assert all(len(v) == 3 for v in r['seconds_all_rounds'].values())
    assert r['max_abs_diff_untruncated'] == 0.0 and r['max_abs_diff_untruncated_sorted'] == 0.0  # scores put back
    assert set(r['texts_per_s']) == {'crome', 'pipeline', 'pipeline_sorted'} and r['texts'] == 10
    assert r['speedup_vs_sorted_pipeline'] > 0 and r['crome_s'] > 0 and r['tokens_median'] == 6
