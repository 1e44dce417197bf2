"""Loaders: real-set row counts, and one clear error (file, position, field) per malformed input."""
import gzip, json
from pathlib import Path
import pandas as pd
import pytest
from conftest import DATA, needs_data
from crome.data import (load_pairs, load_hh_rlhf, load_gsm8k, load_pandalm, split_by_prompt, prompt_key,
                        gsm8k_pairs, fetch_data, data_dir, default_path)
from crome.readers import read_rows
from crome.schema import CromeDataError, MAX_TEXT_CHARS

GOOD = {'prompt': 'Q?', 'chosen': 'yes', 'rejected': 'no'}


def jl(tmp_path, rows, name='d.jsonl'):
    p = tmp_path / name
    p.write_text(''.join((r if isinstance(r, str) else json.dumps(r)) + '\n' for r in rows), encoding='utf-8')
    return p


def w(path, content):
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def one_error(path, **kw):
    with pytest.raises(CromeDataError) as ei:
        load_pairs(path, **kw)
    return ei.value


# --- real sets --------------------------------------------------------------------------------------------
@needs_data
def test_real_counts():
    hh, rep = load_hh_rlhf(return_report=True)
    assert len(hh) == 2312 and rep.excluded == {}
    assert len(load_gsm8k(DATA / 'gsm8k/train.jsonl')) == 7473
    assert len(load_gsm8k(DATA / 'gsm8k/test.jsonl')) == 1319
    pl, prep = load_pandalm(return_report=True)
    assert prep.read == 999 and len(pl) == 999 - sum(prep.excluded.values())
    assert prep.notes['ties'] == 105 and sum(l == 0.5 for l in pl['label']) == 105


@needs_data
def test_hh_conversational():
    hh = load_hh_rlhf(conversational=True)
    r = hh[0]
    assert r['prompt'][0]['role'] == 'user' and r['prompt'][-1]['role'] == 'user'
    assert r['chosen'][0]['role'] == 'assistant' and r['chosen'] != r['rejected']


def test_pandalm_majority(tmp_path):
    items = [dict(idx=0, instruction='Say hi', input='', response1='hi', response2='yo', annotator1=2, annotator2=2, annotator3=1),
             dict(idx=1, instruction='Say hi', input='friend', response1='hi', response2=True, annotator1=0, annotator2=0, annotator3=1),
             dict(idx=2, instruction='Say hi', input=None, response1='a', response2='b', annotator1=0, annotator2=1, annotator3=2)]
    p = tmp_path / 'p.json'; p.write_text(json.dumps(items))
    ds, rep = load_pandalm(p, return_report=True)
    assert len(ds) == 2 and rep.excluded == {'without an annotator majority': 1}
    assert (ds[0]['chosen'], ds[0]['rejected'], ds[0]['label']) == ('yo', 'hi', 1.0)
    assert (ds[1]['prompt'], ds[1]['rejected'], ds[1]['label']) == ('Say hi\n\nfriend', 'True', 0.5)


@needs_data
def test_split_is_grouped_and_seeded():
    ds = gsm8k_pairs(load_gsm8k(DATA / 'gsm8k/test.jsonl').select(range(200)))
    ds = ds.add_item({**ds[0], 'id': 'dup-prompt'})  # a second row with the same prompt
    a = split_by_prompt(ds, {'train': .5, 'test': .5}, seed=1)
    b = split_by_prompt(ds, {'train': .5, 'test': .5}, seed=1)
    c = split_by_prompt(ds, {'train': .5, 'test': .5}, seed=2)
    assert a['test']['id'] == b['test']['id'] and a['test']['id'] != c['test']['id']
    assert not set(map(prompt_key, a['train']['prompt'])) & set(map(prompt_key, a['test']['prompt']))
    where = [n for n in a if 'dup-prompt' in a[n]['id']][0]
    assert ds[0]['id'] in a[where]['id']
    with pytest.raises(ValueError): split_by_prompt(ds, {'train': .5, 'test': .6})


def test_formats_roundtrip(tmp_path):
    recs = [dict(GOOD, id=f'r{i}', chosen=f'yes {i}') for i in range(5)]
    pd.DataFrame(recs).to_csv(tmp_path / 'd.csv', index=False)
    pd.DataFrame(recs).to_parquet(tmp_path / 'd.parquet')
    (tmp_path / 'd.json').write_text(json.dumps(recs))
    with gzip.open(tmp_path / 'd.jsonl.gz', 'wt') as f: f.write(''.join(json.dumps(r) + '\n' for r in recs))
    ds = load_pairs(tmp_path / 'd.json'); ds.save_to_disk(str(tmp_path / 'saved'))
    for name in ('d.csv', 'd.parquet', 'd.json', 'd.jsonl.gz', 'saved'):
        out = load_pairs(tmp_path / name)
        assert out['chosen'] == [r['chosen'] for r in recs] and out['id'] == [r['id'] for r in recs], name
        assert set(out['label']) == {1.0} and set(out['kind']) == {'original'}


def test_column_map_and_extra(tmp_path):
    p = jl(tmp_path, [{'question': 'Q', 'good': 'a', 'bad': 'b', 'meta': 1}])
    ds = load_pairs(p, column_map={'question': 'prompt', 'good': 'chosen', 'bad': 'rejected'}, extra='drop')
    assert ds[0]['prompt'] == 'Q' and 'meta' not in ds.column_names
    ds = load_pairs(p, column_map={'question': 'prompt', 'good': 'chosen', 'bad': 'rejected'}, extra='keep')
    assert ds[0]['meta'] == 1


def test_conversational_file(tmp_path):
    p = jl(tmp_path, [{'prompt': [{'role': 'user', 'content': 'hi'}], 'chosen': [{'role': 'assistant', 'content': 'hello'}],
                       'rejected': [{'role': 'assistant', 'content': 'go'}]}])
    assert load_pairs(p)[0]['chosen'][0]['content'] == 'hello'


# --- malformed input: each gives one clear CromeDataError naming file, position and field ------------------
CASES = {
    'missing_file': (lambda t: t / 'nope.jsonl', 'no such file'),
    'hub_name': (lambda t: Path('nobody-here/no-such-set'), 'cannot load as a Hugging Face dataset'),
    'unknown_format': (lambda t: w(t / 'd.txt', 'x'), 'cannot tell the format'),
    'empty_file': (lambda t: w(t / 'e.jsonl', ''), 'contains no rows'),
    'non_json_line': (lambda t: jl(t, [GOOD, '{"prompt": oops}']), 'line 2: not valid JSON'),
    'json_not_object': (lambda t: jl(t, [GOOD, '[1, 2]']), 'line 2: expected an object'),
    'invalid_utf8': (lambda t: w(t / 'u.jsonl', json.dumps(GOOD).encode() + b'\n{"prompt": "\xff\xfe"}\n'), 'line 2: invalid UTF-8'),
    'corrupt_gzip': (lambda t: w(t / 'c.jsonl.gz', b'\x1f\x8b\x08\x00garbage-not-deflate'), 'corrupt or truncated gzip'),
    'truncated_gzip': (lambda t: w(t / 't.jsonl.gz', gzip.compress(((json.dumps(GOOD) + '\n') * 200).encode())[:60]), 'corrupt or truncated gzip'),
    'missing_column': (lambda t: jl(t, [{'prompt': 'Q', 'chosen': 'a'}]), "line 1, field 'rejected': missing required column"),
    'extra_column': (lambda t: jl(t, [dict(GOOD, choosen='x')]), "line 1, field 'choosen': unknown column"),
    'wrong_type': (lambda t: jl(t, [dict(GOOD, chosen=42)]), "field 'chosen': must be a string or a list of chat messages"),
    'null_text': (lambda t: jl(t, [dict(GOOD, rejected=None)]), "field 'rejected': is null"),
    'empty_string': (lambda t: jl(t, [dict(GOOD, prompt='   ')]), "field 'prompt': is empty"),
    'huge_row': (lambda t: jl(t, [dict(GOOD, chosen='x' * (MAX_TEXT_CHARS + 1))]), "field 'chosen': is 100,001 characters long"),
    'label_out_of_range': (lambda t: jl(t, [dict(GOOD, label=0.7)]), "field 'label': must be 1.0 (preference) or 0.5 (tie), got 0.7"),
    'label_bool': (lambda t: jl(t, [dict(GOOD, label=True)]), "field 'label': must be 1.0"),
    'label_string': (lambda t: jl(t, [dict(GOOD, label='yes')]), "field 'label': must be 1.0"),
    'chosen_equals_rejected': (lambda t: jl(t, [dict(GOOD, rejected='yes')]), "field 'rejected': equals chosen"),
    'duplicated_id': (lambda t: jl(t, [dict(GOOD, id='a'), dict(GOOD, id='a')]), "line 2, field 'id': duplicated id 'a' (first seen at line 1)"),
    'bad_role': (lambda t: jl(t, [dict(GOOD, chosen=[{'role': 'bot', 'content': 'x'}])]), "message 0 has unknown role 'bot'"),
    'message_without_content': (lambda t: jl(t, [dict(GOOD, chosen=[{'role': 'assistant'}])]), 'message 0 lacks content'),
    'empty_message_list': (lambda t: jl(t, [dict(GOOD, chosen=[])]), 'is an empty message list'),
    'bad_kind': (lambda t: jl(t, [dict(GOOD, kind='magic')]), "field 'kind': must be one of original"),
    'bad_direction': (lambda t: jl(t, [dict(GOOD, direction='sideways')]), "field 'direction'"),
    'baseline_p_out_of_range': (lambda t: jl(t, [dict(GOOD, baseline_p=1.5)]), "field 'baseline_p': must be a probability"),
    'csv_missing_column': (lambda t: (pd.DataFrame([{'prompt': 'Q', 'chosen': 'a'}]).to_csv(t / 'm.csv', index=False), t / 'm.csv')[1], "m.csv, row 1, field 'rejected'"),
    'csv_empty_cell': (lambda t: w(t / 'n.csv', 'prompt,chosen,rejected\nQ,,b\n'), "n.csv, row 1, field 'chosen': is empty"),
    'parquet_wrong_type': (lambda t: (pd.DataFrame([dict(GOOD, rejected=3.5)]).to_parquet(t / 'w.parquet'), t / 'w.parquet')[1], "w.parquet, row 1, field 'rejected'"),
    'json_not_array': (lambda t: w(t / 'o.json', '{"a": 1}'), 'expected a JSON array'),
    'not_parquet': (lambda t: w(t / 'x.parquet', 'hello'), 'cannot be read as parquet'),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_malformed_input(tmp_path, case):
    make, expect = CASES[case]
    path = make(tmp_path)
    err = one_error(path)
    msg = str(err)
    assert expect in msg, msg
    assert path.name in msg  # the file is named
    assert len(err.problems) == 1, msg  # one clear error, not a cascade


def test_all_problems_reported_at_once(tmp_path):
    p = jl(tmp_path, [dict(GOOD, label=3), GOOD, dict(GOOD, prompt=''), dict(GOOD, chosen=None)])
    err = one_error(p)
    assert [(q.row, q.field) for q in err.problems] == [(1, 'label'), (3, 'prompt'), (4, 'chosen')]


def test_empty_answers_say_how_to_allow_them_and_hh_names_its_own(tmp_path, caplog):
    "Review: load_pairs rejected empty answers without naming the escape; load_hh_rlhf kept its own silently."
    p = jl(tmp_path, [GOOD, dict(GOOD, rejected='')], 'own.jsonl')
    assert "own.jsonl, line 2, field 'rejected': is empty (to accept empty answers: empty_response_ok=True" in str(
        one_error(p))
    assert load_pairs(p, empty_response_ok=True)['rejected'] == ['no', '']
    t = '\n\nHuman: Hi?\n\nAssistant: '
    hh = jl(tmp_path, [{'chosen': t + 'Hello.', 'rejected': t + 'Go.'}, {'chosen': t + 'Hello.', 'rejected': t}], 'hh.jsonl')
    with caplog.at_level('WARNING', logger='crome.data'): ds, rep = load_hh_rlhf(hh, return_report=True)
    assert len(ds) == 2 and rep.notes == {'empty final answer': 1} and 'empty final answer: 1' in str(rep)
    assert [r.getMessage() for r in caplog.records] == [f'{hh}: kept 1 pairs with an empty final answer (lines 2), '
                                                        'as the set has them']


def test_gsm8k_bad_rows(tmp_path):
    p = jl(tmp_path, [{'question': 'q', 'answer': 'no final'}, {'question': '', 'answer': 'x\n#### 3'}], 'g.jsonl')
    with pytest.raises(CromeDataError) as ei: load_gsm8k(p)
    assert [(q.row, q.field) for q in ei.value.problems] == [(1, 'answer'), (2, 'question')]


def test_hh_bad_rows(tmp_path):
    p = jl(tmp_path, [{'chosen': 'no turns here', 'rejected': 'x'}, {'chosen': 5, 'rejected': 'x'}], 'h.jsonl')
    with pytest.raises(CromeDataError) as ei: load_hh_rlhf(p)
    assert [q.row for q in ei.value.problems] == [1, 2] and 'h.jsonl, line 1' in str(ei.value)


def test_load_pairs_splits_hh_transcripts_only_without_a_prompt(tmp_path):
    t = lambda *turns: ''.join(f'\n\n{"Human" if i % 2 == 0 else "Assistant"}: {x}' for i, x in enumerate(turns))
    rows = [{'a': t('Hi', 'Hello.', 'A fruit?', 'A pear.'), 'b': t('Hi', 'Hello.', 'A fruit?', 'No.')},
            {'a': t('Hi', 'Go.'), 'b': t('Bye', 'Go.')},  # no shared Human turn: an error, named
            {'a': t('Q'), 'b': t('Q', 'No.')}]  # chosen ends on the prompt: nothing to prefer
    err = one_error(jl(tmp_path, rows, 'h.jsonl'), column_map={'a': 'chosen', 'b': 'rejected'})
    assert [(q.row, q.field) for q in err.problems] == [(2, 'chosen'), (3, 'chosen')], str(err)
    assert 'share no user (Human) turn' in str(err) and 'chosen has no turn after the shared prompt' in str(err)
    ds, rep = load_pairs(jl(tmp_path, rows[:1], 'ok.jsonl'), column_map={'a': 'chosen', 'b': 'rejected'},
                         return_report=True)
    assert ds[0]['prompt'] == 'Human: Hi\n\nAssistant: Hello.\n\nHuman: A fruit?'
    assert (ds[0]['chosen'], ds[0]['rejected']) == ('A pear.', 'No.')
    assert rep.notes == {'hh-rlhf transcripts split': 1} and ds[0]['id'] == 'ok-1'
    kept = load_pairs(jl(tmp_path, [{'prompt': 'P', 'chosen': rows[0]['a'], 'rejected': rows[0]['b']}], 'p.jsonl'))
    assert kept[0]['chosen'] == rows[0]['a']  # a row with a prompt is never rewritten
    err = one_error(jl(tmp_path, [{'chosen': 'A pear.', 'rejected': 'No.'}], 'n.jsonl'))
    assert "missing required column 'prompt'" in str(err)  # ordinary answers without a prompt stay an error
    u, ok = [{'role': 'user', 'content': 'A fruit?'}], [{'role': 'assistant', 'content': 'A pear.'}]
    conv, rep = load_pairs(jl(tmp_path, [{'chosen': u + ok, 'rejected': u + [{'role': 'assistant', 'content': 'No.'}]},
                                         {'prompt': u + ok + u, 'chosen': ok, 'rejected': ok + ok}], 'c.jsonl'),
                           return_report=True)
    assert conv[0]['prompt'] == u and conv[0]['chosen'] == ok  # TRL's implicit prompt, kept as messages
    assert conv[1]['prompt'] == u + ok + u  # a row with a prompt is left as it is
    assert rep.notes == {'implicit prompts split': 1}


# --- issue 16 bugs 3-6: each failed before its fix -----------------------------------------------------------
def test_mixed_string_and_message_prompts_name_file_line_field(tmp_path):
    p = jl(tmp_path, [GOOD, dict(GOOD, prompt=[{'role': 'user', 'content': 'Q?'}])], 'mixed.jsonl')
    err = one_error(p)  # was a bare ArrowTypeError
    assert len(err.problems) == 1 and "mixed.jsonl, line 2, field 'prompt': is a message list but line 1" in str(err)


def test_int_and_string_ids_are_duplicates(tmp_path):
    err = one_error(jl(tmp_path, [dict(GOOD, id=1), dict(GOOD, id='1')], 'ids.jsonl'))
    assert "ids.jsonl, line 2, field 'id': duplicated id '1' (first seen at line 1)" in str(err)


@pytest.mark.parametrize('fmt', ['jsonl', 'json', 'csv', 'jsonl.gz'])
def test_utf8_bom_is_accepted(tmp_path, fmt):
    body = {'jsonl': json.dumps(GOOD) + '\n', 'json': json.dumps([GOOD]), 'csv': 'prompt,chosen,rejected\nQ?,yes,no\n',
            'jsonl.gz': json.dumps(GOOD) + '\n'}[fmt]
    data = b'\xef\xbb\xbf' + body.encode()
    p = w(tmp_path / f'bom.{fmt}', gzip.compress(data) if fmt.endswith('.gz') else data)
    assert load_pairs(p)[0]['prompt'] == 'Q?'


def test_rejected_messages_without_assistant_turn(tmp_path):
    rows = [dict(GOOD, chosen=[{'role': 'assistant', 'content': 'yes'}], rejected=[{'role': 'user', 'content': 'more?'}])]
    err = one_error(jl(tmp_path, rows, 'na.jsonl'))
    assert "na.jsonl, line 1, field 'rejected': message list has no assistant turn" in str(err)


# --- issue 15: own columns in errors, column maps, hub names, data folder ---------------------------------
def test_missing_column_lists_the_users_columns_and_suggests(tmp_path):
    err = one_error(jl(tmp_path, [{'prompt': 'Q', 'chosen': 'a', 'better_not': 'b'}], 'own.jsonl'))
    msg = str(err)
    assert "columns in the data: prompt, chosen, better_not" in msg and 'source_id' not in msg and 'kind' not in msg
    err = one_error(jl(tmp_path, [{'prompt': 'Q', 'chosen': 'a', 'rejectd': 'b'}], 'typo.jsonl'))
    assert "did you mean 'rejectd'" in str(err) and '--columns rejected=rejectd (crome train/eval/augment)' in str(err)
    assert 'or data.columns: {rejectd: rejected} (a run config)' in str(err)  # `crome run` has no --columns flag
    err = one_error(jl(tmp_path, [{'prompt': 'Q', 'chosen': 'a', 'zzz': 'b'}], 'own2.jsonl'))
    assert str(err.problems[0]).endswith(
        "missing required column 'rejected' (columns in the data: prompt, chosen, zzz); map it with column_map="
        "{'YOURS': 'rejected'} (Python), --columns rejected=YOURS (crome train/eval/augment) or data.columns: "
        "{YOURS: rejected} (a run config)")


def test_column_map_that_matches_nothing_is_an_error(tmp_path):
    err = one_error(jl(tmp_path, [GOOD]), column_map={'better': 'chosen'})
    assert "column_map names 'better', which no row has" in str(err) and 'did you mean' not in str(err)
    typo = jl(tmp_path, [{'question': 'Q', 'chosen': 'a', 'rejected': 'b'}], 'typo.jsonl')
    err = one_error(typo, column_map={'questoin': 'prompt'})  # review: a typo in the map got no hint
    assert str(err.problems[-1]) == (f"{typo}: column_map names 'questoin', which no row has (columns in the data: "
                                    "chosen, question, rejected); did you mean 'question' for 'questoin'?")


def test_folder_of_data_files_loads_file_by_file(tmp_path):
    d = tmp_path / 'myset'; d.mkdir()
    (d / 'train.jsonl').write_text(json.dumps({'q': 'Q?', 'better': 'yes', 'worse': 'no'}) + '\n')
    ds = load_pairs(d, column_map={'q': 'prompt', 'better': 'chosen', 'worse': 'rejected'})
    assert (ds[0]['prompt'], ds[0]['chosen'], ds[0]['rejected'], ds[0]['id']) == ('Q?', 'yes', 'no', 'train-1')


def test_folder_errors_name_the_file_and_line(tmp_path):
    "Review: a folder's errors named neither file nor line ('fold3, row 1', or a DatasetGenerationError)."
    d = tmp_path / 'fold'; d.mkdir()
    jl(d, [GOOD, dict(GOOD, prompt='Q2')], 'a.jsonl')
    jl(d, [dict(GOOD, prompt='Q3'), dict(GOOD, chosen=None), dict(GOOD, prompt='Q4', id='a-1')], 'b.jsonl')
    err = one_error(d)
    assert [str(p) for p in err.problems] == [f"{d / 'b.jsonl'}, line 2, field 'chosen': is null",
                                              f"{d / 'b.jsonl'}, line 3, field 'id': duplicated id 'a-1' (first seen at "
                                              f"{d / 'a.jsonl'}, line 1); ids are compared as text"]
    jl(d, [GOOD, '{"prompt": "Q", "chosen": "a"', GOOD], 'b.jsonl')
    assert [str(p) for p in one_error(d).problems] == [f"{d / 'b.jsonl'}, line 2: not valid JSON (Expecting ',' "
                                                       "delimiter at column 1)"]
    jl(d, [dict(GOOD, prompt=f'Q{i}') for i in range(3)], 'b.jsonl'); (d / 'sub').mkdir()
    jl(d / 'sub', [dict(GOOD, prompt='Q9')], 'c.jsonl')
    ds = load_pairs(d)  # every file, in order; default ids are each file's own stem and line
    assert ds['id'] == ['a-1', 'a-2', 'b-1', 'b-2', 'b-3', 'sub-c-1'] and len(ds) == 6


def test_folder_splits_and_strays(tmp_path):
    d = tmp_path / 'sp'; d.mkdir()
    jl(d, [GOOD], 'train.jsonl'); jl(d, [dict(GOOD, prompt='T')], 'test.jsonl'); jl(d, [GOOD], 'extra.jsonl')
    err = one_error(d)  # the hub's folder loader would skip extra.jsonl without a word
    assert str(err.problems[0]).startswith(f"{d / 'extra.jsonl'}: is in no split of {d} (its splits: train, test)")
    (d / 'extra.jsonl').unlink(); (d / 'README.md').write_text('about')  # a README is not data and not an error
    assert load_pairs(d, split='test')['prompt'] == ['T'] and load_pairs(d)['prompt'] == ['Q?']
    assert "has no files of split 'validation'; its splits: train, test" in str(one_error(d, split='validation'))
    (d / 'notes.txt').write_text('x'); (d / 'train.jsonl').rename(d / 'a.jsonl'); (d / 'test.jsonl').unlink()
    assert "notes.txt: is not a data file (jsonl, json, csv, parquet, optionally .gz): move it out" in str(one_error(d))
    (d / 'notes.txt').unlink(); pd.DataFrame([GOOD]).to_csv(d / 'b.csv', index=False)
    assert 'mixes formats (csv, jsonl)' in str(one_error(d))


def test_a_missing_column_is_reported_once_across_a_folder(tmp_path):
    d = tmp_path / 'f'; d.mkdir()
    for n in 'ab': jl(d, [{'promt': 'Q', 'chosen': 'a', 'rejected': 'b'}] * 2, f'{n}.jsonl')
    err = one_error(d)
    assert len(err.problems) == 1 and str(err.problems[0]).startswith(f"{d / 'a.jsonl'}, line 1, field 'prompt'")
    assert "did you mean 'promt'?" in str(err) and '[4 lines in 2 files lack it]' in str(err)


def test_default_paths_use_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('CROME_DATA', str(tmp_path))
    assert data_dir() == tmp_path
    with pytest.raises(CromeDataError) as e: load_gsm8k()
    assert 'crome data get gsm8k' in str(e.value) and str(tmp_path) in str(e.value)
    with pytest.raises(CromeDataError) as e: load_pandalm()
    assert 'WeOpenML/PandaLM' in str(e.value)


def test_fetch_data_from_a_local_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv('CROME_DATA', str(tmp_path / 'cache'))
    mirror = tmp_path / 'hh'; (mirror / 'harmless-base').mkdir(parents=True)
    t = '\n\nHuman: Hi?\n\nAssistant: '
    (mirror / 'harmless-base' / 'test.jsonl').write_text(json.dumps({'chosen': t + 'Hello.', 'rejected': t + 'Go.'}) + '\n')
    got = fetch_data(['hh-rlhf'], sources={'hh-rlhf': mirror})
    assert got['hh-rlhf'] == [tmp_path / 'cache/hh-rlhf/harmless-base/test.jsonl.gz']
    hh = load_hh_rlhf()  # the default path now finds it
    assert (hh[0]['prompt'], hh[0]['chosen'], hh[0]['rejected']) == ('Human: Hi?', 'Hello.', 'Go.')
    with pytest.raises(ValueError): fetch_data(['nope'])


def test_a_missing_column_is_reported_once_per_file(tmp_path):
    err = one_error(jl(tmp_path, [{'q': 'Q', 'chosen': 'a', 'rejected': 'b'}] * 3, 'm.jsonl'))
    assert len(err.problems) == 1 and '[3 lines lack it]' in str(err) and 'line 1' in str(err)


def test_readers_names_stay_importable_from_data():
    import crome.data, crome.readers
    for n in ('read_rows', 'detect_format', 'is_hub_name', 'check_exists', 'FORMATS', 'parse_transcript',
              'render_turns'):
        assert getattr(crome.data, n) is getattr(crome.readers, n), n


def test_null_or_blank_kind_is_original(tmp_path):
    "Review: a blank kind cell kept kind None, and crome.filter then treated the original pair as an augmentation."
    w(tmp_path / 'k.csv', 'prompt,chosen,rejected,kind\nQ1,a,b,original\nQ2,c,d,\n')
    assert load_pairs(tmp_path / 'k.csv')['kind'] == ['original', 'original']
    p = jl(tmp_path, [dict(GOOD, kind=None), dict(GOOD, prompt='Q2', kind=' '), dict(GOOD, prompt='Q3', kind='iqn',
                                                                                    label=0.5)])
    assert load_pairs(p)['kind'] == ['original', 'original', 'iqn']


def test_json_array_positions_are_items(tmp_path):
    "Review: a JSON array's problems said 'line N' for the N-th item."
    p = w(tmp_path / 'a.json', json.dumps([GOOD, dict(GOOD, chosen='')], indent=2))
    err = one_error(p)
    assert [str(x) for x in err.problems] == [f"{p}, item 2, field 'chosen': is empty (to accept empty answers: "
                                              "empty_response_ok=True, --allow-empty on the crome command line, or "
                                              "data.allow_empty: true in a run config)"]
    assert 'line 1' in str(one_error(w(tmp_path / 'b.json', '[{"prompt": "Q",}]')))  # a syntax error has a real line


def test_column_map_collisions_are_errors(tmp_path):
    "Review: a mapped column that clashed with an existing one silently overwrote it (the last key won)."
    p = jl(tmp_path, [dict(GOOD, question='other Q'), dict(GOOD, question='other Q')], 'c.jsonl')
    err = one_error(p, column_map={'question': 'prompt'})
    assert [(x.row, x.field) for x in err.problems] == [(1, 'prompt')]
    assert (f"{p}, line 1, field 'prompt': columns 'prompt', 'question' both become 'prompt' under "
            "column_map={'question': 'prompt'}; drop or rename one [2 lines]") == str(err.problems[0])
    q = jl(tmp_path, [{'q': 'Q', 'question': 'Q?', 'chosen': 'a', 'rejected': 'b'}], 'two.jsonl')
    err = one_error(q, column_map={'q': 'prompt', 'question': 'prompt'})  # two mapped columns onto one
    assert "columns 'q', 'question' both become 'prompt'" in str(err) and len(err.problems) == 1
    # a swap is not a clash, and a clash on a column that extra='drop' drops anyway is harmless
    ds = load_pairs(p, column_map={'question': 'prompt', 'prompt': 'old_prompt'}, extra='keep')
    assert (ds[0]['prompt'], ds[0]['old_prompt']) == ('other Q', 'Q?')
    r = jl(tmp_path, [dict(GOOD, a=1, b=2)], 'drop.jsonl')
    assert load_pairs(r, column_map={'a': 'meta', 'b': 'meta'}, extra='drop')[0]['prompt'] == 'Q?'


def test_saved_dataset_dict_reads_one_split(tmp_path):
    "Review: a DatasetDict.save_to_disk folder fell to load_dataset's folder guessing (splits could be mixed)."
    from datasets import Dataset, DatasetDict
    from crome.readers import detect_format
    tr = [dict(GOOD, id=f't{i}') for i in range(3)]
    te = [dict(GOOD, prompt='other', id=f'e{i}') for i in range(2)]
    DatasetDict(train=Dataset.from_list(tr), test=Dataset.from_list(te)).save_to_disk(str(tmp_path / 'dd'))
    assert detect_format(tmp_path / 'dd') == 'hf'
    assert load_pairs(tmp_path / 'dd')['id'] == ['t0', 't1', 't2']
    assert load_pairs(tmp_path / 'dd', split='test')['id'] == ['e0', 'e1']
    err = one_error(tmp_path / 'dd', split='validation')
    assert str(err.problems[0]) == (f"{tmp_path / 'dd'}: saved DatasetDict has no split 'validation'; its splits: "
                                    "train, test (choose one: split= in Python, --split on crome augment/train/eval, "
                                    "data.split in a run config)")


def test_a_raw_public_file_is_named_with_its_loader(tmp_path):
    "PandaLM's or GSM8K's own file where pairs are expected: one problem per file naming the set and its loader."
    from crome.data import load_pairs
    from crome.schema import CromeDataError
    rows = [dict(idx=i, instruction=f'q{i}', input='', response1='a', response2='b', annotator1=1, annotator2=1,
                 annotator3=2) for i in range(3)]
    (tmp_path / 'p.json').write_text(json.dumps(rows))
    with pytest.raises(CromeDataError) as e: load_pairs(tmp_path / 'p.json')
    assert len(e.value.problems) == 1
    msg = str(e.value)
    assert "the raw layout of the public set 'pandalm'" in msg and 'load_pandalm(PATH)' in msg
    assert msg.endswith('[3 items]')
    assert 'column_map' not in msg  # no column map can turn three votes into a preference
    (tmp_path / 'g.jsonl').write_text(json.dumps(dict(question='1+1?', answer='2 #### 2')) + '\n')
    with pytest.raises(CromeDataError, match="public set 'gsm8k'.*gsm8k_pairs"): load_pairs(tmp_path / 'g.jsonl')


# --- review fixes: CSV typing after column_map, hub names, surrogates, mixed extra columns, ids, near-duplicates ---
def test_csv_cells_are_typed_by_the_column_they_become(tmp_path):
    "An empty answer cell of a renamed column is an empty answer; renamed number and boolean columns are parsed."
    m = {'question': 'prompt', 'good': 'chosen', 'bad': 'rejected'}
    p = w(tmp_path / 'a.csv', 'question,good,bad\nq1,yes,\nq2,ok,no\n')
    assert load_pairs(p, column_map=m, empty_response_ok=True)['rejected'] == ['', 'no']
    same = w(tmp_path / 'b.csv', 'prompt,chosen,rejected\nq1,yes,\nq2,ok,no\n')  # as with the crome names
    assert load_pairs(same, empty_response_ok=True)['rejected'] == ['', 'no']
    assert "a.csv, row 1, field 'rejected': is empty" in str(one_error(p, column_map=m))  # still an error by default
    p = w(tmp_path / 'n.csv', 'prompt,chosen,rejected,gap,p0,keep,lab\nq1,yes,no,0.5,0.25,true,0.5\nq2,a,b,,,,1\n')
    ds = load_pairs(p, column_map={'gap': 'margin', 'p0': 'baseline_p', 'keep': 'kept', 'lab': 'label'})
    assert (ds['margin'], ds['baseline_p'], ds['kept'], ds['label']) == ([0.5, None], [0.25, None], [True, None],
                                                                       [0.5, 1.0])
    # a blank label cell is an error now (it used to become 1.0); see test_a_null_label_is_an_error_not_a_preference


@pytest.mark.parametrize('name', ['d6/missing.jsonl', 'data/train.jsonl', 'x/train.CSV.gz', 'a/b.parquet'])
def test_a_missing_data_file_is_not_a_hub_name(tmp_path, monkeypatch, name):
    from crome.readers import is_hub_name
    monkeypatch.chdir(tmp_path)
    assert not is_hub_name(name) and is_hub_name('Anthropic/hh-rlhf')
    err = one_error(name)
    assert [str(p) for p in err.problems] == [f'{name}: no such file or directory']


def test_a_lone_surrogate_is_named_by_file_line_field(tmp_path):
    p = w(tmp_path / 's.jsonl', '{"prompt": "p", "chosen": "ok", "rejected": "no"}\n'
                                '{"prompt": "p2", "chosen": "bad \\ud800 half", "rejected": "no"}\n')
    err = one_error(p)
    assert len(err.problems) == 1 and str(err.problems[0]).startswith(
        f"{p}, line 2, field 'chosen': holds a lone surrogate at character 5 (half of a UTF-16 pair")
    str(err).encode('utf-8')  # the message itself is printable


def test_an_extra_column_of_mixed_types_is_named(tmp_path):
    p = jl(tmp_path, [dict(GOOD, score=1), dict(GOOD, prompt='Q2', score={'x': 1})])
    msg = str(one_error(p, extra='keep'))
    assert f"{p}, field 'score': cannot be stored as one Arrow column: it holds int (line 1), dict (line 2)" in msg
    assert msg.endswith("give its values one type or drop the column (extra='drop' in load_pairs)")
    assert 'score' not in load_pairs(p, extra='drop').column_names


def test_default_ids_keep_the_whole_file_name(tmp_path):
    f = tmp_path / 'fold'; f.mkdir()
    for n in ('train.part1.jsonl', 'train.part2.jsonl.gz'):
        data = (json.dumps(dict(GOOD, prompt=n)) + '\n').encode()
        (f / n).write_bytes(gzip.compress(data) if n.endswith('.gz') else data)
    assert load_pairs(f)['id'] == ['train.part1-1', 'train.part2-1']
    assert load_pairs(jl(tmp_path, [GOOD], 'train.jsonl'))['id'] == ['train-1']  # ordinary names: ids unchanged


def _old_split(ds, fractions, seed):
    "split_by_prompt before near-duplicate grouping (by prompt_key alone): split name -> ids."
    keys = [prompt_key(p) for p in ds['prompt']]
    where = _old_assign(keys, fractions, seed)
    return {n: [i for i, k in zip(ds['id'], keys) if where[k] == n] for n in fractions}


def _old_assign(keys, fractions, seed):
    "The old splits' group assignment: the sorted distinct keys, shuffled by `seed`, cut by `fractions`."
    import random
    uniq = sorted(set(keys)); random.Random(seed).shuffle(uniq)
    where, start, acc = {}, 0, 0.0
    for n, f in fractions.items():
        acc += f; b = round(acc * len(uniq))
        for k in uniq[start:b]: where[k] = n
        start = b
    return where


def test_near_duplicate_prompts_share_a_split_and_other_splits_do_not_change():
    from crome.schema import make_record, to_dataset
    near = ['Name three fruits.', 'name three fruits.', 'Name  three fruits.']
    ds = to_dataset([make_record(p, f'a{i}', f'b{i}', id=f'n{i}') for i, p in enumerate(near)]
                    + [make_record(f'other {i}', 'a', 'b', id=f'o{i}') for i in range(20)])
    fr, ids = {'train': .8, 'test': .2}, {'n0', 'n1', 'n2'}
    for seed in range(10):
        assert sum(bool(ids & set(s['id'])) for s in split_by_prompt(ds, fr, seed=seed).values()) == 1, seed
    assert any(sum(bool(ids & set(v)) for v in _old_split(ds, fr, s).values()) > 1 for s in range(10))  # the old leak
    # no near-duplicates (exact repeats and edge whitespace share a prompt_key): exactly the old splits
    plain = to_dataset([make_record(f'Question {i % 37}' + ' ' * (i % 3), f'a{i}', f'b{i}', id=f'r{i}')
                        for i in range(120)])
    for seed in range(5):
        for fr in ({'train': .8, 'test': .2}, {'train': .7, 'valid': .1, 'test': .2}):
            new = {n: s['id'] for n, s in split_by_prompt(plain, fr, seed=seed).items()}
            assert new == _old_split(plain, fr, seed), (seed, fr)



# --- review fixes: conversations split together, order-free group keys, null labels, the side at fault, hub names ---
def _turn_prefixes(p: str) -> set:
    "A transcript prompt's prefixes that end where an Assistant turn begins: the prompts of its earlier rows."
    return {p[:i] for i in range(len(p)) if p.startswith('\n\nAssistant:', i)}


def _crossing_prefixes(sp) -> int:
    "Prompts of one split that are a turn-boundary prefix of a prompt in another split (both directions)."
    return sum(len(set(sp[a]['prompt']) & {q for p in sp[b]['prompt'] for q in _turn_prefixes(p)})
               for a in sp for b in sp if a != b)


def _multi_turn():
    "Hand-made hh-style rows: each second row continues its first through the first row's rejected answer."
    from crome.schema import make_record, to_dataset
    t = lambda *xs: '\n\n'.join(f"{'Human' if i % 2 == 0 else 'Assistant'}: {x}" for i, x in enumerate(xs))
    rows = [make_record(t(f'Q{i}?'), f'good {i}', f'bad {i}', id=f'c{i}-1') for i in range(15)]
    rows += [make_record(t(f'Q{i}?', f'bad {i}', 'Why?'), 'because', 'no', id=f'c{i}-2') for i in range(15)]
    rows += [make_record(t(f'Q{i}?', f'bad {i}', 'Why?', 'because', 'Sure?'), 'yes', 'no', id=f'c{i}-3')
             for i in range(0, 15, 3)]
    return to_dataset(rows)


def test_a_conversation_stays_in_one_split():
    ds = _multi_turn()
    fr = {'train': .7, 'validation': .1, 'test': .2}
    assert any(_crossing_prefixes(_old_split_ds(ds, fr, s)) for s in range(10))  # the leak before the fix
    for seed in range(10):
        sp = split_by_prompt(ds, fr, seed=seed)
        assert _crossing_prefixes(sp) == 0, seed
        where = {i: n for n, s in sp.items() for i in s['id']}
        assert all(where[f'c{i}-1'] == where[f'c{i}-2'] for i in range(15)), seed
    conv = ds.map(lambda r: {'prompt': [{'role': 'system', 'content': 'Be kind.'}, {'role': 'user', 'content': 'Q1?'}]
                             if r['id'].startswith('c1-') else [{'role': 'user', 'content': r['id']}]})
    for seed in range(5):  # message lists: grouped by their first user message
        sp = split_by_prompt(conv, fr, seed=seed)
        assert sum(any(i.startswith('c1-') for i in s['id']) for s in sp.values()) == 1


@needs_data
def test_hh_conversations_do_not_cross_splits():
    hh = load_hh_rlhf()
    from crome.splits import _group_keys
    assert len(set(_group_keys(hh['prompt']))) == 2177 and len(hh) == 2312
    for fr in ({'train': .8, 'test': .2}, {'train': .7, 'validation': .1, 'test': .2}):
        assert _crossing_prefixes(_old_split_ds(hh, fr, 0)) > 0  # 13+ test rows saw their own answer in train
        for seed in (0, 3):
            assert _crossing_prefixes(split_by_prompt(hh, fr, seed=seed)) == 0, (fr, seed)
    hc = load_hh_rlhf(conversational=True)  # message lists: grouped by their first user message, the same groups
    groups = lambda d: sorted(sorted(v) for v in _by_group(d).values())
    assert len(set(_group_keys(hc['prompt']))) == 2177 and groups(hc) == groups(hh)


def _by_group(ds) -> dict:
    from crome.splits import _group_keys
    out = {}
    for i, k in zip(ds['id'], _group_keys(ds['prompt'])): out.setdefault(k, []).append(i)
    return out


def _old_split_first_row(ds, fractions, seed, prompt_column='prompt'):
    "split_by_prompt before conversation grouping (near-duplicates keyed by their first row's prompt_key): Datasets."
    from datasets import DatasetDict
    from crome.schema import text_of
    first = {}
    keys = [first.setdefault(' '.join(text_of(p).split()).casefold(), prompt_key(p)) for p in ds[prompt_column]]
    where = _old_assign(keys, fractions, seed)
    return DatasetDict({n: ds.select([i for i, k in enumerate(keys) if where[k] == n]) for n in fractions})


def _old_split_ds(ds, fractions, seed): return _old_split_first_row(ds, fractions, seed)


def _ids(sp) -> dict: return {n: s['id'] for n, s in sp.items()}


def _split_of(sp) -> dict: return {i: n for n, s in sp.items() for i in s['id']}


def test_near_duplicate_groups_do_not_depend_on_row_order():
    from crome.schema import make_record, to_dataset
    recs = [make_record(p, f'a{i}', f'b{i}', id=f'n{i}-{j}')
            for i in range(40) for j, p in enumerate([f'Name {i} fruits.', f'name {i}  FRUITS.'])]
    ds = to_dataset(recs + [make_record(f'other {i}', 'a', 'b', id=f'o{i}') for i in range(40)])
    fr = {'train': .8, 'test': .2}
    flipped = ds.select([*range(1, 80, 2), *range(0, 80, 2), *range(80, 120)])  # each pair's second row first
    assert any(_split_of(_old_split_first_row(ds, fr, s)) != _split_of(_old_split_first_row(flipped, fr, s))
               for s in range(5))  # the old keys moved rows when the order changed
    for seed in range(5):
        assert _split_of(split_by_prompt(ds, fr, seed=seed)) == _split_of(split_by_prompt(flipped, fr, seed=seed))


def test_demo_splits_are_unchanged(monkeypatch):
    "Every group of the demo is one distinct prompt text, so its keys, shuffle and splits are exactly as before."
    import crome.demo
    from crome.schema import to_dataset
    new = {seed: crome.demo.make_demo(n=400, seed=seed) for seed in (0, 1)}
    for seed, demo in new.items():
        ds = to_dataset([r for k in ('train', 'val_clean', 'clean') for r in demo[k].to_list()])
        for fr in ({'train': .6, 'validation': .15, 'test': .25}, {'train': .8, 'test': .2}):
            assert _ids(split_by_prompt(ds, fr, seed=seed)) == _ids(_old_split_first_row(ds, fr, seed)), (seed, fr)
    monkeypatch.setattr(crome.demo, 'split_by_prompt', _old_split_first_row)  # make_demo as it was
    for seed, demo in new.items():
        assert _ids(demo) == _ids(crome.demo.make_demo(n=400, seed=seed)), seed


@needs_data
def test_gsm8k_splits_are_unchanged():
    gt = load_gsm8k(DATA / 'gsm8k/test.jsonl')
    for ds, col in ((gt, 'question'), (gsm8k_pairs(gt, seed=0), 'prompt')):
        for seed in (0, 3):
            fr = {'train': .7, 'validation': .1, 'test': .2}
            assert (_ids(split_by_prompt(ds, fr, seed=seed, prompt_column=col))
                    == _ids(_old_split_first_row(ds, fr, seed, prompt_column=col))), (col, seed)


@pytest.mark.parametrize('fmt', ['jsonl', 'csv', 'parquet'])
def test_a_null_label_is_an_error_not_a_preference(tmp_path, fmt):
    rows = [dict(GOOD, label=1.0), dict(GOOD, prompt='Q2', label=None), dict(GOOD, prompt='Q3', label=0.5)]
    p = tmp_path / f'd.{fmt}'
    if fmt == 'jsonl': jl(tmp_path, rows)
    elif fmt == 'csv': pd.DataFrame(rows).to_csv(p, index=False)
    else: pd.DataFrame(rows).to_parquet(p)
    err = one_error(p)
    unit = 'line' if fmt == 'jsonl' else 'row'
    assert [(q.row, q.field) for q in err.problems] == [(2, 'label')], str(err)
    assert f"d.{fmt}, {unit} 2, field 'label': is null or empty in a label column: write 1.0" in str(err)
    # no label column (or a JSON line without the key): a preference, as before
    assert load_pairs(jl(tmp_path, [GOOD, dict(GOOD, prompt='Q2', label=0.5)], 'ok.jsonl'))['label'] == [1.0, 0.5]
    assert load_pairs(w(tmp_path / 'ok.csv', 'prompt,chosen,rejected\nQ,a,b\n'))['label'] == [1.0]



def test_a_defaulted_label_beside_labelled_rows_is_noted_and_warned_once(tmp_path, caplog):
    "Rows without a label are still 1.0; beside labelled ones (ties only, say) they are counted and warned of once."
    key = 'label defaulted to 1.0 (no label column)'
    p = jl(tmp_path, [GOOD, dict(GOOD, prompt='Q2', label=0.5), dict(GOOD, prompt='Q3'), dict(GOOD, prompt='Q4',
                                                                                             label=1.0)], 's.jsonl')
    with caplog.at_level('WARNING', logger='crome.data'): ds, rep = load_pairs(p, return_report=True)
    assert ds['label'] == [1.0, 0.5, 1.0, 1.0] and rep.notes == {key: 2}, rep
    assert [r.getMessage() for r in caplog.records] == [
        f'{p}, line 1: no label, read as a preference (1.0) while other rows carry one; 2 lines in all (write 1.0 or '
        '0.5 on each to say which)']
    (tmp_path / 'f').mkdir()  # a folder: the labelled file and the unlabelled one are told apart
    jl(tmp_path / 'f', [dict(GOOD, label=0.5)], 'a.jsonl'); jl(tmp_path / 'f', [dict(GOOD, prompt='Q2')], 'b.jsonl')
    caplog.clear()
    with caplog.at_level('WARNING', logger='crome.data'): rep = load_pairs(tmp_path / 'f', return_report=True)[1]
    assert rep.notes == {key: 1} and caplog.records[0].getMessage().startswith(
        f"{tmp_path / 'f' / 'b.jsonl'}, line 1: no label, read as a preference (1.0)"), caplog.records
    # no label anywhere (or a label on every row): silent, no note
    for rows in ([GOOD, dict(GOOD, prompt='Q2')], [dict(GOOD, label=1.0), dict(GOOD, prompt='Q2', label=0.5)]):
        caplog.clear()
        with caplog.at_level('WARNING', logger='crome.data'):
            rep = load_pairs(jl(tmp_path, rows, 'n.jsonl'), return_report=True)[1]
        assert rep.notes == {} and not caplog.records, (rep, caplog.records)
    csv = w(tmp_path / 'n.csv', 'prompt,chosen,rejected\nQ,a,b\n')
    assert load_pairs(csv, return_report=True)[1].notes == {}


def test_load_pairs_reports_unknown_columns_whatever_extra(tmp_path):
    "Each unknown column: its first file and position, unit and count; in the report, and on a CromeDataError's."
    rows = [dict(GOOD, note=1), dict(GOOD, prompt='Q2', Label=0.5), dict(GOOD, prompt='Q3', Label=0.5)]
    p = jl(tmp_path, rows, 'u.jsonl')
    want = {'note': dict(source=str(p), row=1, unit='line', count=1),
            'Label': dict(source=str(p), row=2, unit='line', count=2)}
    for extra in ('drop', 'keep'):
        ds, rep = load_pairs(p, extra=extra, return_report=True)
        assert rep.unknown == want, (extra, rep.unknown)
        assert type(load_pairs(p, extra=extra)) is type(ds)  # without return_report: the dataset alone, as before
    assert one_error(p).report.unknown == want  # extra='error': the same, on the error
    assert load_pairs(jl(tmp_path, [GOOD], 'k.jsonl'), return_report=True)[1].unknown == {}
    (tmp_path / 'f').mkdir()  # a folder: the first file that has the column, and the count over all
    jl(tmp_path / 'f', [GOOD], 'a.jsonl'); jl(tmp_path / 'f', [dict(GOOD, prompt='Q2', promt='x')], 'b.jsonl')
    jl(tmp_path / 'f', [dict(GOOD, prompt='Q3', promt='y')], 'c.jsonl')
    rep = load_pairs(tmp_path / 'f', extra='keep', return_report=True)[1]
    assert rep.unknown == {'promt': dict(source=str(tmp_path / 'f' / 'b.jsonl'), row=1, unit='line', count=2)}


def test_a_column_arrow_cannot_store_carries_the_report_and_warns_of_no_defaulted_label(tmp_path, caplog):
    "The dataset's own error (a column of numbers and text) lacked .report; a failed load warned of defaulted labels."
    rows = [dict(GOOD, label=0.5, note=0.5), dict(GOOD, prompt='Q2', note='x')]  # line 2: label defaulted, note text
    p = jl(tmp_path, rows, 'mixed.jsonl')
    with caplog.at_level('WARNING', logger='crome.data'), pytest.raises(CromeDataError) as ei:
        load_pairs(p, extra='keep')
    assert [q.field for q in ei.value.problems] == ['note'], str(ei.value)  # the Arrow error, from to_dataset
    assert ei.value.report.unknown == {'note': dict(source=str(p), row=1, unit='line', count=2)}
    assert not caplog.records, caplog.records  # the load failed: no warning about its rows
    with caplog.at_level('WARNING', logger='crome.data'): load_pairs(p, extra='drop')  # loads: now it is said
    assert 'no label, read as a preference' in caplog.records[0].getMessage()


def test_the_defaulted_label_warning_names_a_misspelt_label(tmp_path, caplog):
    "A 'Label' beside 'label' rows: the rows with the typo are read as 1.0; the warning names the column and the fix."
    p = jl(tmp_path, [dict(GOOD, label=0.5), dict(GOOD, prompt='Q2', Label=0.5), dict(GOOD, prompt='Q3', idx=1)])
    for extra in ('keep', 'drop'):
        caplog.clear()
        with caplog.at_level('WARNING', logger='crome.data'): load_pairs(p, extra=extra)
        assert [r.getMessage() for r in caplog.records] == [
            f"{p}, line 2: no label, read as a preference (1.0) while other rows carry one; 2 lines in all (write 1.0 "
            "or 0.5 on each to say which); its unknown column 'Label' looks like crome's 'label': map it "
            "(column_map={'Label': 'label'}) or rename it"], caplog.records
    caplog.clear()  # an unknown column that is no misspelt label: the warning as before
    with caplog.at_level('WARNING', logger='crome.data'):
        load_pairs(jl(tmp_path, [dict(GOOD, label=0.5), dict(GOOD, prompt='Q2', idx=1)], 'i.jsonl'), extra='keep')
    assert caplog.records[0].getMessage().endswith('(write 1.0 or 0.5 on each to say which)'), caplog.records

def test_a_broken_rejected_transcript_is_reported_on_rejected(tmp_path):
    ok = '\n\nHuman: Hi\n\nAssistant: Hello.'
    rows = [{'chosen': ok, 'rejected': 'oops\n\nHuman: Hi\n\nAssistant: Go.'},  # text before the first turn
            {'chosen': ok, 'rejected': '\n\nHuman: Hi'},  # nothing after the prompt
            {'chosen': ok, 'rejected': 'Go away.'}]  # a plain answer beside a transcript
    p = jl(tmp_path, rows, 'h.jsonl')
    err = one_error(p)
    assert [(q.row, q.field) for q in err.problems] == [(1, 'rejected'), (2, 'rejected'), (3, 'rejected')], str(err)
    msg = str(err)
    assert "line 1, field 'rejected': chosen is an hh-rlhf transcript but rejected is not (got str 'oops" in msg
    assert "line 2, field 'rejected': rejected has no turn after the shared prompt" in msg
    assert "missing required column 'prompt'" not in msg
    with pytest.raises(CromeDataError) as ei: load_hh_rlhf(p)
    assert [(q.row, q.field) for q in ei.value.problems] == [(1, 'rejected'), (2, 'rejected'), (3, 'rejected')]
    assert "line 1, field 'rejected': rejected is not an hh-rlhf transcript: text before the first turn" in str(
        ei.value)
    err = one_error(jl(tmp_path, [{'chosen': 'Go away.', 'rejected': ok}], 'c.jsonl'))  # the other way round
    assert [(q.row, q.field) for q in err.problems] == [(1, 'chosen')] and 'rejected is an hh-rlhf transcript' in str(
        err)


def test_a_mistyped_local_folder_says_there_is_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'mydata' / 'pair').mkdir(parents=True)
    msg = str(one_error('mydata/pairs'))
    assert 'cannot load as a Hugging Face dataset' in msg and 'no local file or folder of that name either' in msg
