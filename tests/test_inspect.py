"""crome.inspect and crome.views: word diff, pair views, the browser widget driven by simulated clicks, and figure data."""
import math
import numpy as np
import pandas as pd
import pytest
from crome.inspect import ALL, ALL_MODELS, PairBrowser, facet_options, matching_rows
from crome.views import diff_html, index_rows, pair_view, side_rewards, view_html, word_diff
from crome.figures import shift_figure, shift_stats, robustness_figure, best_of_n_figure, use_small_renderer
from crome.train_figures import keep_rate_figure, stress_figure, training_curves_figure, history_frame
from crome.schema import make_record, response_text, to_dataset


def _rows():
    o = make_record('Name a fruit.', 'An apple.', 'A hammer.', id='o1')
    o2 = make_record('Name a tool.', 'A hammer and saw.', 'A saw.', id='o2')
    return [o, o2,
            make_record('Name a fruit.', 'An apple.', 'A carrot.', id='o1:deg', source_id='o1', kind='causal', attribute='relevance',
                        direction='degrade', generator='edit:offtopic_splice', verdict='pass', baseline_p=0.9, kept=False),
            make_record('Name a fruit.', 'A pear.', 'A hammer.', id='o1:up', source_id='o1', kind='causal', attribute='relevance',
                        direction='upgrade', verdict='fail', baseline_p=0.4, kept=True),
            make_record('Name a tool.', 'A saw and a drill.', 'A saw.', id='o2:up', source_id='o2', kind='causal', attribute='completeness',
                        direction='upgrade', baseline_p=0.3, kept=True),
            make_record('Name a tool.', 'An apple.', 'A hammer.', id='o1:iqn:0', source_id='o1', kind='iqn', label=0.5, baseline_p=0.6, kept=False)]


def chars(prompts, responses): return np.array([len(response_text(r)) for r in responses], dtype=float)
def words(prompts, responses): return np.array([len(response_text(r).split()) for r in responses], dtype=float)


# ---------------------------------------------------------------- diff and views
@pytest.mark.parametrize('a,b', [('The cat sat on the mat.', 'A dog sat on a mat!'), ('', 'x'), ('same', 'same'),
                                 ('line one\nline two', 'line one\n\nline 2'), ('ünïcode wörds', 'ünïcode words')])
def test_word_diff_reconstructs_both_texts(a, b):
    d = word_diff(a, b)
    assert ''.join(s for o, s in d if o != 'insert') == a and ''.join(s for o, s in d if o != 'delete') == b
    assert all(o in ('equal', 'delete', 'insert') for o, _ in d)


def test_word_diff_reconstructs_random_texts():
    import random
    rng = random.Random(0)
    vocab = ['a', 'b', 'cat', 'dog', ',', '.', ' ', '  ', '\n', 'é', '<', '&']
    for _ in range(300):
        a = ''.join(rng.choice(vocab) for _ in range(rng.randrange(0, 30)))
        b = ''.join(rng.choice(vocab) for _ in range(rng.randrange(0, 30))) if rng.random() < .5 else a.replace('cat', 'dog', 1)
        d = word_diff(a, b)
        assert ''.join(s for o, s in d if o != 'insert') == a and ''.join(s for o, s in d if o != 'delete') == b
        assert all(s for _, s in d) and all(x[0] != y[0] for x, y in zip(d, d[1:]) if 'equal' in (x[0], y[0]))


def test_word_diff_groups_changes_and_html_escapes():
    assert word_diff('the cat sat', 'a dog sat') == [('delete', 'the cat'), ('insert', 'a dog'), ('equal', ' sat')]
    left, right = diff_html('keep <script>x</script>', 'keep <img onerror=1>')
    assert '<script>' not in left and '<img' not in right and left.startswith('keep &lt;') and '<del ' in left and '<ins ' in right


def test_pair_view_sides_by_kind():
    rows = _rows(); idx = index_rows(rows[:2])
    v = pair_view(rows[2], idx)
    assert (v.left, v.right, v.source_found, v.source_prompt) == ('An apple.', 'A carrot.', True, None)
    v = pair_view(rows[3], idx)
    assert (v.left, v.right) == ('A hammer.', 'A pear.') and 'upgraded' in v.right_title
    v = pair_view(rows[5], idx)
    assert v.source_prompt == 'Name a fruit.' and v.label == 0.5
    assert pair_view(rows[2], {}).source_found is False


def test_view_html_shows_provenance_scores_and_rubric():
    from crome.rubrics import offline_rubric
    rows = _rows()
    rub = offline_rubric('Name a fruit.', 'An apple.', 'A hammer.').to_json()
    v = pair_view(rows[2], index_rows([dict(rows[0], rubric=rub)]))
    h = view_html(v, {'chars': side_rewards(chars, v.prompt, v.left, v.right)})
    for s in ('edit:offtopic_splice', 'pass', '0.900', 'dropped', 'relevance', 'chars', 'rubric'):
        assert s in h, s
    assert '+0.000' in h  # 'An apple.' and 'A carrot.' both have 9 characters


def test_side_rewards_values_and_errors():
    s = side_rewards(chars, 'q', 'abcd', 'a')
    assert (s['left'], s['right'], s['shift']) == (4.0, 1.0, -3.0) and math.isclose(s['p_left'], 1 / (1 + math.exp(-3)))
    with pytest.raises(ValueError, match='for 2 responses'): side_rewards(lambda p, r: np.zeros(3), 'q', 'a', 'b')
    with pytest.raises(ValueError, match='for 2 responses'): side_rewards(lambda p, r: np.array([1.0, np.nan]), 'q', 'a', 'b')


def test_filters():
    rows = _rows()
    assert matching_rows(rows, kind='causal') == [2, 3, 4]
    assert matching_rows(rows, kind='causal', kept='kept') == [3, 4]
    assert matching_rows(rows, verdict='-', kind=ALL) == [0, 1, 4, 5]
    assert matching_rows(rows, attribute='completeness', direction='upgrade') == [4]
    assert ('dropped (2)', 'dropped') in facet_options(rows, 'kept')
    with pytest.raises(ValueError, match='can only filter'): matching_rows(rows, label='1.0')


# ---------------------------------------------------------------- the widget
def test_browser_clicks_filters_and_model_switch():
    b = PairBrowser(to_dataset(_rows()), models={'chars': chars, 'words': words})
    assert len(b.matches) == 6 and b.current_id == 'o1' and b.prev_button.disabled and not b.next_button.disabled
    b.filters['kind'].value = 'causal'
    assert len(b.matches) == 3 and b.current_id == 'o1:deg' and 'row <b>1</b> of <b>3</b>' in b.position.value
    b.filters['kept'].value = 'kept'
    assert [b.rows[i]['id'] for i in b.matches] == ['o1:up', 'o2:up'] and b.current_id == 'o1:up'
    b.next_button.click()
    assert b.current_id == 'o2:up' and b.next_button.disabled and not b.prev_button.disabled
    assert 'row <b>2</b> of <b>2</b>' in b.position.value
    # 'A saw.' -> 'A saw and a drill.': chars 6 -> 18, words 2 -> 5
    assert b.model.value == 'chars' and b.scores == {'chars': side_rewards(chars, 'Name a tool.', 'A saw.', 'A saw and a drill.')}
    assert b.scores['chars']['shift'] == 12.0 and '+12.000' in b.body.value
    b.model.value = 'words'
    assert list(b.scores) == ['words'] and b.scores['words']['shift'] == 3.0 and '+3.000' in b.body.value
    b.model.value = ALL_MODELS
    assert list(b.scores) == ['chars', 'words']
    b.prev_button.click()
    assert b.current_id == 'o1:up' and b.scores['chars']['shift'] == -2.0  # 'A hammer.' -> 'A pear.'
    b.filters['kept'].value = ALL; b.filters['kind'].value = 'iqn'
    assert b.current_id == 'o1:iqn:0' and "source pair&#x27;s prompt" not in b.body.value and "source pair's prompt" in b.body.value
    b.filters['verdict'].value = 'fail'
    assert b.matches == [] and b.current is None and 'no rows match' in b.body.value and b.next_button.disabled


def test_browser_caches_scores_and_reports_scorer_errors():
    calls = []
    def counting(prompts, responses):
        calls.append(1); return chars(prompts, responses)
    def broken(prompts, responses): raise RuntimeError('model not loaded')
    b = PairBrowser(_rows(), models={'counting': counting, 'broken': broken}, kind='causal')
    b.next_button.click(); b.prev_button.click(); b.next_button.click(); b.prev_button.click()
    assert len(calls) == 2  # one call per row shown, not per click
    b.model.value = 'broken'
    assert b.scores == {'broken': 'RuntimeError: model not loaded'} and 'model not loaded' in b.body.value


def test_browser_with_explicit_originals_and_errors():
    rows = _rows()
    b = PairBrowser(rows[2:], originals=rows[:2], kind='causal', direction='upgrade')
    assert b.current_id == 'o1:up' and b.view.left == 'A hammer.' and b.view.source_found and b.scores == {} and b.model.disabled
    b.go_to('o2:up'); assert b.current_id == 'o2:up'
    with pytest.raises(KeyError): b.go_to('o1:deg')
    with pytest.raises(ValueError, match='no rows'): PairBrowser([])
    with pytest.raises(ValueError, match='missing'): PairBrowser([{'prompt': 'q', 'chosen': 'a'}])
    with pytest.raises(ValueError, match='can only filter'): PairBrowser(rows, label='1')


def test_browser_on_augmented_demo_rows():
    from crome.neutrals import augment
    from crome.demo import make_demo
    from crome.filter import filter_augmented
    from crome.rubrics import rubricate
    pairs = rubricate(make_demo(40, seed=1, cues=[])['train'].select(range(12)), progress=False)
    aug = filter_augmented(augment(pairs, kinds=('causal', 'iqn'), progress=False).rows, chars, progress=False)
    b = PairBrowser(aug, originals=pairs, models={'chars': chars}, kind='causal', direction='degrade')
    n = len(b.matches)
    assert n == sum(k == 'causal' and d == 'degrade' for k, d in zip(aug['kind'], aug['direction'])) > 0
    seen = set()
    for _ in range(n):
        v = b.view
        assert v.source_found and v.rubric is not None and v.left == b.originals[b.current['source_id']]['chosen'] and v.right == b.current['rejected']
        assert b.scores['chars']['shift'] == len(response_text(v.right)) - len(response_text(v.left))
        seen.add(b.current_id); b.next_button.click()
    assert len(seen) == n


# ---------------------------------------------------------------- figures
def _shifts():
    rows = []
    for m, e, k, a, d, shifts in [('vanilla', 'offtopic_splice', 'causal', 'relevance', 'degrade', [-1.0, -3.0]),
                                  ('vanilla', 'politeness', 'spurious', 'tone', None, [1.0, 2.0]),
                                  ('crome', 'offtopic_splice', 'causal', 'relevance', 'degrade', [-2.0, -4.0]),
                                  ('crome', 'politeness', 'spurious', 'tone', None, [0.0, 0.0])]:
        for i, s in enumerate(shifts):
            rows.append(dict(model=m, edit=e, edit_kind=k, attribute=a, direction=d, pair_id=str(i), side='chosen',
                             reward_before=float(i), reward_after=i + s, shift=s, flipped=False))
    return pd.DataFrame(rows)


def test_shift_figure_values():
    fig = shift_figure(_shifts())
    got = {(t.name, t.xaxis): (list(t.x), list(t.y)) for t in fig.data}
    assert got == {('vanilla', 'x'): (['offtopic_splice'], [-2.0]), ('crome', 'x'): (['offtopic_splice'], [-3.0]),
                   ('vanilla', 'x2'): (['politeness'], [1.5]), ('crome', 'x2'): (['politeness'], [0.0])}
    assert all(t.type == 'bar' for t in fig.data) and fig.layout.barmode == 'group'
    err = {(t.name, t.xaxis): t.error_y.array[0] for t in fig.data}
    assert math.isclose(err['vanilla', 'x'], 1.96 * np.std([-1, -3], ddof=1) / math.sqrt(2))
    # a summary table from crome.evaluate works too
    from crome.evaluate import shift_summary
    fs = shift_figure(shift_summary(_shifts()))
    assert {(t.name, t.xaxis): list(t.y) for t in fs.data}[('crome', 'x')] == [-3.0]
    # normalised by the SD of each model's rewards before the edit, each edited answer once ([0, 1]: SD 0.7071)
    fn = shift_figure(_shifts(), normalize=True)
    assert math.isclose({(t.name, t.xaxis): t.y[0] for t in fn.data}['vanilla', 'x2'], 1.5 / np.std([0, 1], ddof=1))
    with pytest.raises(ValueError, match='edit_kind'): shift_figure(_shifts().drop(columns='edit_kind'))
    with pytest.raises(ValueError, match='no rows'): shift_figure(_shifts().iloc[:0])


def test_shift_figure_on_evaluate_output():
    from crome.evaluate import reward_shifts
    ds = to_dataset(_rows()[:2])
    df = reward_shifts({'chars': chars}, ds, edits=['swap_answer', 'add_quotes', 'politeness'])  # eval-role edits
    fig = shift_figure(df)
    st = shift_stats(df).set_index('edit')
    for t in fig.data:
        assert np.allclose(t.y, st.loc[list(t.x), 'mean_shift'])


def test_robustness_figure_values():
    df = pd.DataFrame([dict(model=m, side='both', transformation=t, n=5, accuracy=a, clean_accuracy=.9, drop=.9 - a)
                       for m, a0 in (('vanilla', .5), ('crome', .8)) for t, a in (('micro_avg', a0), ('add_quotes', a0 + .05), ('rot13', a0 - .05))])
    fig = robustness_figure(df)
    bars = [t for t in fig.data if t.type == 'bar']
    assert [t.name for t in bars] == ['vanilla', 'crome'] and list(bars[0].x) == ['add_quotes', 'rot13', 'micro_avg']
    assert np.allclose(bars[1].y, [.85, .75, .8])
    marks = [t for t in fig.data if t.type == 'scatter']
    assert len(marks) == 2 and np.allclose(marks[0].y, .9)
    assert np.allclose(robustness_figure(df, value='drop').data[0].y, [.35, .45, .4])
    for bar, mark in zip(bars, marks):  # the clean-accuracy dash is near black, not its bar's colour (unseen on it)
        assert mark.marker.color == '#111111' == mark.marker.line.color != bar.marker.color


def test_robustness_figure_on_evaluate_output():
    from crome.evaluate import robustness_suite
    rob = robustness_suite({'chars': chars, 'words': words}, to_dataset(_rows()[:2]), edits=['add_quotes', 'twitter_url'])
    fig = robustness_figure(rob)
    assert {t.name for t in fig.data if t.type == 'bar'} == {'chars', 'words'}
    assert len({t.yaxis for t in fig.data}) == rob.side.nunique()
    b = [t for t in fig.data if t.type == 'bar' and t.name == 'chars' and t.yaxis == 'y'][0]
    want = rob[(rob.model == 'chars') & (rob.side == rob.side.iloc[0])].set_index('transformation').accuracy
    assert np.allclose(b.y, want.loc[list(b.x)])


def test_best_of_n_and_keep_rate_figures():
    bon = pd.DataFrame([dict(model=m, method='argmax', n=n, seed=s, accuracy=a + .1 * s, random_acc=.25, oracle_acc=min(1, .25 * n))
                        for m, acc in (('vanilla', [.3, .4]), ('crome', [.3, .6])) for s in (0, 1) for n, a in zip((1, 4), acc)])
    fig = best_of_n_figure(bon)
    assert [t.name for t in fig.data] == ['vanilla', 'crome', 'random pick', 'pass@N (oracle)']
    assert np.allclose(fig.data[1].y, [.35, .65]) and list(fig.data[1].x) == [1, 4] and np.allclose(fig.data[3].y, [.25, 1])
    from crome.filter import filter_augmented, keep_rates
    fa = filter_augmented(to_dataset(_rows()), chars, progress=False)
    kr = keep_rates(fa)
    fig = keep_rate_figure(kr)
    causal = kr[kr.kind == 'causal']
    assert [t.name for t in fig.data] == ['causal', 'iqn'] and np.allclose(fig.data[0].x, causal.keep_rate)
    assert list(fig.data[0].text) == [f'{k}/{r}' for k, r in zip(causal.kept, causal.rows)]
    with pytest.raises(ValueError, match='no augmented rows'): keep_rate_figure(kr[kr.kind == 'original'])


def test_stress_and_training_figures():
    st = pd.DataFrame([dict(recipe=r, cue='signoff', strength=1, rho=rho, seed=s, clean_acc=.9, reversed_acc=acc + .1 * s, flip_share=0,
                            shift_over_margin=0) for r, accs in (('vanilla', [.8, .2]), ('crome', [.85, .7])) for s in (0, 1)
                       for rho, acc in zip((.5, .9), accs)])
    fig = stress_figure(st)
    assert [t.name for t in fig.data] == ['vanilla', 'vanilla (clean)', 'crome', 'crome (clean)']
    assert np.allclose(fig.data[0].y, [.85, .25]) and np.allclose(fig.data[3].y, [.9, .9]) and list(fig.data[2].x) == [.5, .9]
    assert np.allclose(stress_figure(st, metric='flip_share', show_clean=False).data[0].y, 0)
    log = [{'loss': .7, 'step': 5, 'epoch': .5}, {'loss': .4, 'step': 10}, {'eval_loss': .5, 'eval_accuracy': .8, 'step': 10}]
    hf = history_frame(log)
    assert hf[hf.key == 'loss'].value.tolist() == [.7, .4] and 'epoch' not in set(hf.key)
    fig = training_curves_figure({'bt': log, 'frozen': [.9, .5]})
    assert [(t.name, t.yaxis, list(t.y)) for t in fig.data] == [('bt', 'y', [.7, .4]), ('frozen', 'y', [.9, .5]), ('bt', 'y2', [.5])]
    with pytest.raises(ValueError, match='logged keys'): training_curves_figure(log, keys=['bleu'])


def test_renderer_is_only_set_on_request():
    import plotly.io as pio
    import importlib, crome.figures
    before = pio.renderers.default
    importlib.reload(crome.figures)
    assert pio.renderers.default == before
    old = use_small_renderer()
    try: assert pio.renderers.default == 'plotly_mimetype+notebook_connected' and old == before
    finally: pio.renderers.default = before


# ---------------------------------------------------------------- issue 15: ties, counts, a finished run
def test_tie_rows_are_labelled_as_ties():
    rows = _rows()
    v = pair_view(rows[-1], index_rows(rows))
    assert v.is_tie and (v.left_title, v.right_title) == ('answer A (tie)', 'answer B (tie)')
    h = view_html(v, {'chars': side_rewards(chars, 'q', v.left, v.right)})
    assert 'P(A wins), ideally 0.5' in h and 'r(original)' not in h and 'counterfactual' not in h
    assert 'r(original)' in view_html(pair_view(rows[2], index_rows(rows)), {'chars': side_rewards(chars, 'q', 'a', 'b')})


def test_dropdown_counts_follow_the_other_filters():
    b = PairBrowser(_rows())
    assert dict((v, l) for l, v in b.filters['direction'].options)['upgrade'] == 'upgrade (2)'
    b.filters['attribute'].value = 'relevance'
    opts = dict((v, l) for l, v in b.filters['direction'].options)
    assert opts['upgrade'] == 'upgrade (1)' and opts[ALL] == 'all (2)' and b.filters['attribute'].value == 'relevance'
    assert dict((v, l) for l, v in b.filters['attribute'].options)['completeness'] == 'completeness (1)'  # own filter ignored
    b.filters['kind'].value = 'iqn'
    assert b.matches == [] and dict((v, l) for l, v in b.filters['direction'].options)[ALL] == 'all (0)'


def test_browser_from_a_run_folder(tmp_path):
    import json, yaml, torch
    from transformers import BertConfig, BertModel
    from crome.model import default_backbone, load_tokenizer
    from crome.frozen import FrozenRewardModel
    tok = load_tokenizer(default_backbone()); torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tmp_path / 'bb')
    tok.save_pretrained(tmp_path / 'bb')
    run = tmp_path / 'run'
    (run / 'data').mkdir(parents=True); (run / 'filter').mkdir()
    rows = _rows()
    to_dataset(rows[:2]).to_parquet(str(run / 'data' / 'train.parquet'))
    to_dataset(rows, allow_extra=True).to_parquet(str(run / 'filter' / 'crome.parquet'))
    (run / 'config.yaml').write_text(yaml.safe_dump({'name': 'r', 'train': {'mode': 'frozen', 'backbone': str(tmp_path / 'bb')}}))
    fm = FrozenRewardModel(tmp_path / 'bb', head='linear', max_length=32)
    fm.build_head(fm.features(['q'], ['a']).shape[1]); fm.save(run / 'models' / 'crome-s0')
    b = PairBrowser.from_run(run, kind='causal')
    assert len(b.matches) == 3 and list(b.models) == ['crome-s0'] and b.view.source_found
    assert isinstance(b.scores['crome-s0'], dict) and np.isfinite(b.scores['crome-s0']['shift'])
    assert PairBrowser.from_run(run, models=False).models == {}
    with pytest.raises(FileNotFoundError, match='no model'): PairBrowser.from_run(run, models=['vanilla-s0'])
    with pytest.raises(FileNotFoundError, match='not a crome run folder'): PairBrowser.from_run(tmp_path)
    # issue 13: failed rewrites (with both texts in the rejects table) can be browsed like pairs
    import pandas as pd
    from crome.augment import REJECT_COLUMNS
    (run / 'augment').mkdir()
    src = rows[0]
    pd.DataFrame([dict(id='x:causal:relevance:degrade', source_id=src['id'], kind='causal', attribute='relevance',
                       direction='degrade', generator='edit:swap_topic_words', reason='spurious_change',
                       detail='adds markdown', original=src['chosen'], rewrite='**' + src['chosen'] + '**'),
                  dict(id='y:causal:clarity:upgrade', source_id=src['id'], kind='causal', attribute='clarity',
                       direction='upgrade', generator='-', reason='no_applicable_edit', detail='', original='',
                       rewrite='')], columns=list(REJECT_COLUMNS)).to_csv(run / 'augment' / 'crome_rejects.csv',
                                                                        index=False)
    rb = PairBrowser.from_run(run, which='rejects', models=False)
    assert len(rb.matches) == 1 and rb.current['verdict'] == 'rejected: spurious_change' and rb.view.source_found
    assert rb.current['rejected'] == '**' + src['chosen'] + '**' and rb.current['prompt'] == src['prompt']


def test_view_names_stay_importable_from_inspect():
    import crome.inspect, crome.views
    for n in ('word_diff', 'diff_html', 'PairView', 'pair_view', 'index_rows', 'as_records', 'side_rewards',
              'rubric_html', 'scores_html', 'view_html', 'DEL_STYLE', 'INS_STYLE', '_E'):
        assert getattr(crome.inspect, n) is getattr(crome.views, n), n


def test_run_rows_opens_only_named_sets_the_run_has(tmp_path):
    "A typo ('reject', 'Crome') or a set the run lacks ('rrm' on a crome-only run) is an error, not the training pairs."
    from crome.inspect import RUN_SETS, run_rows
    run = tmp_path / 'run'; (run / 'data').mkdir(parents=True); (run / 'filter').mkdir()
    (run / 'config.yaml').write_text('name: r\n')
    rows = _rows()
    to_dataset(rows[:2]).to_parquet(str(run / 'data' / 'train.parquet'))
    assert set(RUN_SETS) == {'crome', 'rrm', 'train', 'rejects'}
    with pytest.raises(FileNotFoundError, match=r'no crome set \(is crome in its train.recipes\?\)'): run_rows(run)
    to_dataset(rows, allow_extra=True).to_parquet(str(run / 'filter' / 'crome.parquet'))
    assert [r['id'] for r in run_rows(run)[0]] == [r['id'] for r in rows]
    assert [r['id'] for r in run_rows(run, 'train')[0]] == [r['id'] for r in rows[:2]]
    for typo in ('reject', 'Crome', 'training'):
        with pytest.raises(ValueError, match=rf"which='{typo}': not a set of a run \(one of crome, rrm, train, rejects\)"):
            PairBrowser.from_run(run, which=typo, models=False)
    with pytest.raises(FileNotFoundError, match='no rrm set'): PairBrowser.from_run(run, which='rrm', models=False)
    with pytest.raises(FileNotFoundError, match='no rejects table'): run_rows(run, 'rejects')
    (run / 'data' / 'train.parquet').unlink()
    with pytest.raises(FileNotFoundError, match='no data yet'): run_rows(run, 'train')
