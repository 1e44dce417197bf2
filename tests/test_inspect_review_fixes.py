"""Review fixes of the inspector and report: rejects without a generator reach the fidelity table through the CSV,
a CAN tie is shown as the data has it, prompt edits show the edited prompt, neutral rejects stay ties, NaN from a
DataFrame is a missing value, and bad filter values / duplicate shift rows are clear errors."""
import math
import numpy as np
import pandas as pd
import pytest
from crome.augment_base import REJECT_COLUMNS, _reject
from crome.schema import make_record, response_text


def _o(): return make_record('Name a fruit.', 'An apple is a fruit.', 'A hammer, I think.', id='o1')


def _run_with_rejects(d, rejects):
    "A run folder with one verified causal rewrite and a rejects CSV written the way the pipeline writes it."
    (d / 'augment').mkdir(parents=True)
    row = make_record('Name a fruit.', 'An apple is a fruit.', 'A hammer is a fruit.', id='o1:causal:relevance:degrade',
                      source_id='o1', kind='causal', attribute='relevance', direction='degrade',
                      generator='edit:offtopic_splice')
    pd.DataFrame([_o(), row]).to_parquet(d / 'augment/crome.parquet')
    pd.DataFrame(rejects, columns=list(REJECT_COLUMNS)).to_csv(d / 'augment/crome_rejects.csv', index=False)
    return d


def test_fidelity_section_counts_rejects_without_a_generator(tmp_path):
    from crome.report import fidelity_section
    rj = [_reject(f'o1:causal:{a}', 'o1', 'causal', 'no_applicable_edit', 'no edit applies', a, 'degrade')
          for a in ('clarity', 'safety')]
    rj += [_reject('o1:causal:x', 'o1', 'causal', 'unknown_attribute', 'not a known attribute', 'colour', None)]
    h = fidelity_section(_run_with_rejects(tmp_path, rj))
    rows = h.split('<tbody>')[1].split('<tr>')[1:]
    assert len(rows) == 4, h  # the verified edit + 2 attributes without an edit + the unknown attribute
    assert all(a in h for a in ('clarity', 'safety', 'colour'))
    assert sum('<td>-</td>' in r for r in rows) == 3  # no generator shows as '-'


def test_can_tie_is_chosen_against_the_rewrite():
    from crome.views import index_rows, pair_view, side_rewards, view_html
    o = _o()
    can = make_record(o['prompt'], o['chosen'], 'An apple, I think.', id='o1:can', source_id='o1', kind='can',
                      label=0.5)
    v = pair_view(can, index_rows([o]))
    assert (v.left, v.right, v.base) == (o['chosen'], can['rejected'], o['rejected'])
    assert v.is_tie and 'chosen' in v.left_title and 'rewrite' in v.right_title
    h = view_html(v, {'m': side_rewards(lambda P, R: [len(r) for r in R], v.prompt, v.left, v.right)})
    assert 'not scored' in h and 'hammer' in h  # the original rejected, shown as context
    assert f'{len(o["chosen"]):.3f}' in h  # r(A) is the chosen answer's reward
    v0 = pair_view(can, {})  # no source: no context, the tie still as in the data
    assert (v0.left, v0.right, v0.base) == (o['chosen'], can['rejected'], None)


def test_prompt_only_edit_keeps_and_shows_the_edited_prompt():
    from crome.examples import edit_examples, examples_html
    ds = [dict(prompt='What is the capital of France?', chosen='Paris is the capital of France.',
               rejected='Lyon.')]
    seen = []
    def rm(P, R): seen.append(list(P)); return np.array([len(r) for r in R], float)
    ex = {x['edit']: x for x in edit_examples({'m': rm}, ds)}
    x = ex['rot13']
    assert x['prompt_after'] != x['prompt'] and x['before'] == x['after'] and x['edited'] == 'prompt'
    h = examples_html([x])
    assert 'edited prompt' in h and 'pncvgny' in h and 'applied to the chosen answer' not in h
    y = next(x for x in ex.values() if x['edited'] == 'answer')
    assert y['prompt_after'] == y['prompt'] and 'edited prompt' not in examples_html([y])
    old = {k: v for k, v in y.items() if k not in ('prompt_after', 'edited')}  # examples.json of an older run
    assert f"applied to the {y['side']} answer" in examples_html([old])


def test_neutral_rejects_keep_their_kind_and_tie(tmp_path):
    from crome.inspect import rejected_rows
    from crome.views import index_rows, pair_view
    o = _o()
    rj = [_reject('o1:can', 'o1', 'can', 'identical_texts', 'same', generator='llm', original=o['rejected'],
                  rewrite=o['chosen']),
          _reject('o1:para', 'o1', 'para', 'unchanged', 'same', generator='llm', original=o['chosen'],
                  rewrite=o['chosen']),
          _reject('o1:causal:relevance:degrade', 'o1', 'causal', 'spurious_change', 'x', 'relevance', 'degrade',
                  'edit:e', o['chosen'], 'An apple.')]
    p = tmp_path / 'rej.csv'; pd.DataFrame(rj, columns=list(REJECT_COLUMNS)).to_csv(p, index=False)
    got = {r['kind']: r for r in rejected_rows(p, [o])}
    assert {k: r['label'] for k, r in got.items()} == {'can': 0.5, 'para': 0.5, 'causal': 1.0}
    assert (got['can']['chosen'], got['can']['rejected']) == (o['chosen'], o['chosen'])  # y_w vs the rewrite
    assert (got['para']['chosen'], got['para']['rejected']) == (o['chosen'], o['chosen'])
    assert got['can']['direction'] is None and got['causal']['rejected'] == 'An apple.'
    for r in got.values():
        v = pair_view(r, index_rows([o]))
        assert ('tie' in v.left_title) == (r['label'] == 0.5) and 'preferred' not in v.left_title


def test_as_records_turns_dataframe_nan_into_none():
    from crome.inspect import PairBrowser, facet_options
    from crome.views import as_records, index_rows, pair_view, rubric_html
    rub = '{"attributes": [{"name": "accuracy", "weight": 1.0, "description": "correct"}]}'
    rows = [dict(_o(), rubric=rub, attribute=None),
            dict(id='o1:c', prompt='Name a fruit.', chosen='An apple is a fruit.', rejected='An apple.', label=1.0,
                 kind='causal', source_id='o1', attribute='relevance', direction='degrade', rubric=None, kept=True)]
    df = pd.DataFrame(rows)
    df['rubric'] = df['rubric'].astype(object).where(df['rubric'].notna(), np.nan)
    recs = as_records(df)
    assert recs[1]['rubric'] is None and recs[0]['attribute'] is None and recs[0]['label'] == 1.0
    assert not any(isinstance(v, float) and math.isnan(v) for r in recs for v in r.values())
    assert 'accuracy' in rubric_html(pair_view(recs[1], index_rows(recs)).rubric)
    assert all('nan' not in lab for lab, _ in facet_options(recs, 'attribute'))
    assert 'nan' not in str(PairBrowser(df).filters['direction'].options)


def test_as_records_turns_pandas_nat_and_na_into_none():
    from crome.views import as_records
    df = pd.DataFrame({'when': [pd.Timestamp('2024-05-06'), pd.NaT], 'n': pd.array([1, None], dtype='Int64')})
    recs = as_records(df)
    assert recs[0] == {'when': pd.Timestamp('2024-05-06'), 'n': 1}
    assert recs[1] == {'when': None, 'n': None}  # NaT (a missing date) is missing like NaN / NA


def test_filter_values_are_checked():
    from crome.inspect import PairBrowser, matching_rows
    rows = [_o(), make_record('Name a fruit.', 'An apple is a fruit.', 'An apple.', id='o1:c', source_id='o1',
                              kind='causal', attribute='relevance', direction='degrade', kept=True)]
    assert matching_rows(rows, kept='kept') == [1] and matching_rows(rows, kind='nothing-here') == []
    with pytest.raises(ValueError, match="kept.*'kept', 'dropped', 'undecided'"): matching_rows(rows, kept=True)
    with pytest.raises(ValueError, match='kept.*kept'): PairBrowser(rows, kept=True)
    with pytest.raises(ValueError, match="kind.*'causal'"): PairBrowser(rows, kind='caussal')


def test_shift_figure_refuses_duplicate_summary_rows():
    from crome.figures import shift_figure
    s = pd.DataFrame(dict(model='m', edit=['e1', 'e2'], edit_kind='spurious', attribute=None, direction=None,
                          mean_shift=[0.1, 0.2], n=3))
    shift_figure(s)
    with pytest.raises(ValueError, match=r'shift_figure: 2 repeated \(model, edit\) rows'):
        shift_figure(pd.concat([s, s]))
