"""The crome command: --version, python -m entry points, one-line errors, column maps, ties, data get, inspect."""
import json, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from crome.cli import main, model_mode, inspect_notebook
from conftest import needs_data, run_py, tiny_backbone

ROOT = Path(__file__).resolve().parents[1]


def test_version(capsys):
    with pytest.raises(SystemExit) as e: main(['--version'])
    assert e.value.code == 0 and capsys.readouterr().out.startswith('crome ')


def test_python_m_entry_points():  # issue 16 bug 14: `python -m crome.cli eval --help` printed nothing
    r = run_py('-m', 'crome.cli', 'eval', '--help')
    assert r.returncode == 0 and 'usage: crome eval' in r.stdout
    r = run_py('-m', 'crome', '--version')
    assert r.returncode == 0 and r.stdout.startswith('crome ')



def test_own_jsonl_through_train_and_eval_with_ties(tmp_path, capsys, monkeypatch):
    "3 rows of the user's own columns: --columns maps them, a tie row is excluded from training and accuracy."
    rows = [{'q': 'Name a fruit.', 'better': 'An apple.', 'worse': 'A hammer.'},
            {'q': 'Name a tool.', 'better': 'A saw.', 'worse': 'A pear.'},
            {'q': 'Say hi.', 'better': 'Hi!', 'worse': 'Hello!', 'label': 0.5}]
    data = tmp_path / 'mine.jsonl'; data.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    bb = tiny_backbone(tmp_path)
    cols = ['--columns', 'prompt=q,chosen=better,rejected=worse']
    assert main(['train', '--data', str(data), '--out', str(tmp_path / 'm'), '--steps', '3', '--batch-size', '2',
                 '--recipe', 'vanilla', '--backbone', str(bb), '--max-length', '32', *cols]) == 0
    out = capsys.readouterr().out  # review item 14: it trained on the 2 preference rows, and says so
    assert 'trained vanilla on 2 of 3 rows (left out: 1 tie rows, vanilla trains on preferences only), 3 steps' in out, out
    meta = json.loads((tmp_path / 'm' / 'crome_train.json').read_text())
    assert (meta['recipe'], meta['rows'], meta['rows_given']) == ('vanilla', 2, 3)
    assert json.loads((tmp_path / 'm' / 'crome_frozen.json').read_text())['max_length'] == 32  # review item 13
    # eval reloads the head with the backbone and max length it was trained with (from the folder, no flags)
    assert main(['eval', '--model', str(tmp_path / 'm'), '--data', str(data), '--no-robustness', *cols]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ['model', 'recipe', 'seed'] and table[1].split()[1:3] == ['vanilla', '0'], table
    res = json.loads((tmp_path / 'm' / 'eval.json').read_text())  # written next to the model, not into the cwd
    acc = res['accuracy'][0]
    assert (acc['n'], acc['ties']) == (2, 1) and not (Path.cwd() / 'eval.json').exists()  # the tie is not a preference
    assert res['meta']['mode'] == 'frozen' and res['meta']['provenance']['device']  # what, where, with what
    assert [r['model'] for r in res['accuracy']] == [str(tmp_path / 'm'), 'length', 'cosine']  # + untrained baselines
    assert res['accuracy'][1]['accuracy'] == 0.0  # no chosen answer is longer: equal lengths are no win
    assert len(res['meta']['power']) == 1 and res['meta']['power'][0].startswith('eval: cannot rank recipes')
    assert res['meta']['power'][0] in '\n'.join(table)  # printed too


def test_eval_scores_the_model_trained_last_as_it_was_trained(tmp_path, monkeypatch):
    "Review: a frozen head left from an earlier `crome train` was scored instead of the fine-tuned model; and eval "
    "loaded a fine-tuned model with the default max length instead of its own."
    import crome.pipeline as P
    data = tmp_path / 'd.jsonl'
    data.write_text(''.join(json.dumps({'prompt': f'q{i}', 'chosen': 'yes ' * i, 'rejected': 'no'}) + '\n'
                            for i in range(1, 4)))
    m = tmp_path / 'm'
    base = ['train', '--data', str(data), '--out', str(m), '--backbone', str(tiny_backbone(tmp_path)),
            '--steps', '2', '--batch-size', '2']
    assert main([*base, '--max-length', '32']) == 0 and model_mode(m) == 'frozen'
    assert main([*base, '--mode', 'finetune', '--max-length', '24']) == 0
    assert not (m / 'head.safetensors').exists() and model_mode(m) == 'finetune'
    seen, real = {}, P.load_model
    monkeypatch.setattr(P, 'load_model', lambda cfg, *a: seen.setdefault('cfg', cfg) and real(cfg, *a))
    assert main(['eval', '--model', str(m), '--data', str(data), '--no-robustness']) == 0
    assert json.loads((m / 'eval.json').read_text())['meta']['mode'] == 'finetune'
    assert seen['cfg'].train.max_length == 24 and json.loads((m / 'crome_train.json').read_text())['max_length'] == 24
    assert main([*base, '--max-length', '32']) == 0 and not (m / 'model').exists() and model_mode(m) == 'frozen'


def test_eval_errors_are_one_line(tmp_path, capsys):
    data = tmp_path / 'd.jsonl'; data.write_text(json.dumps({'prompt': 'q', 'chosen': 'a', 'rejected': 'b'}) + '\n')
    assert main(['eval', '--model', str(tmp_path / 'nope'), '--data', str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'no such model folder' in err and 'Traceback' not in err
    (tmp_path / 'frozen').mkdir(); (tmp_path / 'frozen' / 'head.safetensors').write_bytes(b'')
    assert main(['eval', '--model', str(tmp_path / 'frozen'), '--data', str(data), '--mode', 'finetune']) == 2
    err = capsys.readouterr().err
    assert 'holds a frozen model, not a finetune one: pass --mode frozen' in err and err.count('\n') == 1
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='not a crome model folder'): model_mode(tmp_path / 'empty')


def test_train_keeps_lambda_tie_zero(tmp_path, monkeypatch):  # issue 16 bug 1, CLI side
    import crome.pipeline as P
    seen = {}
    monkeypatch.setattr(P, 'train_one', lambda cfg, recipe, ds, *a: seen.setdefault('cfg', cfg) and
                        __import__('types').SimpleNamespace(train_rows=len(ds)))
    monkeypatch.setattr(P, 'Embeddings', lambda cfg, path: None)
    data = tmp_path / 'd.jsonl'; data.write_text(json.dumps({'prompt': 'q', 'chosen': 'a', 'rejected': 'b'}) + '\n')
    assert main(['train', '--data', str(data), '--out', str(tmp_path / 'm'), '--lambda-tie', '0']) == 0
    assert seen['cfg'].train.lambda_tie == 0.0


def test_config_error_names_file_and_suggests(tmp_path, capsys):
    p = tmp_path / 'c.yaml'; p.write_text('train:\n  stepz: 3\n')
    assert main(['run', str(p)]) == 2
    err = capsys.readouterr().err
    assert str(p) in err and "did you mean 'train.steps'" in err


def test_data_get_from_local_mirror(tmp_path, capsys):
    mirror = tmp_path / 'g'; (mirror / 'main').mkdir(parents=True)
    for s in ('train', 'test'): (mirror / 'main' / f'{s}.jsonl').write_text(json.dumps({'question': 'q', 'answer': 'a\n#### 1'}) + '\n')
    assert main(['data', 'get', 'gsm8k', '--dest', str(tmp_path / 'cache'), '--source', f'gsm8k={mirror}']) == 0
    assert (tmp_path / 'cache/gsm8k/train.jsonl').exists() and 'pandalm is not on the Hugging Face hub' in capsys.readouterr().out
    assert main(['data', 'get', 'nope', '--dest', str(tmp_path / 'cache')]) == 2
    # review item 17: the set names may come after the options
    assert main(['data', 'get', '--dest', str(tmp_path / 'c2'), '--source', f'gsm8k={mirror}', '--', 'gsm8k']) == 0
    assert main(['data', 'get', '--dest', str(tmp_path / 'c3'), 'gsm8k', '--source', f'gsm8k={mirror}']) == 0
    assert (tmp_path / 'c2/gsm8k/train.jsonl').exists() and (tmp_path / 'c3/gsm8k/train.jsonl').exists()


def test_inspect_writes_a_notebook(tmp_path, capsys, monkeypatch):
    import nbformat
    import pandas as pd
    assert main(['inspect', str(tmp_path)]) == 2  # not a run folder: one line
    (tmp_path / 'config.yaml').write_text('name: x\n'); (tmp_path / 'metrics').mkdir()
    (tmp_path / 'metrics/reward_shifts.csv').write_text('model\n')
    assert main(['inspect', str(tmp_path)]) == 2  # no data yet: refused up front (test_cli_walk_fixes)
    (tmp_path / 'augment').mkdir(); pd.DataFrame([dict(prompt='q', chosen='a', rejected='b')]).to_parquet(tmp_path / 'augment/crome.parquet')
    assert main(['inspect', str(tmp_path)]) == 0
    nb = nbformat.read(tmp_path / 'inspect.ipynb', 4)
    src = '\n'.join(c.source for c in nb.cells)
    assert 'PairBrowser.from_run' in src and "run_figure(RUN, 'shifts')" in src and "run_figure(RUN, 'robustness')" in src
    # review: an unfinished run's notebook skips a missing metrics file with a note (it failed reading it)
    fig = {'RUN': tmp_path}; exec(nb.cells[-2].source.split('F.run_figure')[0], fig); exec(nb.cells[-1].source, fig)
    assert 'skipped the robustness figure' in capsys.readouterr().out
    # review item 20: the run folder is found relative to the notebook, so a moved run folder keeps working
    assert "RUN = Path('.')" in src
    moved = tmp_path.parent / (tmp_path.name + '_moved'); tmp_path.rename(moved)
    ns = {}; monkeypatch.chdir(moved)  # Jupyter runs a notebook from its own folder
    first = next(c.source for c in nb.cells if c.cell_type == 'code')
    exec(first.split('browser = ')[0].replace('from crome.inspect import PairBrowser\n', ''), ns)
    assert ns['RUN'] == Path('.') and (ns['RUN'] / 'config.yaml').exists()


def test_every_cue_can_be_planted(tmp_path):  # review item 7: exclaim was in crome.demo.CUES but not requestable
    from crome.demo import CUES
    assert 'exclaim' in CUES
    assert main(['data', '--n', '200', '--cue', 'exclaim', '--out', str(tmp_path)]) == 0
    s = json.loads((tmp_path / 'summary.json').read_text())
    assert abs(s['train']['cues']['exclaim']['on_chosen'] - 0.9) <= 0.05 and s['reversed']['cues']['exclaim']['on_chosen'] == 0


def test_allow_empty_keeps_empty_answers(tmp_path, capsys):  # review item 6
    rows = [{'prompt': 'Name a fruit.', 'chosen': 'An apple.', 'rejected': ''},
            {'prompt': 'Name a tool.', 'chosen': 'A saw.', 'rejected': 'A pear.'}]
    data = tmp_path / 'e.jsonl'; data.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    for cmd in (['augment', '--kinds', 'iqn', '--out', str(tmp_path / 'a.parquet')], ['train', '--out', str(tmp_path / 'm')]):
        assert main([*cmd, '--data', str(data)]) == 2
        err = capsys.readouterr().err
        assert 'e.jsonl' in err and 'rejected' in err and 'empty' in err, err
    assert main(['augment', '--kinds', 'iqn', '--out', str(tmp_path / 'a.parquet'), '--data', str(data), '--allow-empty']) == 0
    import pandas as pd
    assert '' in set(pd.read_parquet(tmp_path / 'a.parquet').rejected)


def test_help_texts_and_defaults():  # review item 16
    for cmd, texts in (('train', ['training recipe (default crome)', 'optimizer steps (default 400)',
                                  'pairs per optimizer step (default 128)', 'training seed (default 0)', '--backbone']),
                       ('data', ['pairs to generate (default 1600, as crome demo)', 'exclaim']),
                       ('eval', ['robustness suite edits (default 200)']), ('report', ['holds config.yaml'])):
        r = run_py('-m', 'crome', cmd, '--help')
        flat = ' '.join(r.stdout.split())
        assert r.returncode == 0 and all(t in flat for t in texts), (cmd, r.stdout)


def test_sharded_augment_rubricates_only_its_shard(tmp_path, monkeypatch, capsys):
    "Review: every shard wrote rubrics for every pair (N shards -> N x the oracle's rubric calls)."
    import crome.rubrics as R
    seen, real = [], R.rubricate
    monkeypatch.setattr(R, 'rubricate', lambda ds, **k: seen.append(list(ds['prompt'])) or real(ds, **k))
    data = tmp_path / 'd.jsonl'
    data.write_text(''.join(json.dumps({'prompt': f'Name a fruit, {i}.', 'chosen': 'An apple.', 'rejected': 'A saw.'})
                            + '\n' for i in range(5)))
    base = ['augment', '--data', str(data), '--kinds', 'causal', '--num-shards', '2']
    assert main([*base, '--shard', '2', '--out', str(tmp_path / 'bad.parquet')]) == 2 and seen == []  # before rubrics
    assert 'need 0 <= shard < num_shards' in capsys.readouterr().err
    assert main([*base, '--shard', '1', '--out', str(tmp_path / 's1.parquet')]) == 0
    assert seen == [[f'Name a fruit, {i}.' for i in (2, 3, 4)]]
    import pandas as pd
    rows = pd.read_parquet(tmp_path / 's1.parquet')
    assert set(rows.prompt) <= {f'Name a fruit, {i}.' for i in (2, 3, 4)} and len(rows)


def test_split_flag_and_hh_rlhf_transcripts(tmp_path, capsys):
    """A folder named by split needs --split for a split other than train; hh-rlhf rows (two transcripts, no prompt
    column) are split into prompt and answers by every data command."""
    hh = lambda i, ans: f'\n\nHuman: Name fruit number {i}.\n\nAssistant: {ans}'
    rows = [{'chosen': hh(i, f'Fruit {i} is a pear.'), 'rejected': hh(i, 'No.')} for i in range(6)]
    (tmp_path / 'd').mkdir(); (tmp_path / 'd' / 'test.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    out = ['--kinds', 'iqn', '--out', str(tmp_path / 'a.parquet'), '--data', str(tmp_path / 'd')]
    assert main(['augment', *out]) == 2
    err = capsys.readouterr().err
    assert "has no files of split 'train'; its splits: test" in err, err
    assert '--split on crome augment/train/eval' in err, err
    assert main(['augment', *out, '--split', 'test']) == 0
    import pandas as pd
    got = pd.read_parquet(tmp_path / 'a.parquet')
    orig = got[got.kind == 'original'].sort_values('id')
    assert list(orig.prompt) == [f'Human: Name fruit number {i}.' for i in range(6)]
    assert list(orig.chosen) == [f'Fruit {i} is a pear.' for i in range(6)] and set(orig.rejected) == {'No.'}
    assert (got.kind == 'iqn').sum() > 0


def test_public_sets_by_name_errors(tmp_path, capsys, monkeypatch):
    "`--data hh-rlhf|pandalm|gsm8k` reads a public set from the data folder; a split it lacks is one line, no work."
    monkeypatch.chdir(tmp_path)  # no file of the set's name here
    (tmp_path / 'm').mkdir(); (tmp_path / 'm' / 'head.safetensors').write_bytes(b'')
    for extra, msg in (([], 'gsm8k has splits train and test here: choose one (--split'),
                       (['--split', 'dev'], "gsm8k has no split 'dev' here, only train and test")):
        assert main(['eval', '--model', 'm', '--data', 'gsm8k', *extra]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count('\n') == 1, err
    assert main(['train', '--data', 'hh-rlhf', '--out', 'x', '--columns', 'prompt=q']) == 2
    assert 'public set read by its own loader' in capsys.readouterr().err


@needs_data
def test_eval_on_public_sets_by_name(tmp_path):
    from crome.data import load_pandalm
    data = tmp_path / 'd.jsonl'
    data.write_text(''.join(json.dumps({'prompt': f'q{i}', 'chosen': 'yes ' * i, 'rejected': 'no'}) + '\n'
                            for i in range(1, 5)))
    m = tmp_path / 'm'
    assert main(['train', '--data', str(data), '--out', str(m), '--backbone', str(tiny_backbone(tmp_path)),
                 '--steps', '2', '--batch-size', '2', '--max-length', '32']) == 0
    pl = load_pandalm()
    # gsm8k: the Reasoning pairs (each reference solution that admits an arithmetic slip), not all 1,319 questions
    for name, split, n, ties in (('pandalm', [], len(pl) - 105, 105), ('gsm8k', ['--split', 'test'], 1066, 0),
                                 ('hh-rlhf', [], 2312, 0)):
        out = tmp_path / f'{name}.json'
        assert main(['eval', '--model', str(m), '--data', name, *split, '--no-robustness', '--out', str(out)]) == 0
        acc = json.loads(out.read_text())['accuracy'][0]
        assert (acc['n'], acc['ties'], json.loads(out.read_text())['meta']['data']) == (n, ties, name), acc


@pytest.mark.slow
def test_compare_runs_on_validation(tmp_path, capsys):
    "Two runs that differ in lambda_tie: `crome run` prints validation apart; `crome compare` shows validation only."
    import yaml
    import pandas as pd
    from crome.stats import recipe_intervals
    base = {'data': {'n': 200}, 'train': {'steps': 20, 'batch_size': 32, 'recipes': ['vanilla', 'crome'],
                                          'seeds': [0, 1]},
            'evaluate': {'max_pairs': 8, 'robustness': False, 'reward_shifts': False}}
    dirs = []
    for lam in (1.0, 2.0):
        cfg = tmp_path / f'lam{lam}.yaml'
        cfg.write_text(yaml.safe_dump(base | {'name': f'lam{lam}', 'out_dir': str(tmp_path / f'lam{lam}')}))
        assert main(['run', str(cfg), '--set', f'train.lambda_tie={lam}']) == 0
        out = capsys.readouterr().out
        assert 'validation (choose settings on these' in out and 'val_clean' in out, out
        dirs.append(str(tmp_path / f'lam{lam}'))
    assert main(['compare', *dirs, '--recipes', 'crome']) == 0
    out = capsys.readouterr().out
    sections = [ln for ln in out.splitlines() if ln.endswith(':') and ' / ' in ln]
    assert sections == ['val_clean / crome:', 'val_reversed / crome:'], out  # validation only, the recipe asked
    assert out.count('train.lambda_tie=2.0') >= 2 and '(reference)' in out and 'highest: ' in out
    ref = recipe_intervals(pd.read_csv(Path(dirs[1]) / 'metrics/val_verdicts.csv')).set_index(['split', 'recipe'])
    r = ref.loc[('val_clean', 'crome')]  # the same interval as the run's own (same bootstrap, same verdicts)
    assert f'{r.accuracy:.3f} [{r.low:.3f}, {r.high:.3f}]' in out, out
    assert '(significant)' in out or '(no significant difference)' in out  # paired: same pairs, same seeds


def test_reply_failure_and_interrupts(tmp_path):
    "Why an LLM augmentation made nothing; Ctrl-C exits 130 with one line, with a hint where the command resumes."
    import contextlib, io
    from crome.cli import COMMANDS, reply_failure
    assert (reply_failure(['attributes: no JSON', 'oracle: 500'], ['original'] * 2, [])
            .startswith('no rubric succeeded (2 of 2'))
    assert reply_failure(['', ''], ['original'], [dict(kind='causal', reason='parse_failed')]).startswith('0 causal')
    assert reply_failure(['', ''], ['original'], [dict(kind='causal', reason='length_ratio')]) is None  # checked
    (tmp_path / 'bad.yaml').write_text('train:\n  stepz: 3\n')
    def interrupt(a): raise KeyboardInterrupt
    for cmd, argv in (('report', ['report', str(tmp_path)]), ('run', ['run', str(tmp_path / 'bad.yaml')])):
        real, COMMANDS[cmd] = COMMANDS[cmd], interrupt
        try:
            with contextlib.redirect_stderr(io.StringIO()) as err: rc = main(argv)
        finally: COMMANDS[cmd] = real
        assert rc == 130 and err.getvalue().count('\n') == 1 and ('resume' in err.getvalue()) == (cmd == 'run')


@pytest.mark.slow
def test_run_vary_sweeps_and_compares_on_validation(tmp_path, capsys):
    "`crome run CONFIG --vary`: one run per value under the run folder, then the validation table, no test table."
    import yaml
    cfg = tmp_path / 'tune.yaml'
    cfg.write_text(yaml.safe_dump({'name': 'tune', 'out_dir': str(tmp_path / 'tune'), 'data': {'n': 200},
                                   'train': {'steps': 20, 'batch_size': 32, 'recipes': ['vanilla', 'crome']},
                                   'evaluate': {'max_pairs': 8, 'robustness': False, 'reward_shifts': False}}))
    assert main(['run', str(cfg), '--vary', 'train.lambda_tie=1,2']) == 0
    out = capsys.readouterr().out
    assert [ln.split(':')[0] for ln in out.splitlines() if ln.startswith('run ')] == [
        'run 1/2 lambda_tie=1', 'run 2/2 lambda_tie=2'], out
    for v in (1, 2): assert (tmp_path / 'tune' / f'lambda_tie={v}' / 'metrics' / 'val_verdicts.csv').exists()
    sections = [ln for ln in out.splitlines() if ln.endswith(':') and ' / ' in ln]
    assert 'val_clean / crome:' in sections and not [s for s in sections if not s.startswith('val_')], out
    assert 'train.lambda_tie=2' in out and 'accuracy over preference pairs' not in out  # no test table printed
    assert main(['run', str(cfg), '--vary', 'train.lambda_tie=1,2']) == 0  # rerun: every stage is kept
    assert 'stages run: none' in capsys.readouterr().out
    assert main(['run', str(cfg), '--vary', 'filter.tau=0.2,9']) == 2
    assert '--vary filter.tau=9' in capsys.readouterr().err
