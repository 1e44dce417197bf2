"""A reviewer's walk of the CLI: misspelt columns, augment's --out, count flags, eval's robustness, inspect on a run
with no data, the demo data's size, --vary's help, one-line warnings."""
import json, subprocess, sys, warnings
from pathlib import Path
import pandas as pd
import pytest
from crome.cli import main, INSPECT_CELLS
from crome.config import DEMO_N
from conftest import run_py, tiny_backbone

ROOT = Path(__file__).resolve().parents[1]


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text(''.join(json.dumps(r) + '\n' for r in rows)); return path


def _rows(n: int = 3, **extra) -> list:
    return [{'prompt': f'Name fruit {i}.', 'chosen': f'Fruit {i}: a pear.', 'rejected': 'No.', **extra}
            for i in range(n)]


def test_a_misspelt_crome_column_is_refused_other_columns_are_not(tmp_path, capsys):
    "'Label' (capital L) was scored / trained as a preference (train, eval) or silently dropped (augment)."
    rows = _rows(); rows[1]['Label'] = rows[2]['Label'] = 0.5
    typo = _jsonl(tmp_path / 'typo.jsonl', rows)
    (tmp_path / 'm').mkdir(); (tmp_path / 'm' / 'head.safetensors').write_bytes(b'')
    for cmd in (['train', '--out', str(tmp_path / 'm2')], ['eval', '--model', str(tmp_path / 'm')],
                ['augment', '--kinds', 'iqn', '--out', str(tmp_path / 'a.parquet')]):
        assert main([*cmd, '--data', str(typo)]) == 2, cmd
        err = capsys.readouterr().err
        assert (f"{typo}, line 2, field 'Label': unknown column 'Label': did you mean crome's 'label'? Rename it, or "
                "map it: --columns label=Label [2 lines]") in err, err
    assert not (tmp_path / 'a.parquet').exists() and not (tmp_path / 'm2').exists()  # refused before any work
    # the fix it names works
    assert main(['augment', '--kinds', 'iqn', '--out', str(tmp_path / 'a.parquet'), '--data', str(typo),
                 '--columns', 'label=Label']) == 0
    got = pd.read_parquet(tmp_path / 'a.parquet')
    assert sorted(got[got.kind == 'original'].label) == [0.5, 0.5, 1.0]
    # an unrelated extra column (and one only like a crome column's name: idx, prompt_id) keeps today's behaviour
    other = _jsonl(tmp_path / 'other.jsonl', _rows(idx=1, prompt_id='p', note='x'))
    assert main(['augment', '--kinds', 'iqn', '--out', str(tmp_path / 'b.parquet'), '--data', str(other)]) == 0
    assert 'idx' not in pd.read_parquet(tmp_path / 'b.parquet').columns  # augment drops it, as before
    from crome.cli import load_data, build_parser
    a = build_parser().parse_args(['train', '--data', str(other), '--out', 'x'])
    assert {'idx', 'prompt_id', 'note'} <= set(load_data(a, 'keep').column_names)  # train / eval keep it



def test_the_data_file_is_read_once_and_a_misspelt_column_is_still_said_first(tmp_path, monkeypatch):
    "load_data read a file with an unknown column twice (extra='error', then the user's extra); now once."
    import crome.data as D
    from crome.cli import load_data, build_parser
    from crome.schema import CromeDataError
    calls, real = [], D.read_rows
    monkeypatch.setattr(D, 'read_rows', lambda *a, **k: calls.append(str(a[0])) or real(*a, **k))
    typo = _rows(); typo[1]['Label'] = typo[2]['Label'] = 0.5
    broken = _rows(); broken[0]['chosen'] = None; broken[2]['Label'] = 0.5  # a misspelt column beside another problem
    for name, rows, kept in (('ok', _rows(), None), ('other', _rows(idx=1, note='x'), {'idx', 'note'}),
                             ('typo', typo, None), ('broken', broken, None)):
        p = _jsonl(tmp_path / f'{name}.jsonl', rows); calls.clear()
        for cmd, extra in (('train', 'keep'), ('augment', 'drop')):
            a = build_parser().parse_args([cmd, '--data', str(p), '--out', str(tmp_path / 'o.parquet')])
            if name in ('typo', 'broken'):
                with pytest.raises(CromeDataError) as ei: load_data(a, extra)
                at = 'line 2' if name == 'typo' else 'line 3'
                assert [str(q) for q in ei.value.problems] == [
                    f"{p}, {at}, field 'Label': unknown column 'Label': did you mean crome's 'label'? Rename it, or map "
                    'it: --columns label=Label' + (' [2 lines]' if name == 'typo' else '')], ei.value.problems
            else:
                cols = set(load_data(a, extra).column_names) & {'idx', 'note'}  # kept by train, dropped by augment
                assert cols == (kept or set() if extra == 'keep' else set()), (cmd, cols)
            assert calls == [str(p)], (name, cmd, calls)  # one read, whatever the outcome
            calls.clear()

def test_a_misspelt_column_is_said_first_when_the_dataset_cannot_be_built(tmp_path, capsys):
    "'Label' 0.5 on one line and 'x' on another: train reported Arrow's error on the column, not the typo."
    rows = _rows(); rows[0]['Label'] = 0.5; rows[2]['Label'] = 'x'
    typo = _jsonl(tmp_path / 'typo.jsonl', rows)
    for cmd in (['train', '--out', str(tmp_path / 'm')],
                ['augment', '--kinds', 'iqn', '--out', str(tmp_path / 'a.parquet')]):
        assert main([*cmd, '--data', str(typo)]) == 2, cmd
        err = capsys.readouterr().err
        assert err == (f"crome {cmd[0]}: error: 1 problem in the data:\n  {typo}, line 1, field 'Label': unknown column 'Label': did you mean "
                       "crome's 'label'? Rename it, or map it: --columns label=Label [2 lines]\n"), err
    assert not (tmp_path / 'a.parquet').exists() and not (tmp_path / 'm').exists()


def test_augment_out_must_be_one_parquet_file(tmp_path, capsys, monkeypatch):
    "--out o/aug.jsonl got Parquet bytes; --out o/ (a folder) failed late naming a temp file, and left it behind."
    data = _jsonl(tmp_path / 'd.jsonl', _rows())
    import crome.neutrals as N
    monkeypatch.setattr(N, 'augment', lambda *a, **k: pytest.fail('augmented before --out was checked'))
    (tmp_path / 'o').mkdir()
    for out, msg in (('o/aug.jsonl', 'augment writes Parquet; name a .parquet file'),
                     ('o/aug.csv', 'augment writes Parquet; name a .parquet file'),
                     ('o/', 'is a folder; name a .parquet file, e.g. o/aug.parquet'),
                     ('o', 'is a folder; name a .parquet file, e.g. o/aug.parquet')):
        monkeypatch.chdir(tmp_path)
        assert main(['augment', '--kinds', 'iqn', '--data', str(data), '--out', out]) == 2
        err = capsys.readouterr().err
        assert err == f'crome augment: error: --out {out}: {msg}\n', err
    assert list((tmp_path / 'o').iterdir()) == []  # nothing written, no temp file


def test_augment_leaves_no_temp_file_when_a_write_fails(tmp_path, monkeypatch):
    data = _jsonl(tmp_path / 'd.jsonl', _rows())
    def broken(self, path, **k):
        Path(path).write_text('half'); raise OSError('disk full')
    monkeypatch.setattr(pd.DataFrame, 'to_csv', broken)
    with pytest.raises(OSError, match='disk full'):
        main(['augment', '--kinds', 'iqn', '--data', str(data), '--out', str(tmp_path / 'o' / 'a.parquet')])
    assert sorted(p.name for p in (tmp_path / 'o').iterdir()) == ['a.parquet']  # the rejects failed: no .tmp left


def test_count_flags_are_positive_before_any_work(capsys):
    for argv, flag in ((['eval', '--model', 'm', '--data', 'd', '--max-pairs', '0'], '--max-pairs'),
                       (['eval', '--model', 'm', '--data', 'd', '--max-pairs', '-5'], '--max-pairs'),
                       (['data', '--n', '0'], '--n'),
                       (['augment', '--data', 'd', '--out', 'o.parquet', '--num-shards', '0'], '--num-shards')):
        with pytest.raises(SystemExit) as e: main(argv)
        assert e.value.code == 2 and f'argument {flag}: must be at least 1' in capsys.readouterr().err, argv


def test_eval_keys_and_prints_robustness_by_the_model(tmp_path, capsys):
    "Robustness rows were keyed 'model' (accuracy rows: the model's path) and never printed."
    data = _jsonl(tmp_path / 'd.jsonl', [{'prompt': f'Name fruit {i}.', 'chosen': 'A pear. ' * i, 'rejected': 'No.'}
                                         for i in range(1, 7)])
    m = tmp_path / 'm'
    assert main(['train', '--data', str(data), '--out', str(m), '--backbone', str(tiny_backbone(tmp_path)),
                 '--steps', '2', '--batch-size', '2', '--max-length', '32', '--recipe', 'vanilla']) == 0
    capsys.readouterr()
    assert main(['eval', '--model', str(m), '--data', str(data), '--max-pairs', '4']) == 0
    out = capsys.readouterr().out
    res = json.loads((m / 'eval.json').read_text())
    assert {r['model'] for r in res['robustness']} == {str(m)} == {res['accuracy'][0]['model']}
    lines = out.split('robustness on 4 preference pairs (spurious edits pooled; drop: accuracy lost, lower is '
                      'better):\n')[1].splitlines()
    assert lines[0].split()[:5] == ['model', 'side', 'instances', 'clean', 'transformed'], out
    assert [ln.split()[1] for ln in lines[1:3]] == ['both', 'rejected'] and lines[3] == '', out  # one line per side
    assert main(['eval', '--model', str(m), '--data', str(data), '--no-robustness']) == 0
    assert 'robustness on' not in capsys.readouterr().out


def test_inspect_refuses_a_run_with_no_data_yet(tmp_path, capsys):
    (tmp_path / 'config.yaml').write_text('name: x\n')
    assert main(['inspect', str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f'crome inspect: error: {tmp_path}: no data yet (run the pipeline first: '
                                       'crome run / crome demo)\n')
    assert not (tmp_path / 'inspect.ipynb').exists()
    assert "last finished run's figure" in INSPECT_CELLS[2] and 'None while unfinished' not in INSPECT_CELLS[2]


def test_data_builds_the_demo_data_and_vary_help_names_the_folders(tmp_path, capsys):
    from crome.cli_args import build_parser
    assert build_parser().parse_args(['data']).n == DEMO_N == 1600
    r = run_py('-m', 'crome', 'run', '--help')
    flat = ' '.join(r.stdout.split())
    assert 'each in RUN_DIR/NAME=V (NAME: the key\'s last part' in flat and 'RUN_DIR/lambda_tie=0.5' in flat, flat
    assert 'RUN_DIR/KEY=V' not in flat
    # `crome data --help` naming DEMO_N: tests/test_cli.py


def test_warnings_are_one_line_naming_the_command(tmp_path, capsys):
    "crome train --recipe vanilla --lambda-tie 2 printed crome/config.py:NNN: UserWarning: ... and the source line."
    missing = str(tmp_path / 'none.jsonl')  # the warning comes with the config, before the data fails
    before = warnings.formatwarning
    with pytest.warns(UserWarning, match='--lambda-tie set'):  # still a warning that pytest (or -W error) can catch
        assert main(['train', '--data', missing, '--out', str(tmp_path / 'm'), '--recipe', 'vanilla',
                     '--lambda-tie', '2']) == 2
    assert warnings.formatwarning is before  # restored
    r = run_py('-m', 'crome', 'train', '--data', missing, '--out', str(tmp_path / 'm'), '--recipe', 'vanilla',
               '--lambda-tie', '2')
    assert r.returncode == 2 and r.stderr.splitlines()[0] == (
        'crome train: warning: --lambda-tie set, but recipes vanilla do not read it (augment and oracle: crome; filter '
        'and train.lambda_tie: crome and rrm): no effect on this run'), r.stderr
    assert 'UserWarning' not in r.stderr and '.py:' not in r.stderr and 'warnings.warn' not in r.stderr


def test_inspect_opens_the_set_a_run_has(tmp_path):
    "A vanilla-only run has no augmented set: the notebook browses its training pairs (it used to fail opening crome)."
    import nbformat
    import pandas as pd
    (tmp_path / 'config.yaml').write_text('name: x\n'); (tmp_path / 'data').mkdir()
    pd.DataFrame([dict(prompt='q', chosen='a', rejected='b')]).to_parquet(tmp_path / 'data/train.parquet')
    assert main(['inspect', str(tmp_path)]) == 0
    first = next(c.source for c in nbformat.read(tmp_path / 'inspect.ipynb', 4).cells if c.cell_type == 'code')
    assert "PairBrowser.from_run(RUN, which='train')" in first
    (tmp_path / 'augment').mkdir()
    pd.read_parquet(tmp_path / 'data/train.parquet').to_parquet(tmp_path / 'augment/rrm.parquet')
    assert main(['inspect', str(tmp_path)]) == 0
    first = next(c.source for c in nbformat.read(tmp_path / 'inspect.ipynb', 4).cells if c.cell_type == 'code')
    assert "PairBrowser.from_run(RUN, which='rrm')" in first


def test_a_label_typo_beside_labelled_rows_is_said_alone(tmp_path, capsys, caplog):
    "'label' on some lines, 'Label' on others: the CLI warned of labels read as 1.0 before the misspelt-column error."
    import logging
    rows = _rows(); rows[0]['label'] = 1.0; rows[1]['Label'] = rows[2]['Label'] = 0.5
    typo = _jsonl(tmp_path / 'typo.jsonl', rows)
    with caplog.at_level(logging.WARNING):
        assert main(['train', '--out', str(tmp_path / 'm'), '--data', str(typo)]) == 2
    assert capsys.readouterr().err == (
        f"crome train: error: 1 problem in the data:\n  {typo}, line 2, field 'Label': unknown column 'Label': did you "
        "mean crome's 'label'? Rename it, or map it: --columns label=Label [2 lines]\n")
    assert not [r for r in caplog.records if r.name == 'crome.data'], caplog.text  # the defaulted-label warning held
    # a file that passes still gets the loader's warnings, once, after it has been read
    from crome.cli import load_data, build_parser
    plain = _rows(); plain[0]['label'] = 0.5
    a = build_parser().parse_args(['train', '--data', str(_jsonl(tmp_path / 'p.jsonl', plain)), '--out', 'x'])
    caplog.clear()
    with caplog.at_level(logging.WARNING): assert load_data(a, 'keep')['label'] == [0.5, 1.0, 1.0]
    said = [r.getMessage() for r in caplog.records if r.name == 'crome.data']
    assert len(said) == 1 and 'line 2: no label, read as a preference (1.0) while other rows carry one' in said[0], said


GSM = [{'question': 'A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total?',
        'answer': 'It takes 2/2=<<2/2=1>>1 bolt of white fiber\nSo the total is 2+1=<<2+1=3>>3 bolts\n#### 3'},
       {'question': 'Janet has 16 eggs, eats 3 and bakes with 4. She sells the rest at $2 each. How much does she get?',
        'answer': 'She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\nShe makes 9 * 2 = $<<9*2=18>>18.\n#### 18'},
       {'question': 'Tom reads 5 pages a day for 6 days. How many pages does he read?',
        'answer': 'He reads 5 * 6 = <<5*6=30>>30 pages.\n#### 30'}]


def test_eval_scores_gsm8k_as_a_correctness_test(tmp_path, monkeypatch):
    "`crome eval --data gsm8k` scored prompt-matching pairs (another question's solution), which cosine passes at 1.0."
    (tmp_path / 'gsm8k').mkdir()
    for split in ('train', 'test'): _jsonl(tmp_path / 'gsm8k' / f'{split}.jsonl', GSM)
    monkeypatch.setenv('CROME_DATA', str(tmp_path))
    from crome.cli import load_data, build_parser
    ev = load_data(build_parser().parse_args(['eval', '--model', 'm', '--data', 'gsm8k', '--split', 'test']), 'keep')
    assert len(ev) == 3 and set(ev['subset']) == {'gsm8k-reasoning'} and set(ev['generator']) == {'eval:arith_slip'}
    for r, g in zip(ev, GSM):  # the same question's reference solution against itself with a slip in the final answer
        ref = g['answer'].split('####')[1].strip()
        assert g['question'] in r['prompt'] and r['chosen'].endswith(f'#### {ref}') and '<<' not in r['chosen']
        assert r['rejected'] != r['chosen'] and not r['rejected'].endswith(f'#### {ref}'), r
    for cmd in (['train', '--out', 'x'], ['augment', '--out', 'x.parquet']):  # training reads prompt-match pairs
        tr = load_data(build_parser().parse_args([*cmd, '--data', 'gsm8k', '--split', 'train']), 'keep')
        assert set(tr['subset']) == {'gsm8k-prompt-match'} and all(r['rejected'] != r['chosen'] for r in tr), cmd
        assert {r['rejected'] for r in tr} <= {e['chosen'] for e in tr}  # each rejected: another question's solution
    from crome import stages
    assert stages.eval_pairs not in stages.DATA_FUNCTIONS  # eval's choice does not move a run's data-stage key
    with pytest.raises(ValueError, match='gsm8k has splits train and test here: choose one'): stages.eval_pairs('gsm8k')
