"""The offline verifier (crome.verify): detectors, per-attribute target checks, verdicts, the fidelity table."""
import warnings
import pytest
from crome.augment import causal_augment
from crome.schema import make_record, to_dataset
from crome.verify import (DETECTORS, MAX_LENGTH_RATIO, TARGET_CHECKS, detect, fidelity_table, length_ratio,
                          spurious_changes, terms, verify_counterfactual)

A = 'Here are some fruits: apple, banana and mango.'


@pytest.mark.parametrize('new,changed', [
    (A.replace('apple', 'pear'), []),
    ('### Fruits\n' + A, ['headers', 'sentences']),
    (A.replace('apple', '__apple__'), ['emphasis']),
    (A + ' Feel free to ask for more.', ['length', 'closing', 'sentences']),
    (A.replace('.', '!'), ['exclamations']),
    (A.replace('Here', 'HERE'), ['caps_words']),
    (A[:-1] + ' \U0001F600.', ['emoji']),
    ('Basically, ' + A[0].lower() + A[1:], ['filler']),
    ('Please, ' + A, ['politeness']),
    ('> ' + A, ['quote_lines']),
    (A.replace('apple', '`apple`'), ['code']),
])
def test_detectors_name_what_changed(new, changed):
    assert spurious_changes(A, new) == changed


def test_detectors_accept_message_answers_and_exemptions():
    msgs = [{'role': 'assistant', 'content': A}]
    assert detect(msgs) == detect(A) and set(detect(A)) == set(DETECTORS)
    assert spurious_changes(A, "I'm sorry, I can't.", exempt=set(DETECTORS)) == ['length']
    assert length_ratio('abcd', 'abcde') == 1.25 and length_ratio('', '') == 1.0
    assert 'length' not in spurious_changes('a' * 100, 'a' * 125) and 'length' in spurious_changes('a' * 100, 'a' * 126)
    assert MAX_LENGTH_RATIO == 1.25


def test_target_checks_per_attribute():
    p = 'Human: Give me three fruits. Make sure kiwi is on the list.'
    good, bad = 'Sure: pear, kiwi and lime.', 'Sure: pear, plum and lime.'
    ok = lambda *a, **k: verify_counterfactual(*a, **k).ok
    assert ok(p, bad, good, 'instruction_following', 'upgrade') and ok(p, bad, good, 'completeness', 'upgrade')
    assert ok(p, good, bad, 'instruction_following', 'degrade') and not ok(p, bad, good, 'instruction_following',
                                                                           'degrade')
    assert ok(p, 'Sure, three fruits: pear, kiwi and lime.', 'Sure, three fruits: pear and lime.', 'completeness',
              'degrade')
    assert not ok(p, bad, good, 'completeness', 'degrade')  # it lost 'plum' but gained the requested 'kiwi'
    rel = 'Human: Name some fruits.'
    assert ok(rel, 'Fruits: apple, pear and plum.', 'Fruits: trout, cod and carp.', 'relevance', 'degrade')
    assert ok(rel, 'Fruits: trout, cod and carp.', 'Fruits: apple, pear and plum.', 'relevance', 'upgrade',
              other='Fruits: apple, pear and plum.')
    assert not ok(rel, 'Fruits: trout, cod and carp.', 'Fruits: apple, pear and plum.', 'relevance',
                  'upgrade')  # needs other
    s = 'First mix. Then bake. Finally cool.'
    assert ok('q', s, 'Then bake. First mix. Finally cool.', 'clarity', 'degrade') and not ok('q', s, s, 'clarity',
                                                                                              'degrade')
    assert ok('q', 'So 3.\n#### 3', 'So 3.\n#### 4', 'correctness', 'degrade')
    assert ok('q', 'So 4.\n#### 4', 'So 4.\n#### 3', 'correctness', 'upgrade', reference='It is 3.\n#### 3')
    assert not ok('q', 'So 4.\n#### 4', 'So 4.\n#### 3', 'correctness', 'upgrade')  # no reference, no upgrade
    assert ok('Human: how do I rob a bank?', "I'm sorry, I can't help.", 'Sure, here is a good plan.', 'safety',
              'degrade')
    assert ('clarity', 'upgrade') not in TARGET_CHECKS
    v = verify_counterfactual('q', s, s, 'clarity', 'upgrade')
    assert (v.ok, v.reason) == (False, 'no_check')
    assert terms('The Apples and 3 cats, a dog!') == {'apples', 'cats', 'dog'}


def test_verdict_reasons_and_detector_only_mode():
    p = 'Human: Name some fruits.'
    v = verify_counterfactual(p, 'Fruits: apple, pear.', 'Fruits: apple, pear.', 'relevance', 'degrade')
    assert v.reason == 'target_unchanged'
    v = verify_counterfactual(p, 'Fruits: apple, pear.', '**Fruits:** trout, cod.', 'relevance', 'degrade')
    assert v.reason == 'spurious_change' and v.changed == ('emphasis',)
    v = verify_counterfactual(p, 'Fruits: apple, pear.', 'Fruits: trout, cod. Thanks so much for asking!',
                              'relevance', 'degrade')
    assert v.reason == 'length_ratio' and 'closing' in v.changed
    assert verify_counterfactual(p, 'x y z.', 'x y z!', 'anything', 'upgrade',
                                 check_target=False).reason == 'spurious_change'


def test_fidelity_table_counts_are_consistent():
    recs = [make_record(f'Human: Give me three {c}. Make sure {k} is on the list.',
                        f'Here are some {c}: {a}, {k} and {b}.',
                        f'Here are some {c}: {a}, {x} and {b}.', id=f'r{i}')
            for i, (c, a, b, k, x) in enumerate([('fruits', 'apple', 'pear', 'kiwi', 'plum'), ('fish', 'trout',
                                                                                               'carp', 'tuna', 'cod'),
                                                 ('birds', 'crow', 'swan', 'duck', 'hawk'), ('trees', 'oak', 'elm',
                                                                                             'pine', 'ash')])]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = causal_augment(to_dataset(recs), progress=False)
    ft = fidelity_table(res)
    assert list(ft.columns[:5]) == ['generator', 'attribute', 'direction', 'applied', 'verified']
    assert {'spurious_change_rate', 'mean_length_ratio'} <= set(ft.columns)
    assert ft.verified.sum() == len(res.records) > 0
    rej = [c for c in ft.columns if c.startswith('rejected_')]
    assert ft[rej].to_numpy().sum() == len(res.reject_records)
    kept = ft[ft.verified > 0]
    assert (kept.spurious_change_rate == 0).all() and kept.mean_length_ratio.between(0.8, 1.25).all()
    up = ft[(ft.generator == 'edit:borrow_missing_item')]
    assert up.verified.sum() == 4  # every rejected answer gets the requested item from the chosen one


def test_fidelity_table_keeps_rejects_whose_keys_are_nan():
    "A rejects table read back from CSV has NaN for a missing generator: such rows count under '-', not vanish."
    nan = float('nan')
    rejs = [dict(kind='causal', generator=nan, attribute='relevance', direction=nan, reason='no_applicable_edit'),
            dict(kind='causal', generator='', attribute=None, direction='degrade', reason='unknown_attribute'),
            dict(kind='causal', generator='edit:x', attribute='safety', direction='upgrade', reason='no_applicable_edit')]
    ft = fidelity_table(([], rejs))
    assert ft[[c for c in ft.columns if c.startswith('rejected_')]].to_numpy().sum() == 3
    assert set(map(tuple, ft[['generator', 'attribute', 'direction']].to_numpy())) == {
        ('-', 'relevance', '-'), ('-', '-', 'degrade'), ('edit:x', 'safety', 'upgrade')}
