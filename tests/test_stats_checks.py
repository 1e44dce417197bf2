"""crome.stats checks that do not fit its notebook (at its line cap): pair-set grids and their errors, and the
sign-flip test that guards `significant` (exact McNemar for one seed's 0/1 verdicts; a test of the mean when a pair's
seeds are averaged, so many small differences one way and a few large ones the other are weighed by size), and
`power_table`'s `alpha` on the pooled rows' difference from the best baseline per section."""
import numpy as np
import pytest
from crome.stats import _pair_sets, bootstrap_ci, paired_diff_ci, power_table, sign_flip_p, significant


def test_pair_set_grids_and_errors():
    x = np.random.default_rng(0).random(250) < 0.6
    assert _pair_sets([x, x, x[:9]], ['s0', 's0', 's1'])[0][0].shape == (2, 250)  # two sets: (2, 250), (1, 9)
    with pytest.raises(ValueError, match='same length'): bootstrap_ci([x, x[:9]], pairs=[0, 0])
    with pytest.raises(ValueError, match='2 keys and strata 3 for 3'): bootstrap_ci([x, x, x], pairs=[0, 0])
    assert bootstrap_ci([np.ones(50)] * 3, proportion=True)[1] == 0.025 ** (1 / 50)  # n: the 50 pairs the seeds share


def test_sign_flip_is_mcnemar_for_few_pairs_and_weighs_sizes():
    assert sign_flip_p(np.r_[np.ones(4), np.zeros(100)]) == 0.125  # 2 of the 16 sign patterns are as extreme
    assert sign_flip_p(np.r_[np.ones(5), -np.ones(5)]) == 1.0 and sign_flip_p(np.zeros(7)) == 1.0
    assert abs(sign_flip_p(np.r_[np.ones(30), -np.ones(10)]) - 0.0022) < 0.003  # McNemar exact: 0.0022
    # 300 pairs: 120 lose a little (-0.2, seeds averaged), 60 gain a lot (+1): a sign test would call it 'worse'
    d = np.r_[-0.2 * np.ones(120), np.ones(60), np.zeros(120)]
    assert d.mean() > 0 and sign_flip_p(d) < 0.01
    a = [np.r_[np.ones(60), np.zeros(240)]] * 5  # five seeds that agree pair by pair
    b = [np.r_[np.zeros(60), np.ones(24), np.zeros(216)]] * 5
    assert significant(paired_diff_ci(a, b))


def test_power_table_alpha_applies_to_the_best_baseline_too():
    "Pooled, m gains 23 pairs on each baseline (p < 0.001) but only 6 on the better baseline per section (p = 0.031)."
    r17, z = np.r_[np.ones(17), np.zeros(3)], np.zeros(20)
    one = {'a': {'b1': r17, 'b2': z, 'm': np.ones(20)}, 'b': {'b1': z, 'b2': r17, 'm': np.ones(20)}}
    one['pooled'] = {k: np.r_[one['a'][k], one['b'][k]] for k in ('b1', 'b2', 'm')}
    rows = [power_table([one], baselines=['b1', 'b2'], pooled='pooled', **k).set_index(['section', 'model'])
            .loc[('pooled', 'm')] for k in ({}, {'alpha': 0.01})]
    assert all(r.vs_b1_p < 0.01 and r.vs_b2_p < 0.01 and r.vs_best_baseline_low > 0 for r in rows)
    assert rows[0].vs_best_baseline_p == 2 / 2**6 and rows[0].above_baselines and not rows[1].above_baselines
