"""Review fixes in stress, bon, scorers, transforms and train_figures: the stress budget split honours aug_share,
labels are kept and validated, gsm8k_pools names why it skips, pairwise probabilities are checked, 'both' means
both answers, stress_figure refuses mixed tables, history_frame takes any real numbers."""
import warnings
import numpy as np
import pandas as pd
import pytest

from crome.demo import make_demo
from crome.schema import make_record, CromeDataError
from crome.stress import recipe_data
from crome.bon import gsm8k_pools, best_of_n, POOL_DECORATIONS
from crome.scorers import CachedScorer
from crome.transforms import transform_pair
from crome.train_figures import stress_figure, history_frame
from crome.data import load_gsm8k


@pytest.fixture(scope='module')
def demo_train():
    return make_demo(160, tasks='relevance', seed=0)['train']


@pytest.mark.parametrize('factor,share', [(2.0, 0.75), (1.0, 0.5), (1.5, 0.5), (2.0, 0.5), (2.0, 0.25)])
def test_recipe_data_gives_aug_share_of_the_budget(demo_train, factor, share):
    n = len(demo_train)
    budget = round(factor * n)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        rows, info = recipe_data(demo_train, 'crome', seed=0, budget=budget, aug_share=share)
    kinds = rows['kind']
    n_aug = sum(k != 'original' for k in kinds)
    assert len(rows) == budget and n_aug == round(share * budget) and info['aug_share'] == n_aug / budget
    orig_ids = [i for i, k in zip(rows['id'], kinds) if k == 'original']
    assert len(orig_ids) == budget - n_aug and len(set(orig_ids)) == min(n, budget - n_aug)
    subsampled = budget - n_aug < n
    assert info['originals_subsampled'] == subsampled
    assert any('without replacement' in str(x.message) for x in w) == subsampled


def test_recipe_data_vanilla_unchanged(demo_train):
    rows, info = recipe_data(demo_train, 'vanilla', seed=0, budget=150)
    assert len(rows) == 150 and set(rows['kind']) == {'original'} and len(set(rows['id'])) == len(demo_train)
    assert info['aug_share'] == 0 and not info['originals_subsampled']
    with pytest.raises(ValueError, match='aug_share must be in'):
        recipe_data(demo_train, 'vanilla', aug_share=1.5)


def test_recipe_data_keeps_and_validates_labels():
    with pytest.raises(CromeDataError, match=r"field 'label'.*got 0\.0"):
        recipe_data([make_record('Q?', 'A', 'B', label=0.0, id='x')], 'vanilla', budget=2)
    rows, _ = recipe_data([make_record('Q?', 'A', 'B', label=0.5, id='t'), dict(prompt='Q2', chosen='C',
                                                                               rejected='D', label=None, id='u')],
                          'vanilla', budget=2)
    assert sorted(rows['label']) == [0.5, 1.0]


# ---------------------------------------------------------------- gsm8k_pools
_ROWS = [dict(question='Ducks lay 16 eggs. She eats 3 and bakes 4. She sells the rest at $2. Earnings?',
              answer='She sells 16-3-4=<<16-3-4=9>>9 eggs.\nShe makes 9*2=$<<9*2=18>>18.\n#### 18'),
         dict(question='A robe takes 2 bolts of blue and half that much white. Total?',
              answer='White: 2/2=<<2/2=1>>1 bolt\nTotal: 2+1=<<2+1=3>>3 bolts\n#### 3'),
         dict(question='Say hi.', answer='Hi.\n#### 0')]


@pytest.fixture(scope='module')
def small_gsm8k(tmp_path_factory):
    import json
    f = tmp_path_factory.mktemp('g') / 'g.jsonl'
    f.write_text('\n'.join(json.dumps(r) for r in _ROWS))
    return load_gsm8k(f)


def _pools(g, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        ps = gsm8k_pools(g, **kw)
    return ps, ' '.join(str(x.message) for x in w)


def test_gsm8k_pools_counts_skip_reasons(small_gsm8k):
    ps, msg = _pools(small_gsm8k, n_candidates=20)  # 15 wrong: the robe's 2 slips give at most 14 renderings
    assert len(ps) == 1 and '2 of 3 questions left out' in msg
    assert '1 have no arithmetic slip' in msg and '1 have slips but fewer than 15 distinct wrong renderings' in msg
    ps, msg = _pools(small_gsm8k, n_candidates=8)
    assert len(ps) == 2 and '1 of 3' in msg and '0 have slips but' in msg
    assert all(sum(p['correct']) == 2 and len(set(p['candidates'])) == 8 for p in ps)


@pytest.mark.parametrize('kw,err', [(dict(n_candidates=32), f'at most {1 + len(POOL_DECORATIONS)} renderings'),
                                    (dict(n_candidates=4, correct_share=1.0), 'no wrong candidate'),
                                    (dict(n_candidates=1), 'no wrong candidate')])
def test_gsm8k_pools_rejects_impossible_settings(small_gsm8k, kw, err):
    with pytest.raises(ValueError, match=err):
        gsm8k_pools(small_gsm8k, **kw)


# ---------------------------------------------------------------- pairwise probabilities
class _Prob:
    def __init__(self, v): self.v = v
    def prob(self, prompts, a, b): return np.full(len(a), self.v)


@pytest.mark.parametrize('v', [np.nan, 7.0, -0.5, np.inf])
def test_margin_refuses_bad_probabilities(v):
    with pytest.raises(ValueError, match=r"model 'pw'.*outside \[0, 1\]"):
        CachedScorer(_Prob(v), 'pw').margin(['q', 'q'], ['a', 'b'], ['c', 'd'])
    pools = [dict(prompt='q', candidates=['w1', 'w2', 'ok'], correct=[False, False, True])]
    with pytest.raises(ValueError, match="model 'pw'"):
        best_of_n({'pw': _Prob(v)}, pools, ns=(3,), seeds=(0,))


def test_margin_accepts_valid_probabilities():
    m = CachedScorer(_Prob(0.75), 'pw').margin(['q'], ['a'], ['b'])
    assert np.allclose(m, np.log(3)) and CachedScorer(_Prob(0.5)).margin(['q'], ['a'], ['b']).tolist() == [0.0]


# ---------------------------------------------------------------- transform_pair side='both'
@pytest.mark.parametrize('name,row', [
    ('comment_bad', dict(prompt='Write code', chosen='```python\nprint(1)\n```', rejected='No.', pair_id='2')),
    ('politeness', dict(prompt='Say hi', chosen='Hi "there"!', rejected='', pair_id='3')),
    ('word_deletion', dict(prompt='What is 2+2?', chosen='2+2 = 4.\n#### 4', rejected='I do not know.',
                           pair_id='1'))])
def test_both_side_needs_both_answers_changed(name, row):
    one = [s for s in ('chosen', 'rejected') if transform_pair(name, row, s) is not None]
    assert len(one) == 1  # the edit changes exactly one answer of this pair
    assert transform_pair(name, row, 'both') is None


def test_both_side_kept_when_both_change():
    row = dict(prompt='Name a fruit.', chosen='An apple is a fruit.', rejected='A chair.', pair_id='0')
    p, c, r = transform_pair('politeness', row, 'both')
    assert p == row['prompt'] and c != row['chosen'] and r != row['rejected']


# ---------------------------------------------------------------- train figures
def _stress():
    accs = {'vanilla': [.8, .2], 'crome': [.85, .7]}
    return pd.DataFrame([dict(recipe=r, cue='signoff', strength=1, rho=rho, seed=0, split='test', filtered=False,
                              clean_acc=.9, reversed_acc=acc) for r in accs for rho, acc in zip((.5, .9), accs[r])])


def test_stress_figure_refuses_mixed_tables():
    st = _stress()
    with pytest.raises(ValueError, match=r"several splits \['test', 'validation'\]"):
        stress_figure(pd.concat([st, st.assign(split='validation', reversed_acc=0.0)]))
    with pytest.raises(ValueError, match=r"\['crome'\] have both filtered and unfiltered"):
        stress_figure(pd.concat([st, st[st.recipe == 'crome'].assign(filtered=True, reversed_acc=0.0)]))
    fig = stress_figure(st.assign(filtered=st.recipe == 'crome'))  # a filter=True sweep: one value per recipe
    assert np.allclose(fig.data[0].y, [.8, .2]) and np.allclose(fig.data[2].y, [.85, .7])


def test_history_frame_takes_any_real_numbers():
    torch = pytest.importorskip('torch')
    for h in (np.array([0.5, 0.25], dtype=np.float32), [torch.tensor(0.5), torch.tensor(0.25)],
              [np.array(0.5), np.float32(0.25)]):
        hf = history_frame(h)
        assert hf.step.tolist() == [1, 2] and hf.value.tolist() == [0.5, 0.25] and set(hf.key) == {'loss'}
    hf = history_frame([{'loss': np.float32(0.5), 'eval_loss': torch.tensor(0.25), 'step': 4, 'ok': True}])
    assert list(zip(hf.step, hf.key, hf.value)) == [(4, 'loss', 0.5), (4, 'eval_loss', 0.25)]
    with pytest.raises(TypeError, match='list of numbers'):
        history_frame(['0.5', '0.25'])
