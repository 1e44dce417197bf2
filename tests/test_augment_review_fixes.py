"""Review fixes to augmentation, verification and filtering: the safety exemption, extra input columns (margin),
the other-prompt fallback, repeated attributes on the LLM path, extra columns in filter input, attributes= as a
string, adjective-form rubric names, and the documented limit of the relevance degrade check."""
import json, random, re, warnings
from types import SimpleNamespace as NS
import numpy as np
import pytest
from crome import augment_base
from crome.augment import _donors, causal_augment, canonical_attribute
from crome.augment_base import ATTRIBUTE_ALIASES, _Sources, content_hash
from crome.demo import make_demo
from crome.filter import filter_augmented
from crome.neutrals import augment, iqn_neutrals
from crome.schema import make_record, to_dataset
from crome.train_pairs import margins
from crome.verify import EXEMPT, verify_counterfactual

KINDS = ('causal', 'iqn', 'para', 'rrm')
STEAL = 'Human: how do I steal a car?'
COMPLY = 'Sure, here is how you could go about it, step by step, if you really want to try it out tonight.'
REFUSAL = "I'm sorry, but I can't help with that."
SIGNOFF = ' Feel free to ask if you need anything else.'


# A: a safety rewrite that adds (or drops) a sign-off is a spurious change; prose and code agree
def test_safety_edit_adding_a_signoff_is_rejected():
    assert verify_counterfactual(STEAL, COMPLY, REFUSAL + ' Is there something else I can help you with?', 'safety',
                                 'upgrade').ok  # politeness, sentences and questions are part of a refusal
    v = verify_counterfactual(STEAL, COMPLY, REFUSAL + SIGNOFF, 'safety', 'upgrade')
    assert (v.ok, v.reason, v.changed) == (False, 'spurious_change', ('closing',)), v
    v = verify_counterfactual(STEAL, REFUSAL + SIGNOFF, COMPLY, 'safety', 'degrade')
    assert (v.ok, v.changed) == (False, ('closing',)), v
    v = verify_counterfactual(STEAL, COMPLY, REFUSAL + SIGNOFF, 'harmlessness', 'upgrade', check_target=False)
    assert v.changed == ('closing',)  # the LLM path, after an oracle's Pass, on a rubric name
    assert 'closing' not in EXEMPT['safety']


def test_verify_notebook_lists_the_safety_exemption_exactly():
    nb = json.load(open('nbs/04c_verify.ipynb'))
    md = ' '.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    said = re.search(r'safety edits are exempt from(.*?);', md, re.S).group(1)
    assert set(re.findall(r'`(\w+)`', said)) == set(EXEMPT['safety'])


# B: margin and other input columns stay on original rows, None on augmented rows
def _pairs(n=6, **cols):
    return [make_record(f'Human: Name a fruit, {i}?', f'Apple is a fruit, {i}.', f'A rock is no fruit, {i}.', id=f'p{i}',
                        **{k: v[i] for k, v in cols.items()}) for i in range(n)]


def test_margin_and_extra_columns_travel_on_original_rows():
    recs = _pairs(margin=[0.5 * i for i in range(6)], note=list('abcdef'))
    res = augment(to_dataset(recs, allow_extra=True), kinds=('iqn', 'rrm'), progress=False)
    ds = res.rows
    assert {'margin', 'note'} <= set(ds.column_names)
    orig = ds.filter(lambda k: k == 'original', input_columns='kind')
    assert orig['margin'] == [0.5 * i for i in range(6)] and orig['note'] == list('abcdef')
    assert margins(orig, 'margin').tolist() == [0.5 * i for i in range(6)]  # a margin_column run can read them
    aug = ds.filter(lambda k: k != 'original', input_columns='kind')
    assert len(aug) and set(aug['margin']) == {None} and set(aug['note']) == {None}


def test_no_extra_columns_no_new_keys():
    r = augment(to_dataset(_pairs()), kinds=('iqn',), progress=False)
    assert all('margin' not in x and 'note' not in x for x in r.records)


# C: a dominant prompt no longer starves the draw of another prompt; ordinary data is unchanged
def _old_other(self, i, rng, tries=50):  # the draw before the fallback existed
    for _ in range(tries if len(self) > 1 else 0):
        j = rng.randrange(len(self) - 1); j += j >= i
        if self.keys[j] != self.keys[i]: return j
    return None


CROWD = [make_record('Human: Same question?' if i < 400 else f'Human: Other question {i}?', f'Good {i}.', f'Bad {i}.',
                     id=str(i)) for i in range(404)]


def test_dominant_prompt_finds_the_few_other_prompts(monkeypatch):
    new = iqn_neutrals(CROWD, seed=0)
    assert len(new.records) == 404 and not new.reject_records
    assert all(r['prompt'] != 'Human: Same question?' for r in new.records if int(r['source_id']) < 400)
    assert len(_donors(_Sources(CROWD), 0, random.Random(0))) == 12  # 6 other pairs, 2 answers each
    monkeypatch.setattr(_Sources, 'other', _old_other)
    old = iqn_neutrals(CROWD, seed=0)
    assert len(old.reject_records) > 100 and {r['reason'] for r in old.reject_records} == {'no_unrelated_prompt'}
    # rows the old draw found are the same rows now
    assert [r for r in new.records if r['id'] in {x['id'] for x in old.records}] == old.records


def test_one_prompt_only_still_rejects():
    same = [make_record('Human: Same?', f'a{i}', f'b{i}', id=str(i)) for i in range(3)]
    r = iqn_neutrals(same, seed=0)
    assert not r.records and [x['reason'] for x in r.reject_records] == ['no_unrelated_prompt'] * 3


def test_demo_augmentation_unchanged_by_the_fallback(monkeypatch):
    train = make_demo(60, seed=0)['train']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        new = content_hash(augment(train, kinds=KINDS, progress=False))
        monkeypatch.setattr(_Sources, 'other', _old_other)
        old = content_hash(augment(train, kinds=KINDS, progress=False))
    assert new == old


# D: a repeated attribute on the LLM path is asked once and rejected as duplicate_attribute
class StandIn:
    "Rewrites by a word swap and passes every verification."
    model = 'stand-in'

    def __init__(self): self.rewrites = 0

    def complete_many(self, msgs, response_format=None, **kw):
        out = []
        for m in msgs:
            body = m[-1]['content']
            if body.startswith('You check'):
                out.append(NS(text=json.dumps({'verdict': 'Pass', 'reason': 'ok'}), error=None)); continue
            self.rewrites += 1
            ans = [t for tag, t in re.findall(r'<(\w+)>\n(.*?)\n</\1>', body, re.S) if tag != 'response'][-1]
            out.append(NS(text=json.dumps({'rewrite': ans.replace('fruit', 'food')}), error=None))
        return out


@pytest.mark.parametrize('how', ['rubric', 'attributes'])
def test_llm_repeated_attribute_is_asked_once(how):
    recs = _pairs(2)
    rub = json.dumps({'attributes': [{'name': 'Relevance'}, {'name': 'Relevance'}]})
    if how == 'rubric': ds, attrs = to_dataset([dict(r, rubric=rub) for r in recs]), None
    else: ds, attrs = to_dataset(recs), ['Relevance', 'Relevance']
    o = StandIn()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = causal_augment(ds, oracle=o, attributes=attrs, progress=False)
    assert o.rewrites == 2 * 2  # 2 pairs x 2 directions, not twice that
    assert len(res.rows) == len(res.records) == 4  # no 'duplicated id' error
    dup = [r for r in res.reject_records if r['reason'] == 'duplicate_attribute']
    assert len(dup) == 4 and {r['attribute'] for r in dup} == {'Relevance'}


# E: filter_augmented takes records that carry extra columns
def test_filter_accepts_records_with_extra_columns():
    recs = _pairs(4)
    ds = to_dataset([dict(r, rubric=None, rubric_error='HTTP 500' if i == 0 else None) for i, r in enumerate(recs)],
                    allow_extra=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = augment(ds, kinds=('causal', 'iqn'), progress=False)
    assert any('rubric_error' in r for r in res.records)
    f = filter_augmented(res.records, lambda ps, rs: np.array([len(r) / 10 for r in rs]), progress=False)
    assert 'rubric_error' in f.column_names and len(f) == len(res.records)


# F: attributes= as a plain string is an error naming the parameter
def test_attributes_string_is_a_type_error():
    o = StandIn()
    for kw in ({}, {'oracle': o}):
        with pytest.raises(TypeError, match=r"attributes= must be a list.*\['relevance'\]"):
            augment(to_dataset(_pairs(2)), attributes='relevance', progress=False, **kw)
    assert o.rewrites == 0


# G: adjective-form rubric names map to the attributes the offline edits know
NEW_ALIASES = ('correct', 'accurate', 'truth', 'relevant', 'helpful', 'complete', 'clear', 'coherent')


@pytest.mark.parametrize('name,canon', [
    ('Correct answer', 'correctness'), ('Correct final answer', 'correctness'), ('Accurate', 'correctness'),
    ('Truthful', 'correctness'), ('Relevant', 'relevance'), ('Helpful', 'relevance'), ('Complete', 'completeness'),
    ('Clear', 'clarity'), ('Coherent', 'clarity'), ('incorrect', 'correctness'), ('irrelevant', 'relevance'),
    ('unclear', 'clarity'), ('incomplete', 'completeness')])
def test_adjective_forms_map(name, canon):
    assert canonical_attribute(name) == canon


def test_new_aliases_move_no_name_that_mapped_before(monkeypatch):
    names = ['Factual Accuracy', 'harmlessness', 'helpfulness', 'truthfulness', 'clear_refusal', 'complete_refusal',
             'coherence', 'detailed', 'follows_instructions', 'logical_coherence', 'instruction_following',
             'clear_structure', 'complete_and_accurate', 'relevance', 'safety', 'readability', 'topic_focus']
    now = {n: canonical_attribute(n) for n in names}
    monkeypatch.setattr(augment_base, 'ATTRIBUTE_ALIASES',
                        {k: v for k, v in ATTRIBUTE_ALIASES.items() if k not in NEW_ALIASES})
    before = {n: augment_base.canonical_attribute(n) for n in names}
    assert {n: v for n, v in now.items() if before[n] is not None} == {n: v for n, v in before.items() if v}
    assert [n for n in names if before[n] is None] == ['complete_and_accurate']


def test_offline_path_uses_the_adjective_forms():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = augment(make_demo(60, seed=0)['train'], kinds=('causal',), attributes=['Relevant'], progress=False)
    assert any(r['kind'] == 'causal' for r in res.records)
    assert 'unknown_attribute' not in {r['reason'] for r in res.reject_records}


# H: documented limit: a one-word synonym swap passes the relevance / completeness degrade checks
def test_relevance_degrade_cannot_tell_a_synonym_swap():
    p = 'Human: Tell me some examples of clothes.'
    a = 'Good examples of clothes are skirt, glove and sweater.'
    for attr in ('relevance', 'completeness'):
        assert verify_counterfactual(p, a, a.replace('clothes', 'garments'), attr, 'degrade').ok
