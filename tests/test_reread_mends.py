"Mends from the reread of this stop's fixes: each test failed on the first version of the fix."
import numpy as np
import pandas as pd
import pytest
from crome.schema import make_record, to_dataset, user_turns


def test_prompt_edits_on_chat_prompts_are_seen():
    from crome.examples import edit_examples
    msgs = [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'What is the capital of France?'}]
    ds = [dict(prompt=msgs, chosen='Paris is the capital of France.', rejected='Lyon.')]
    ex = {x['edit']: x for x in edit_examples({'m': lambda P, R: np.zeros(len(R))}, ds)}
    x = ex['rot13']
    assert x['edited'] == 'prompt' and 'capital' in x['prompt'] and x['prompt_after'] != x['prompt']


def test_a_quoted_user_line_is_not_a_turn():
    p = 'Write a Python function that counts the messages in a chat log like this one:\nUser: hi\nAI: hello'
    assert user_turns(p) == p
    from crome.offline_rubrics import detect_domain
    assert detect_domain(p) == 'code'


def test_user_transcripts_keep_a_conversation_in_one_split():
    from crome.splits import split_by_prompt
    recs = []
    for i in range(40):
        root = f'User: Tell me about topic {i}.'
        recs += [make_record(root, f'a{i}', f'b{i}', id=f'{i}a'),
                 make_record(f'{root}\nAI: b{i}\nUser: Go on.', f'c{i}', f'd{i}', id=f'{i}b')]
    sp = split_by_prompt(to_dataset(recs), {'train': .5, 'test': .5}, seed=0)
    where = {i: n for n, s in sp.items() for i in s['id']}
    assert all(where[f'{i}a'] == where[f'{i}b'] for i in range(40))


def test_margins_name_the_augmented_rows():
    from crome.train_pairs import margins
    ds = to_dataset([make_record('p', 'a', 'b', id='o', margin=2.0),
                     make_record('p', 'a2', 'b', id='c', kind='causal', attribute='relevance', direction='degrade',
                                 generator='edit:x')])
    with pytest.raises(ValueError, match=r'rows \[1\].*kind causal: augmented rows carry no margin'):
        margins(ds, 'margin')


def test_browser_none_is_no_filter():
    from crome.inspect import PairBrowser
    rows = [dict(make_record('p', 'a', 'b', id=f'r{i}'), kind='original') for i in range(2)]
    assert len(PairBrowser(rows, kind=None).matches) == 2


def test_fidelity_keys_take_pandas_na():
    from crome.verify import fidelity_table
    ft = fidelity_table(([], [dict(kind='causal', generator=pd.NA, attribute='relevance', direction='degrade',
                                   reason='no_applicable_edit')]))
    assert ft.generator.tolist() == ['-'] and int(ft['rejected_no_applicable_edit'].sum()) == 1
