"""Evaluation (crome.evaluate, crome.stress): hand-computed section accuracy, and a length-only scorer vs an
oracle scorer that knows the causal answer, told apart by the robustness suite, reward shifts and Best-of-N."""
import json, math, re, warnings
import numpy as np
import pandas as pd
import pytest

from conftest import DATA, needs_data
from crome.demo import make_demo, CueSpec, CATEGORIES, has_cue
from crome.evaluate import (SECTION_MAP, REWARDBENCH_WEIGHTS, SHIFT_COLUMNS, section_accuracy,
                            section_of, load_rewardbench, robustness_suite, transform_pair, reward_shifts, shift_summary,
                            model_summary, save_results, eval_edit_names)
from crome.scorers import CachedScorer, as_models
from crome.bon import best_of_n, make_pools, gsm8k_pools, check_answer, gsm8k_reasoning_pairs
from crome.edits import get_edit, causal_edits, spurious_edits
from crome.stress import stress_test, cue_metrics, recipe_data, STRESS_COLUMNS
from crome.oracle import Completion

GSM8K = DATA / 'gsm8k' / 'test.jsonl'  # the data folder: $CROME_DATA (see conftest)


def length_rm(prompts, responses):
    "Scores by length alone."
    return np.array([len(r) for r in responses], float)


def _asked(p): return max((c for c in CATEGORIES if c in p), key=len, default=None)
def _has(w, t): return bool(re.search(rf'\b{re.escape(w)}\b', t))


def oracle_rm(prompts, responses):
    "Knows the demo's causal answer: items of the asked category, double credit for the requested item."
    out = []
    for p, r in zip(prompts, responses):
        items = CATEGORIES[_asked(p)][1] if _asked(p) else ()
        out.append(sum(_has(i, r) for i in items) + 2 * sum(_has(i, r) for i in items if _has(i, p)))
    return np.array(out, float)


class PairOracle:
    "A pairwise model built on the oracle."
    def prob(self, prompts, a, b):
        d = oracle_rm(prompts, a) - oracle_rm(prompts, b)
        return 1 / (1 + np.exp(-d))


@pytest.fixture(scope='module')
def demo():
    return make_demo(160, cues=[], seed=3)['clean']


# ---------------------------------------------------------------- section accuracy
V = {'good': 2.0, 'ok': 1.0, 'bad': 0.0, 'same': 1.0}
table_rm = lambda p, r: np.array([V[x] for x in r])
HAND = [('alpacaeval-easy', 'good', 'bad'), ('alpacaeval-easy', 'ok', 'bad'), ('alpacaeval-easy', 'ok', 'same'),  # 2/3, one tie
        ('mt-bench-easy', 'good', 'ok'), ('my-chat', 'bad', 'good'),  # 1/1, 0/1
        ('xstest-should-respond', 'good', 'bad'), ('xstest-should-refuse', 'bad', 'ok'),  # Safety 1/2
        ('hep-go', 'good', 'bad'), ('math-prm', 'bad', 'good'), ('math-prm', 'good', 'ok')]  # Reasoning: 1/1, 1/2


def _hand(): return [dict(prompt='q', chosen=c, rejected=r, subset=s) for s, c, r in HAND]


def test_section_accuracy_hand_computed():
    acc = section_accuracy({'v': table_rm}, _hand(), section_map={**SECTION_MAP, 'my-chat': 'Chat'})
    sec = acc[acc.level != 'subset'].set_index('section')
    # Chat: (2 + 1 + 0) / 5 = 0.6, not the subset mean (2/3 + 1 + 0) / 3
    assert sec.loc['Chat', 'accuracy'] == pytest.approx(0.6) and sec.loc['Chat', 'ties'] == 1 and sec.loc['Chat', 'n'] == 5
    assert sec.loc['Chat', 'tie_rate'] == pytest.approx(0.2)
    assert sec.loc['Safety', 'accuracy'] == pytest.approx(0.5)
    assert sec.loc['Reasoning', 'accuracy'] == pytest.approx(2 / 3)  # (1 + 1) / 3 examples
    assert sec.loc['Avg', 'accuracy'] == pytest.approx((0.6 + 0.5 + 2 / 3) / 3) and sec.loc['Avg', 'ties'] == 1
    sub = acc[acc.level == 'subset'].set_index('subset')
    assert sub.loc['alpacaeval-easy', 'correct'] == 2 and sub.loc['alpacaeval-easy', 'ties'] == 1
    assert sub.loc['my-chat', 'section'] == 'Chat'
    # RewardBench's leaderboard weights: math-prm counts 984, hep-go 164 -> (164 * 1 + 984 * 0.5) / 1148
    w = section_accuracy(table_rm, _hand(), subset_weights=REWARDBENCH_WEIGHTS)
    reas = w[(w.level == 'section') & (w.section == 'Reasoning')].accuracy.item()
    assert reas == pytest.approx((164 + 984 * 0.5) / 1148)
    # without the user's mapping, my-chat is its own section
    assert 'my-chat' in set(w[w.level == 'section'].section)


def test_section_map_patterns_and_loader(tmp_path):
    assert section_of('llmbar-adver-manual') == 'Chat-Hard' and section_of('xstest-should-refuse') == 'Safety'
    assert section_of('hep-python') == 'Reasoning' and section_of('alpacaeval-length') == 'Chat' and section_of('foo') == 'foo'
    f = tmp_path / 'rb.jsonl'
    f.write_text('\n'.join(json.dumps(dict(prompt='q', chosen=c, rejected=r, subset=s, id=i, chosen_model='m1'))
                           for i, (s, c, r) in enumerate(HAND)))
    ds = load_rewardbench(f)
    assert len(ds) == len(HAND) and ds[0]['chosen_model'] == 'm1'
    acc = section_accuracy(table_rm, ds)
    assert acc[acc.section == 'Avg'].n.item() == len(HAND)


def test_ties_in_labels_are_dropped_with_warning_and_pairwise_models_work():
    rows = _hand() + [dict(prompt='q', chosen='good', rejected='bad', subset='alpacaeval-easy', label=0.5)]
    with pytest.warns(UserWarning, match='1 tie rows'):
        acc = section_accuracy({'v': table_rm}, rows)
    assert acc[acc.section == 'Avg'].n.item() == len(HAND)

    class P:  # P(a beats b) from the table: a tie gives exactly 0.5 and counts as wrong
        def prob(self, prompts, a, b): return np.array([0.5 + 0.1 * np.sign(V[x] - V[y]) for x, y in zip(a, b)])
    acc2 = section_accuracy({'p': P()}, _hand())
    assert acc2[acc2.section == 'Avg'].ties.item() == 1
    # the pairwise model's verdicts are the table's: the same accuracies at every level as the pointwise model
    cols = ['level', 'section', 'subset', 'n', 'correct', 'ties', 'accuracy']
    acc1 = section_accuracy({'p': table_rm}, _hand())
    pd.testing.assert_frame_equal(acc2[cols], acc1[cols])
    assert acc2[acc2.section == 'Avg'].accuracy.item() == pytest.approx((3 / 4 + 0 + 1 / 2 + 2 / 3) / 4)  # Chat, my-chat, Safety, Reasoning
    with pytest.raises(ValueError, match='lack column'):
        section_accuracy(table_rm, [dict(prompt='q', chosen='a')])


# ---------------------------------------------------------------- robustness suite
def test_robustness_flags_length_scorer_not_oracle(demo):
    edits = ['stress_test', 'ignore_above', 'ignore_below', 'add_quotes', 'twitter_url', 'rot13']
    rs = robustness_suite({'len': length_rm, 'oracle': oracle_rm}, demo, edits=edits)
    r = rs.set_index(['model', 'side', 'transformation'])
    for e in ('stress_test', 'ignore_above', 'ignore_below'):
        assert r.loc[('len', 'rejected', e), 'accuracy'] == 0.0 and r.loc[('len', 'rejected', e), 'drop'] > 0.3
        assert r.loc[('oracle', 'rejected', e), 'drop'] == 0.0 and r.loc[('oracle', 'both', e), 'drop'] == 0.0
    assert r.loc[('oracle', 'rejected', 'micro_avg'), 'accuracy'] == 1.0
    assert r.loc[('len', 'rejected', 'micro_avg'), 'drop'] > 0.25
    # micro average = pooled instances; rot13 edits only the prompt (no one-sided form)
    both = rs[(rs.model == 'len') & (rs.side == 'both')]
    assert both[both.transformation == 'micro_avg'].n.item() == both[both.transformation != 'micro_avg'].n.sum() == len(demo) * len(edits)
    assert ('len', 'rejected', 'rot13') not in r.index
    assert list(rs.columns) == ['model', 'side', 'transformation', 'n', 'accuracy', 'clean_accuracy', 'drop',
                                'drop_low', 'drop_high']
    # the drop's interval is over pairs: within bounds, and the lossless oracle's is exactly zero
    assert (rs.drop_low <= rs['drop'] + 1e-12).all() and (rs['drop'] <= rs.drop_high + 1e-12).all()
    assert r.loc[('oracle', 'rejected', 'micro_avg'), ['drop_low', 'drop_high']].tolist() == [0.0, 0.0]
    assert r.loc[('len', 'rejected', 'micro_avg'), 'drop_low'] > 0


def test_robustness_interval_counts_pairs_not_instances():
    "Twelve transformations of 40 pairs that all go the same way per pair: the interval is that of 40 pairs."
    from crome.evaluate import robustness_table
    from crome.stats import bootstrap_ci
    rng = np.random.default_rng(0)
    lost = rng.random(40) < 0.3  # pairs whose transformations all flip the verdict
    inst = pd.DataFrame([dict(model='m', side='both', transformation=f't{t}', pair=str(p), clean_ok=1.0,
                              ok=float(not lost[p])) for p in range(40) for t in range(12)])
    row = robustness_table(inst).set_index('transformation').loc['micro_avg']
    _, lo, hi = bootstrap_ci(lost.astype(float), n_boot=1000)  # one value per pair
    assert abs(row['drop'] - lost.mean()) < 1e-12
    assert abs((row.drop_high - row.drop_low) - (hi - lo)) < 0.05 and row.drop_high - row.drop_low > 0.2
    assert robustness_table(inst, n_boot=0).drop_low.isna().all()


def test_transform_pair_sides_and_determinism():
    row = dict(prompt='Name a fruit.', chosen='Apple is a fruit.', rejected='A chair.', pair_id='7')
    p, c, r = transform_pair('twitter_handle', row, 'both', seed=1)
    assert c.startswith(row['chosen']) and r.startswith(row['rejected']) and c[len(row['chosen']):] == r[len(row['rejected']):]
    assert transform_pair('twitter_handle', row, 'both', seed=1) == (p, c, r)
    assert transform_pair('twitter_handle', row, 'rejected', seed=1) == (row['prompt'], row['chosen'], r)
    p2, c2, r2 = transform_pair('add_quotes', row, 'chosen')
    assert p2 == row['prompt'] and c2 == f'"{row["chosen"]}"' and r2 == row['rejected']
    assert transform_pair('math_answer_format', row) is None
    with pytest.raises(KeyError, match='unknown edit'):
        robustness_suite(length_rm, [row], edits=['no_such_edit'])


def test_evaluation_never_uses_training_generators():
    "Generator roles: every evaluation path refuses a train-role edit; defaults hold eval-role edits only."
    row = dict(prompt='Name a fruit.', chosen='Apple is a fruit.', rejected='A chair.', pair_id='7')
    train = [e.name for e in causal_edits(role='train') + spurious_edits(role='train')]
    assert train and eval_edit_names() and all(get_edit(n).role == 'eval' for n in eval_edit_names())
    for n in train:
        with pytest.raises(ValueError, match='eval-role'):
            transform_pair(n, row)
        with pytest.raises(ValueError, match='eval-role'):
            robustness_suite(length_rm, [row], edits=[n])
        with pytest.raises(ValueError, match='eval-role'):
            reward_shifts(length_rm, [row], edits=[n])
    fams = {}
    for e in causal_edits() + spurious_edits(): fams.setdefault(e.family, set()).add(e.role)
    assert all(len(r) == 1 for r in fams.values()), fams  # no family serves both roles


class FakeOracle:
    "Paraphrases by appending a marker; translation round trip; fails on texts containing 'chair'."
    def __init__(self): self.calls = 0
    def complete_many(self, list_of_messages, **kw):
        out = []
        for m in list_of_messages:
            self.calls += 1
            text = m[-1]['content'].split('<text>\n', 1)[1].rsplit('\n</text>', 1)[0]
            if 'chair' in text: out.append(Completion(error='boom')); continue
            out.append(Completion(text=text + ' (reworded)' if 'Paraphrase' in m[-1]['content'] else text))  # translation: identity
        return out


def test_llm_transformations_with_oracle():
    rows = [dict(prompt='Name a fruit.', chosen='Apple is a fruit.', rejected='A pear.'),
            dict(prompt='Name a tool.', chosen='A hammer.', rejected='A chair.')]
    o = FakeOracle()
    rs = robustness_suite({'len': length_rm}, rows, edits=['twitter_handle'], sides=('both',), oracle=o).set_index('transformation')
    assert rs.loc['paraphrase', 'n'] == 1 and rs.loc['back_translation', 'n'] == 1  # the 'chair' pair failed and is left out
    assert rs.loc['micro_avg', 'n'] == 2 + 1 + 1 and o.calls == 4 + 4 + 3  # paraphrase 4, to French 4, back 3 (one failed)


# ---------------------------------------------------------------- reward shifts
def test_reward_shift_contract_and_hand_example():
    rows = [dict(prompt='Say hi.', chosen='It is good to see you.', rejected='Go away now, I am very busy.', id='p1'),
            dict(prompt='Name a tree.', chosen='An oak.', rejected='A car, obviously enough.', id='p2')]
    df = reward_shifts({'len': length_rm}, rows, edits=['stress_test', 'swap_answer'])
    assert list(df.columns) == SHIFT_COLUMNS and set(df.pair_id) == {'p1', 'p2'}
    pad = df[(df.edit == 'stress_test') & (df.pair_id == 'p1')].set_index('side')
    assert pad.loc['chosen', 'reward_before'] == 22 and pad.loc['chosen', 'shift'] == len(' and true is true') * 5
    sw = df[(df.edit == 'swap_answer') & (df.pair_id == 'p1')].set_index('side')
    assert sw.loc['chosen', 'reward_after'] == len('An oak.')  # the other prompt's chosen answer (the only donor)
    assert pad.loc['chosen', 'flipped'] and not pad.loc['rejected', 'flipped']  # padding the shorter chosen answer flips the pair
    assert (df[df.edit_kind == 'causal'].flipped == False).all()
    s = shift_summary(df).set_index('edit')
    assert s.loc['stress_test', 'flip_rate'] == 0.5 and s.loc['stress_test', 'share_lower'] == 0
    assert math.isnan(s.loc['swap_answer', 'flip_rate']) and s.loc['swap_answer', 'direction'] == 'degrade'
    assert s.loc['stress_test', 'direction'] is None
    assert list(shift_summary(df).columns) == ['model', 'edit', 'edit_kind', 'attribute', 'direction', 'n', 'mean_shift',
                                               'mean_abs_shift', 'share_lower', 'flip_rate']
    with pytest.raises(TypeError, match='no .score'):
        reward_shifts({'pair': PairOracle()}, rows, edits=['stress_test'])


def test_reward_shifts_flag_length_scorer_not_oracle(demo):
    df = reward_shifts({'len': length_rm, 'oracle': oracle_rm}, demo)
    ms = model_summary(df).set_index('model')
    # causal sensitivity (per std of the clean rewards): the length RM barely moves under (length-neutral)
    # degradations, the oracle drops by more than a std
    assert abs(ms.loc['len', 'causal_drop_std']) < 0.3 and ms.loc['oracle', 'causal_drop_std'] > 1
    s = shift_summary(df).set_index(['model', 'edit'])
    chosen = df[(df.side == 'chosen') & (df.edit == 'swap_answer')].groupby('model')['shift'].apply(lambda x: (x < 0).mean())
    assert chosen['oracle'] >= 0.8 and chosen['len'] < 0.7
    # spurious invariance: length-adding edits move the length RM and flip pairs; the oracle does not move
    for e in ('stress_test', 'ignore_above', 'ignore_below'):
        assert s.loc[('len', e), 'flip_rate'] > 0.3 and s.loc[('len', e), 'mean_abs_shift'] > 20
        assert s.loc[('oracle', e), 'flip_rate'] == 0 and s.loc[('oracle', e), 'mean_abs_shift'] == 0
    assert ms.loc['len', 'spurious_abs_shift_std'] > 3 * ms.loc['oracle', 'spurious_abs_shift_std']


# ---------------------------------------------------------------- Best-of-N
@needs_data
def test_best_of_n_gsm8k_pools_from_eval_generators():
    from crome.data import load_gsm8k
    g = load_gsm8k(GSM8K).select(range(30))
    pools = gsm8k_pools(g, n_candidates=8, seed=0)
    assert len(pools) >= 18 and all(len(p['candidates']) == len(set(p['candidates'])) == 8 for p in pools)
    assert all(sum(p['correct']) == 2 for p in pools)  # correctness checked by exact final answer
    assert not any('<<' in c for p in pools for c in p['candidates'])
    answers = {q: a for q, a in zip(g['question'], g['answer'])}
    answer_rm = lambda ps, rs: np.array([float(check_answer(r, answers[p])) for p, r in zip(ps, rs)])
    class PairAnswer:
        def prob(self, ps, a, b): return 0.5 + 0.4 * (answer_rm(ps, a) - answer_rm(ps, b))
    bon = best_of_n({'len': length_rm, 'answer': answer_rm, 'pair': PairAnswer()}, pools, seeds=(0, 1))
    assert set(bon.columns) >= {'model', 'n', 'seed', 'accuracy', 'method', 'random_acc', 'oracle_acc'}
    assert len(bon) == 3 * 4 * 2
    curve = bon.groupby(['model', 'n']).accuracy.mean()
    rnd = bon.groupby('n').random_acc.mean()
    assert curve['answer', 8] == 1.0 and curve['pair', 8] == 1.0 and curve['answer', 1] == pytest.approx(rnd[1])
    assert rnd[8] == pytest.approx(0.25) and bon[bon.n == 8].oracle_acc.eq(1).all()
    assert curve['answer', 4] >= curve['answer', 2] >= curve['answer', 1]
    with pytest.raises(ValueError, match='smallest has 8'):
        best_of_n(length_rm, pools, ns=(32,))


@needs_data
def test_reasoning_pairs_are_same_question_and_wrong_by_exact_match():
    from crome.data import load_gsm8k
    g = load_gsm8k(GSM8K).select(range(60))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        rp = gsm8k_reasoning_pairs(g, seed=0)
    assert len(rp) >= 36 and set(rp['subset']) == {'gsm8k-reasoning'} and set(rp['generator']) == {'eval:arith_slip'}
    by_q = {r['question']: r for r in g}
    for r in rp:
        src = by_q[r['prompt']]
        assert check_answer(r['chosen'], src['answer']) and not check_answer(r['rejected'], src['answer'])
        assert abs(len(r['chosen']) - len(r['rejected'])) <= 12 + 0.1 * len(r['chosen'])  # a slip, not a rewrite
    # the eval generator differs from every training correctness edit: none of them reproduces its output
    from crome.edits import apply_edit
    train = [e.name for e in causal_edits(role='train') if e.attribute == 'correctness']
    r0 = rp[0]
    assert all((apply_edit(n, r0['prompt'], r0['chosen'], 0) or (None, None))[1] != r0['rejected'] for n in train)


def test_make_pools_and_check_answer():
    pools = make_pools(['q1', 'q2', 'q1'], ['#### 3', '#### 4', 'so \\boxed{3}'], [True, False, True])
    assert [len(p['candidates']) for p in pools] == [2, 1] and pools[0]['correct'] == [True, True]
    assert check_answer('... #### 1,234', 1234) and not check_answer('#### 12', 13) and not check_answer('no number', 1)


# ---------------------------------------------------------------- stress test
class CueLover:
    "The oracle plus w times the signoff cue."
    def __init__(self, w): self.w = w
    def score(self, prompts, responses):
        return oracle_rm(prompts, responses) + self.w * np.array([has_cue(r, 'signoff') for r in responses], float)


def test_cue_metrics_hand_computed():
    d = make_demo(120, tasks='relevance', cues=[CueSpec('signoff', 0.9, 1)], seed=0)  # oracle margin = 3 on every pair
    m = cue_metrics(CueLover(6), d['clean'], d['reversed'])
    assert (m['clean_acc'], m['reversed_acc'], m['flip_share']) == (1.0, 0.0, 1.0)
    assert m['cue_shift'] == pytest.approx(6) and m['shift_over_margin'] == pytest.approx(2)
    m = cue_metrics(CueLover(3), d['clean'], d['reversed'])  # the cue exactly cancels the margin: ties count as wrong
    assert m['reversed_acc'] == 0.0 and m['flip_share'] == 1.0 and m['shift_over_margin'] == pytest.approx(1)
    with pytest.raises(ValueError, match='same pairs'):
        cue_metrics(CueLover(1), d['clean'], d['reversed'].select(range(3)))


def test_stress_test_budget_recipes_and_blind_augmentation(monkeypatch):
    import crome.neutrals as A
    seen, real_augment = [], A.augment
    def spy(ds, **kw):
        seen.append(ds); return real_augment(ds, **kw)
    monkeypatch.setattr(A, 'augment', spy)
    calls = []
    def trainer(rows, recipe, seed):
        calls.append((recipe, len(rows), seed, sorted(set(rows['kind']))))
        return CueLover({'vanilla': 6, 'rrm': 2, 'crome': 1}[recipe])
    st = stress_test(cues=['signoff'], rhos=[0.7, 1.0], seeds=[0, 1], n=120, tasks='relevance', trainer=trainer, progress=False)
    assert list(st.columns) == STRESS_COLUMNS and len(st) == 3 * 2 * 2
    assert all(len({n for _, n, s, _ in calls if s == seed}) == 1 for seed in (0, 1))  # one budget for all recipes
    assert {s for *_, s, _ in calls} == {0, 1}
    kinds = {r: k for r, _, _, k in calls}
    assert kinds == {'vanilla': ['original'], 'rrm': ['original', 'rrm'], 'crome': ['causal', 'iqn', 'original']}
    by = st.groupby('recipe')
    assert (by.flip_share.max()['vanilla'], by.flip_share.max()['crome']) == (1.0, 0.0)
    assert by.shift_over_margin.mean()['rrm'] == pytest.approx(2 / 3)
    # the augmentation never sees the cue's name, the task, or anything but the pairs
    assert seen and all(set(ds.column_names).isdisjoint({'subset'}) and set(ds['generator']) == {None} for ds in seen)


def test_recipe_data_filtering_and_budget():
    d = make_demo(80, tasks='relevance', cues=[CueSpec('signoff', 0.9, 1)], seed=2)['train']
    rows, info = recipe_data(d, 'crome', seed=0, budget=200, filter_scorer=length_rm)
    assert len(rows) == 200 and 0 < info['n_kept'] < info['n_augmented']  # equal-length augmentations (p = 0.5 ties) are dropped
    assert sum(k == 'original' for k in rows['kind']) == 100 == len(d) * 100 // len(d)
    rows, info = recipe_data(d, 'crome', seed=0, budget=200)
    assert info['n_kept'] == info['n_augmented'] > 100 and sum(k == 'original' for k in rows['kind']) == 100
    rows, info = recipe_data(d, 'vanilla', seed=0, budget=150)  # originals repeated to the budget
    assert len(rows) == 150 and set(rows['kind']) == {'original'} and len(set(rows['id'])) == len(d)
    with pytest.raises(ValueError, match='unknown recipe'):
        recipe_data(d, 'nope')


# ---------------------------------------------------------------- saving
def test_save_results_json(tmp_path):
    acc = section_accuracy({'v': table_rm}, _hand())
    two = [dict(prompt='Say hi.', chosen='It is good to see you.', rejected='Go away.'),
           dict(prompt='Name a tree.', chosen='An oak.', rejected='A car.')]
    sh = shift_summary(reward_shifts({'len': length_rm}, two, edits=['stress_test', 'swap_answer']))
    p = save_results({'sections': acc, 'shifts': sh, 'meta': {'seed': np.int64(0), 'x': float('nan')}}, tmp_path / 'a' / 'r.json')
    back = json.loads(p.read_text())
    assert len(back['sections']) == len(acc) and back['meta'] == {'seed': 0, 'x': None}
    assert {r['edit']: r['flip_rate'] for r in back['shifts']}['swap_answer'] is None


def test_scorer_names_stay_importable_from_evaluate():
    import crome.evaluate, crome.scorers
    for n in ('CachedScorer', 'as_models', 'LengthScorer', 'CosineScorer'):
        assert getattr(crome.evaluate, n) is getattr(crome.scorers, n), n
