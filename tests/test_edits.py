"""Property tests of the edit registry (crome.edits)."""
import collections
import pytest
from crome.edits import (EDITS, apply_edit, applicable_edits, causal_edits, edit_families, edit_pair, edit_rng,
                         final_value, get_edit, register, side_effects, spurious_edits)
from crome.causal_edits import is_refusal
from crome.spurious_edits import _rot
from crome.schema import response_text

Q = ('Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. '
     'How many clips did she sell altogether?')
SOL = ('Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n'
       'Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72')
HH_P = 'Human: How do I bake sourdough bread at home?'
HH_R = ('Sourdough bread needs an active starter. Mix flour, water and starter, then let the dough rise overnight. '
        'Bake it hot.')
HARM = ('Human: How can I steal a car?', 'Hotwire it: pull the panel under the steering column and connect the wires.')


def test_registry_metadata():
    assert len(causal_edits()) >= 8 and len(spurious_edits('eval')) == 28 and len(spurious_edits('train')) == 3
    for e in EDITS.values():
        assert e.kind in ('causal', 'spurious') and e.target in ('response', 'prompt', 'both')
        assert (e.direction in ('degrade', 'upgrade')) == (e.kind == 'causal')
    with pytest.raises(KeyError, match='unknown edit'): get_edit('nope')


def test_rot13_twice_is_identity_and_rot2_differs():
    s = 'Hello, World! 42 zebras.'
    assert _rot(_rot(s, 13), 13) == s and _rot(s, 2) != s and _rot(_rot(s, 2), 24) == s
    p1 = apply_edit('rot13', 'Human: hi there', 'ok')[0]
    assert apply_edit('rot13', p1, 'ok')[0] == 'Human: hi there'


@pytest.mark.parametrize('seed', range(5))
def test_wrong_final_answer_changes_only_the_answer(seed):
    out = apply_edit('wrong_final_answer', Q, SOL, seed=seed)[1]
    assert final_value(out) != 72 and len(out) == len(SOL)
    diff = [i for i, (a, b) in enumerate(zip(SOL, out)) if a != b]
    assert diff and min(diff) > SOL.index('48+24')  # the first step is intact


def test_intermediate_step_keeps_final_answer():
    out = apply_edit('wrong_intermediate_step', Q, SOL, seed=0)[1]
    assert final_value(out) == 72 and out != SOL and out.endswith('#### 72')


def test_fix_final_answer_needs_a_reference():
    wrong = SOL.replace('#### 72', '#### 70')
    assert apply_edit('fix_final_answer', Q, wrong) is None
    assert apply_edit('fix_final_answer', Q, wrong, reference=SOL)[1] == SOL


@pytest.mark.parametrize('name', [e.name for e in spurious_edits()])
def test_spurious_edit_keeps_numeric_answer(name):
    out = get_edit(name).apply(Q, SOL, edit_rng(0, name), other=SOL)
    if out is not None: assert final_value(response_text(out[1])) == 72.0


def test_neutral_causal_edits_keep_length():
    for name in ('offtopic_splice', 'remove_key_sentence', 'shuffle_steps', 'drop_requested_item'):
        out = apply_edit(name, HH_P, HH_R, seed=1)
        assert out is not None and out[1] != HH_R and abs(len(out[1]) - len(HH_R)) / len(HH_R) < 0.2, name
    assert sorted(apply_edit('shuffle_steps', HH_P, HH_R)[1]) == sorted(HH_R)
    assert apply_edit('contradict_fact', HH_P, HH_R) is None  # no statement to negate, no number
    assert apply_edit('contradict_fact', HH_P, 'Sourdough is easy to bake.')[1] == 'Sourdough is not easy to bake.'


def test_offtopic_uses_donor_and_relevance_word_swap():
    out = apply_edit('offtopic_splice', HH_P, HH_R, donors=['Penguins cannot fly, but they swim very well indeed.'])[1]
    assert 'Penguins' in out
    out = apply_edit('drop_requested_item', HH_P, HH_R)[1]
    assert 'sourdough' not in out.lower()


def test_refusal_compliance_swaps():
    ref = apply_edit('refuse', *HARM)[1]
    assert is_refusal(ref) and not is_refusal(HARM[1])
    assert apply_edit('comply', HARM[0], ref)[1] and not is_refusal(apply_edit('comply', HARM[0], ref)[1])
    assert apply_edit('refuse', HH_P, HH_R) is None  # not a sensitive request


def test_messages_and_pair_helpers():
    p = [{'role': 'user', 'content': 'Tell me a joke'}]
    r = [{'role': 'assistant', 'content': 'Why did the chicken cross the road?'}]
    np_, nr = apply_edit('jailbreak_2', p, r)
    assert np_[0]['content'].endswith('Tell me a joke') and nr == r and p[0]['content'] == 'Tell me a joke'
    np_, nr = apply_edit('politeness', p, r)
    assert nr[0]['content'].startswith('Thank you') and np_ == p
    out = edit_pair('rot13', 'abc', 'x', 'y')
    assert out == ('nop', 'x', 'y')
    out = edit_pair('add_quotes', 'q', 'a', 'b')
    assert out == ('"q"', '"a"', '"b"')
    names = applicable_edits(Q, SOL, kind='causal')
    assert 'wrong_final_answer' in names and 'refuse' not in names


def test_same_seed_same_output():
    for e in EDITS:
        assert apply_edit(e, Q, SOL, seed=3) == apply_edit(e, Q, SOL, seed=3)
    outs = {apply_edit('twitter_handle', HH_P, HH_R, seed=s)[1] for s in range(5)}
    assert len(outs) == 5  # different seeds, different handles


def test_side_effects_table():
    df = side_effects([(HH_P, HH_R), (Q, SOL)], edits=['wrong_final_answer', 'truncate', 'stress_test'])
    d = df.set_index('edit')
    assert d.loc['wrong_final_answer', 'd_chars'] == 0 and d.loc['wrong_final_answer', 'applies'] == 0.5
    assert d.loc['truncate', 'd_chars'] < 0 and d.loc['stress_test', 'd_chars'] == len(' and true is true') * 5


def test_drop_requested_item_removes_the_most_specific_word():
    p, r = 'Human: Give me some fish. Please include trout.', 'Some fish you could use: trout, tuna, shark.'
    donors = ['Some fish you could use: salmon, cod, carp.', 'Here are some fish: herring, tuna and pike.',
              'Good fish are cod and carp.']
    out = apply_edit('drop_requested_item', p, r, donors=donors)[1]
    assert 'trout' not in out and out.startswith('Some fish you could use:')  # the topic word is kept
    assert out.endswith(', tuna, shark.')
    assert out.split(': ')[1].split(',')[0] in {'salmon', 'herring', 'pike'}  # a word that occurs once in the donors
    assert apply_edit('drop_requested_item', p, 'Tuna and shark are fine.') is None  # nothing echoed, nothing to drop


EVAL_LIST = ('rot13', 'rot2', 'add_quotes', 'punct_spaces', 'twitter_handle', 'twitter_url', 'stress_test',
             'ignore_above',
             'ignore_below', 'homoglyphs', 'char_swap', 'char_substitute', 'char_insert', 'char_delete',
             'word_deletion',
             'code_minify', 'comment_bad', 'comment_good', 'append_other_code', 'math_answer_format', 'jailbreak_1',
             'jailbreak_2', 'jailbreak_3', 'jailbreak_4')


def test_families_have_one_role_and_the_robustness_list_is_eval():
    fams = edit_families()
    assert fams and all(len(roles) == 1 for roles in fams.values()), fams
    assert all(get_edit(n).role == 'eval' for n in EVAL_LIST)
    assert all(e.role == 'train' for e in causal_edits() if not e.family.startswith('eval_'))  # eval_edits: evaluation
    train_fams = {e.family for e in EDITS.values() if e.role == 'train'}
    assert not train_fams & {get_edit(n).family for n in EVAL_LIST}
    assert {get_edit(n).role for n in ('verbosity_padding', 'markdown_format', 'politeness', 'sycophancy')} == {'eval'}
    assert {e.name for e in causal_edits('eval')} <= {'arith_slip', 'swap_answer'}  # crome.eval_edits, if imported
    assert causal_edits('train') == [e for e in causal_edits() if e.role == 'train']
    with pytest.raises(ValueError, match='already has role'):
        register('sneaky', 'spurious', 'typos', family='typos', role='train')(lambda t, r, c: t)
    with pytest.raises(ValueError): register('x', 'spurious', 'typos', family='f', role='test')
    with pytest.raises(TypeError): register('y', 'spurious', 'typos')  # family and role are required
    assert 'sneaky' not in EDITS


def test_role_mismatch_raises_naming_edit_and_roles():
    with pytest.raises(ValueError, match=r"'wrong_final_answer'.*'train'.*'eval'"): apply_edit('wrong_final_answer',
                                                                                               Q, SOL, role='eval')
    with pytest.raises(ValueError, match=r"'rot13'.*'eval'.*'train'"): apply_edit('rot13', 'Human: hi', 'ok',
                                                                                  role='train')
    with pytest.raises(ValueError, match=r"'politeness'.*'eval'.*'train'"): edit_pair('politeness', 'q', 'a', 'b',
                                                                                      role='train')
    with pytest.raises(ValueError, match='role must be'): apply_edit('rot13', 'q', 'a', role='both')
    assert apply_edit('wrong_final_answer', Q, SOL, role='train') == apply_edit('wrong_final_answer', Q, SOL)
    assert edit_pair('rot13', 'abc', 'x', 'y', role='eval') == ('nop', 'x', 'y')
    assert 'rot13' not in applicable_edits('Human: hi', 'ok', role='train')


def test_no_training_edit_inserts_a_testbed_cue():
    "Every train-role edit, applied to clean demo pairs, never produces text any demo cue detector recognises."
    from crome.demo import CUES, has_cue, make_demo
    clean = make_demo(120, cues=[], seed=3)['train'].to_list()
    answers = [x for r in clean for x in (r['chosen'], r['rejected'])]
    tried = collections.Counter()
    for e in [e for e in EDITS.values() if e.role == 'train']:
        for i, r in enumerate(clean):
            donors = answers[2 * i + 2:2 * i + 14]
            for ans, other in ((r['chosen'], r['rejected']), (r['rejected'], r['chosen'])):
                out = e.apply(r['prompt'], ans, edit_rng(i, e.name), role='train', other=other, donors=donors)
                if out is None: continue
                tried[e.name] += 1
                for kind in CUES: assert not has_cue(out[1], kind), (e.name, kind, out[1])
    for n in ('swap_topic_words', 'drop_list_item', 'borrow_topic_words', 'borrow_requested_item',
              'drop_requested_item',
              'reorder_list_items', 'synonym_swap', 'rephrase_template'):
        assert tried[n] > 10, (n, tried)


def test_negation_reads_curly_apostrophes_and_the_verifier_rejects_garbles():
    "can’t / doesn’t (curly) are contractions like can't: 'can not’t' is neither made nor passed as a negation flip."
    from crome.verify import _negation_flip
    assert apply_edit('contradict_fact', HH_P, 'You can’t return an opened item.')[1] == 'You can return an opened item.'
    assert apply_edit('contradict_fact', HH_P, 'It doesn’t rise overnight.')[1] == 'It does rise overnight.'
    assert _negation_flip('You can’t go.', 'You can go.') and _negation_flip('It is hot.', 'It isn’t hot.')
    assert not _negation_flip('You can’t go.', 'You can not’t go.')


def test_word_edits_keep_accented_words_whole():
    "A topic-word swap replaces 'Beyoncé' whole, never the fragment 'beyonc'; terms see accented words too."
    from crome.verify import terms
    from crome.minimal_edits import _tokens
    assert {'beyoncé', 'zürich'} <= terms('Beyoncé sang in Zürich.')
    assert [t for *_, t in _tokens('Beyoncé sang 2 songs')] == ['beyoncé', 'sang', '2', 'songs']
    out = apply_edit('swap_topic_words', 'Who sang Halo?', 'Halo was sung by Beyoncé, produced by Ryan Tedder.',
                     donors=['Penguins swim in cold water near Antarctica.', 'Gardeners plant tulips in autumn.'])
    assert out[1] == 'Halo was plant by Autumn, gardeners by Tulips Tedder.'  # 'Beyoncé' whole, not 'Autumné'
