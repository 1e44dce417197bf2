"""Baseline filtering (crome.filter) against a hand-computed example."""
import math
import numpy as np
import pytest
from crome.filter import filter_augmented, keep_rates, kept_rows, baseline_probs
from crome.schema import make_record, to_dataset

R = {'good': 2.0, 'bad': 0.0, 'meh': 1.0, 'other': 1.2}
sig = lambda x: 1 / (1 + math.exp(-x))


def _recs():
    return [make_record('q', 'good', 'bad', id='o'),
            make_record('q', 'good', 'bad', id='c1', source_id='o', kind='causal', attribute='relevance',
                        direction='degrade'),
            make_record('q', 'meh', 'other', id='c2', source_id='o', kind='causal', attribute='safety',
                        direction='upgrade'),
            make_record('q2', 'meh', 'other', id='t1', source_id='o', kind='iqn', label=0.5),
            make_record('q2', 'good', 'bad', id='t2', source_id='o', kind='iqn', label=0.5),
            make_record('q2', 'bad', 'good', id='t3', source_id='o', kind='iqn', label=0.5)]


class Scorer:
    def __init__(self): self.n = 0
    def score(self, prompts, responses, batch_size=32):
        self.n += len(responses); return np.array([R[r] for r in responses])


def test_hand_computed_example_with_ties():
    s = Scorer()
    f = filter_augmented(to_dataset(_recs()), s, tau=0.2, progress=False)
    # p: c1 .881 (|.881-1|=.119 drop), c2 .450 (.55 keep), t1 .450 (.05 drop), t2 .881 (.381 keep), t3 .119 (.381 keep)
    assert f['kept'] == [True, False, True, False, True, True]
    assert f['baseline_p'][0] is None
    assert np.allclose(f['baseline_p'][1:], [sig(2), sig(-0.2), sig(-0.2), sig(2), sig(-2)])
    assert s.n == 8  # distinct (prompt, answer) texts scored once
    assert kept_rows(f)['id'] == ['o', 'c2', 't2', 't3']
    kr = keep_rates(f).set_index(['kind', 'attribute', 'direction'])
    assert kr.loc[('iqn', '-', '-'), 'kept'] == 2 and kr.loc[('iqn', '-', '-'), 'rows'] == 3
    assert kr.loc[('causal', 'relevance', 'degrade'), 'keep_rate'] == 0.0 and kr.loc[('causal', 'safety', 'upgrade'),
                                                                                     'keep_rate'] == 1.0


def test_tau_bounds_and_extremes():
    ds = to_dataset(_recs())
    assert filter_augmented(ds, Scorer(), tau=0.0, progress=False)['kept'] == [True] * 6
    assert filter_augmented(ds, Scorer(), tau=0.5, progress=False)['kept'] == [True, False, True, False, False, False]
    for bad in (-0.1, 1.0, 'x'):
        with pytest.raises(ValueError, match='tau'): filter_augmented(ds, Scorer(), tau=bad)


def test_callable_and_prob_scorers():
    ds = to_dataset(_recs())
    f = filter_augmented(ds, lambda p, r: np.array([R[x] for x in r]), progress=False)
    assert f['kept'] == [True, False, True, False, True, True]

    class Pair:
        def prob(self, prompts, a, b): return np.array([0.9 if x == 'good' else 0.5 for x in a])
    g = filter_augmented(ds, Pair(), score_originals=True, progress=False)
    assert g['baseline_p'] == [0.9, 0.9, 0.5, 0.5, 0.9, 0.5] and g['kept'] == [True, False, True, False, True, False]


def test_errors():
    with pytest.raises(ValueError, match='rewards'):
        baseline_probs(lambda p, r: np.zeros(1), ['q', 'q'], ['a', 'b'], ['c', 'd'])
    ds = to_dataset(_recs())
    with pytest.raises(ValueError, match='filter_augmented first'): keep_rates(ds)


class _Fixed:
    def __init__(self, p): self.p = p
    def prob(self, prompts, a, b): return np.full(len(prompts), self.p)


def test_rrm_rows_use_the_rrm_rule():
    "Bug 10: RRM rows are kept iff in a seeded 50% sample and |p - y| >= tau; Crome rows iff |p - y| > tau."
    rr = [make_record('q', 'a', 'b', id=f'r{i}', source_id='o', kind='rrm') for i in range(400)]
    cc = [make_record('q', 'a', 'b', id=f'c{i}', source_id='o', kind='causal', attribute='relevance',
                      direction='degrade')
          for i in range(3)]
    f = filter_augmented(to_dataset(rr + cc), _Fixed(0.75), tau=0.25, progress=False)  # |0.75 - 1| == 0.25 exactly
    kinds, kept, bp = f['kind'], f['kept'], f['baseline_p']
    assert not any(k for k, x in zip(kept, kinds) if x == 'causal')
    n = sum(k for k, x in zip(kept, kinds) if x == 'rrm')
    assert 170 <= n <= 230  # a 50% sample, all of it kept at equality
    assert all(k == (p is not None) for k, p, x in zip(kept, bp, kinds) if x == 'rrm')  # the rest is never scored
    other_seed = filter_augmented(to_dataset(rr), _Fixed(0.75), tau=0.25, seed=1, progress=False)
    assert {r['id'] for r in other_seed if r['kept']} != {r['id'] for r in f if r['kept'] and r['kind'] == 'rrm'}
    assert not any(filter_augmented(to_dataset(rr), _Fixed(0.9), tau=0.25, rrm_share=1.0, progress=False)['kept'])
    with pytest.raises(ValueError, match='rrm_share'): filter_augmented(to_dataset(rr), _Fixed(0.5), rrm_share=2)
