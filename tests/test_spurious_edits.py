"""Paraphrase edits keep meaning (PARA neutrals are ties) and punct_spaces never splits a number (crome.spurious_edits)."""
import pytest
from crome.edits import apply_edit
from crome.neutrals import para_neutrals


def out(edit, text, seed=0):
    "The edited answer, or None when the edit does not fire."
    res = apply_edit(edit, 'q', text, seed=seed)
    return None if res is None else res[1]


@pytest.mark.parametrize('text', [
    'Speak slowly and clearly, and use visual aids.',  # was 'Speak slowly and use visual, and clearly aids.'
    'It is clear and concise, and the explanation is good.',  # was '... clear and the explanation, and concise'
    'Use `range(0, 10, 2)` to step by two.',  # was 'range(0, 2, 10)'
    'Use range(0, 10, 2) to step by two.', 'Add 1, 2 and 3.', 'The p-values were .01, .05 and .10.',  # numbers
    'Call it like this:\n```python\nresult = divide(10, 2, 3)\n```',  # a fenced block
    'Then:\n\n    x, y and z\n', 'Start:\n```\nred, green and blue.',  # an indented line, an unclosed fence
    'We need eggs, milk and flour to bake the cake.',  # the last item is not at the list's end
    'Buy apples, pears and plums, which are ripe.', 'apples, pears and plums',  # nor at . ; : ! ? or a line break
    'I went home, ate dinner and slept.', 'The dog barked, ran and jumped.',  # verb phrases
    'You need salt and pepper, oil and vinegar.',  # two conjunctions
    'Address: 1700 Pacific Coast Hwy, Capitola, CA\n\nMore.', 'Columns: season, local time, game, score\nRows: 3',
    'Parts: resistors, capacitors, diodes, etc.', 'Tags: innovative, creative, cutting-\n',  # 'etc', a cut-off word
    'Do it first, second and third.'])
def test_reorder_list_items_refuses_what_may_not_be_a_list(text):
    assert all(out('reorder_list_items', text, s) is None for s in range(4)), text


@pytest.mark.parametrize('text, want', [
    ('apples, pears and plums.', 'apples, plums and pears.'),
    ('We need fresh apples, pears, and plums; then go.', 'We need fresh apples, plums, and pears; then go.'),
    ('Colors: red, green or blue\nNext', 'Colors: red, blue or green\nNext'),
    ('Run `f(a, b, c)` with red, green and blue.', 'Run `f(a, b, c)` with red, blue and green.'),  # code skipped
    ('Steps:\n\n    f(a, b, c)\n\nUse red, green and blue.', 'Steps:\n\n    f(a, b, c)\n\nUse red, blue and green.'),
    ('Good: the property is well-kept, modern, and aesthetically pleasing.\n',
     'Good: the property is well-kept, aesthetically pleasing, and modern.\n')])
def test_reorder_list_items_still_reorders_plain_lists(text, want):
    assert out('reorder_list_items', text) == want


def test_reorder_list_items_is_seeded():
    t = 'Cities to see: Paris, Lyon, Marseille, Nice, Toulouse, and Bordeaux.'
    outs = [out('reorder_list_items', t, s) for s in range(6)]
    assert outs == [out('reorder_list_items', t, s) for s in range(6)] and len(set(outs)) > 1
    assert all(o.startswith('Cities to see: Paris, ') and sorted(o) == sorted(t) for o in outs)


@pytest.mark.parametrize('text, want', [
    ('Run `npm start` to launch it.', None), ('Run `npm start` or `mytool --help` to see options.', None),
    ('Run it:\n```python\nstart = 0\nwhile start < n:\n    start += 1\n```', None),
    ('Run it:\n```python\nstart = 0\nwhile start < n:\n    start += 1\n```\nIt is a big help.',
     'Run it:\n```python\nstart = 0\nwhile start < n:\n    start += 1\n```\nIt is a large assist.'),
    ('Start here:\n\n    start = big(1)\n', 'Begin here:\n\n    start = big(1)\n'),
    ('Start with `start = 0`, then try again.', 'Begin with `start = 0`, then attempt again.')])
def test_synonym_swap_never_edits_code(text, want):
    assert out('synonym_swap', text) == want


def test_para_neutrals_skip_the_garbling_edits():
    "The reviewer's rows: no paraphrase edit fits them any more, so they are rejected, not mislabelled as ties."
    ds = [dict(id=str(i), prompt='How do I loop?', chosen=c, rejected=c) for i, c in enumerate([
        'Speak slowly and clearly, and use visual aids.', 'Use `range(0, 10, 2)` to step by two.',
        'Run `npm start` to launch it.'])]
    for seed in range(3):
        r = para_neutrals(ds, seed=seed)
        assert not r.records and [x['reason'] for x in r.reject_records] == ['no_applicable_edit'] * 3


@pytest.mark.parametrize('text, want', [
    ('It was significant (p<.05).', 'It was significant (p<.05) . '),  # was '(p< . 05)'
    ('The range is [.25, .75].', 'The range is [.25 ,  .75] . '),  # was '[ . 25 ,  .75]'
    ('About ~.50 of them.', 'About ~.50 of them . '),  # was '~ . 50'
    ('It costs 3.50, ok.', 'It costs 3.50 ,  ok . '), ('x=.5;y=.25', 'x=.5 ; y=.25'),
    ('Pay is 18*.5 = $9, i.e. $.75 a mile.', 'Pay is 18*.5 = $9 ,  i . e .  $.75 a mile . '),
    ('See Fig.3 here.', 'See Fig . 3 here . ')])  # after a letter, a point is punctuation
def test_punct_spaces_keeps_numbers(text, want):
    assert out('punct_spaces', text) == want
