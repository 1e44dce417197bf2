"""Usability fixes: data.n caps a real source only when set, a sweep's folder refused with the command's own options,
config errors naming what the user typed, warnings and errors for flags that would be ignored, a shared top in
`crome compare`, `crome report` on an unfinished run, and the README's oracle count read from its JSON."""
import json, re
from pathlib import Path
import pandas as pd
import pytest
import yaml
from crome.cli import main
from crome.config import load_config
from crome.stages import build_data

ROOT = Path(__file__).resolve().parent.parent


def _pairs(path: Path, n: int) -> Path:
    path.write_text(''.join(json.dumps(dict(prompt=f'Question {i}?', chosen=f'Good answer {i}.',
                                             rejected=f'Bad answer {i}.')) + '\n' for i in range(n)))
    return path


def test_real_source_uses_every_pair_unless_data_n_is_set(tmp_path):
    f = _pairs(tmp_path / 'big.jsonl', 1700)  # more than the demo's 1600
    every = build_data(load_config({'out_dir': str(tmp_path / 'a'), 'data': {'source': str(f)}}))
    assert sum(map(len, every.values())) == 1700  # was 1600: the demo's size silently capped a file
    capped = build_data(load_config({'out_dir': str(tmp_path / 'b'), 'data': {'source': str(f), 'n': 300}}))
    assert sum(map(len, capped.values())) == 300
    assert load_config({}).data.n is None
    demo = build_data(load_config({'out_dir': str(tmp_path / 'c'), 'data': {'n': 200}}))
    assert sum(len(demo[k]) for k in ('train', 'val_clean', 'clean')) == 200  # the demo: n pairs, as before


def test_a_sweep_folder_is_refused_with_the_run_commands_options(tmp_path, capsys):
    base = tmp_path / 'tune'
    for v in (1, 2): (base / f'lambda_tie={v}').mkdir(parents=True); (base / f'lambda_tie={v}' / '.crome-run').touch()
    cfg = tmp_path / 'tune.yaml'; cfg.write_text(yaml.safe_dump({'name': 'tune', 'out_dir': str(base)}))
    assert main(['run', str(cfg)]) == 2
    err = capsys.readouterr().err
    assert 'holds the runs of a sweep (`crome run --vary`: lambda_tie=1, lambda_tie=2), not one run' in err, err
    run_part = err.split('crome demo:')[0]
    assert '(crome run: --set out_dir=DIR' in run_part and '--out ' not in run_part, err
    assert sorted(p.name for p in base.iterdir()) == ['lambda_tie=1', 'lambda_tie=2']  # nothing written


def test_data_help_does_not_say_get_fetches_pandalm():
    from crome.cli_args import DATA_HELP
    assert 'hh-rlhf, gsm8k: fetched by `crome data get`' in DATA_HELP and 'pandalm: downloaded by hand' in DATA_HELP


def test_config_errors_name_what_the_user_typed(tmp_path, capsys):
    cfg = tmp_path / 'c.yaml'; cfg.write_text(f'out_dir: {tmp_path / "run"}\n')
    assert main(['run', str(cfg), '--set', 'train.recipes=[vanila]']) == 2
    err = capsys.readouterr().err
    assert '--set train.recipes (item 0): Input should be' in err and 'train.recipes.0' not in err, err
    assert main(['run', str(cfg), '--oracle-model', 'foo']) == 2
    err = capsys.readouterr().err
    assert 'model set but no url: set --oracle-url (a server) or --oracle-local DIR (a local model)' in err, err
    assert 'oracle.backend' not in err and 'oracle.url' not in err
    assert main(['run', str(cfg), '--oracle-key-env', 'MY_KEY']) == 2
    err = capsys.readouterr().err
    assert 'api_key_env set but no url: set --oracle-url (a server: only a server takes a key)' in err, err
    assert '--oracle-local' not in err and 'transformers' not in err
    with pytest.raises(ValueError, match=r'model set but no url: set oracle\.url \(a server\) or oracle\.backend: '):
        load_config({'oracle': {'model': 'm'}})  # a config file or dict: its keys, as before


def test_train_warns_of_a_flag_its_recipe_ignores_and_split_on_a_file_is_an_error(tmp_path, capsys):
    f = _pairs(tmp_path / 'std.jsonl', 8)
    missing = str(tmp_path / 'none.jsonl')  # the config (and its warning) comes before the data, which then fails
    with pytest.warns(UserWarning, match='--lambda-tie set, but recipes vanilla do not read it'):
        assert main(['train', '--data', missing, '--out', str(tmp_path / 'm'), '--recipe', 'vanilla',
                     '--lambda-tie', '5']) == 2
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # crome reads lambda_tie: no warning
        assert main(['train', '--data', missing, '--out', str(tmp_path / 'm'), '--recipe', 'crome',
                     '--lambda-tie', '5']) == 2
    capsys.readouterr()
    (tmp_path / 'model').mkdir(); (tmp_path / 'model' / 'head.safetensors').write_bytes(b'')
    assert main(['eval', '--model', str(tmp_path / 'model'), '--data', str(f), '--split', 'test']) == 2
    err = capsys.readouterr().err
    assert f'--split test: {f} is one file, which has no splits' in err and 'drop --split' in err, err
    assert main(['train', '--data', str(f), '--split', 'train', '--out', str(tmp_path / 'm2')]) == 2


def test_compare_names_no_winner_among_equal_runs():
    from crome.compare import format_compare
    row = dict(split='validation', recipe='crome', seeds=1, pairs=40, accuracy=0.6, low=0.5, high=0.7)
    t = pd.DataFrame([dict(row, run='a', settings='train.lambda_tie=1.0', verdict=None),
                      dict(row, run='b', settings='train.lambda_tie=2.0', verdict='+0.000 [+0.000, +0.000]')])
    out = format_compare(t)  # identical runs: the reference is kept, and no run is higher
    assert out.endswith('highest: the first run (train.lambda_tie=1.0), tied with 1 more at 0.600: no run is '
                        'higher'), out
    three = pd.concat([t, t.iloc[[1]].assign(run='c', settings='train.lambda_tie=3.0')]).assign(accuracy=[0.5, .6, .6])
    assert format_compare(three).endswith('highest: 2 runs tie at 0.600: no run is higher')  # no reference among them
    t.loc[1, 'accuracy'] = 0.65  # a real lead is still named
    assert 'highest: b (train.lambda_tie=2.0); vs the first run' in format_compare(t)


def test_report_on_an_unfinished_run_says_so_on_the_terminal(tmp_path, capsys):
    d = tmp_path / 'unf'; d.mkdir()
    (d / 'config.yaml').write_text(yaml.safe_dump({'name': 'unf', 'out_dir': str(d),
                                                   'train': {'recipes': ['vanilla'], 'seeds': [0]}}))
    (d / 'state.json').write_text(json.dumps({'data': {'key': 'k', 'seconds': 1.0, 'finished': '2025-01-02 03:04:05'}}))
    assert main(['report', str(d)]) == 0
    out = capsys.readouterr().out
    assert f'report -> {d}/report.html' in out
    assert f"the run is unfinished; finish it with crome run {d / 'config.yaml'} (finished stages kept)" in out, out


def test_readme_oracle_kind_count_matches_its_json():
    kinds = json.loads((ROOT / 'benchmarks/results/oracle_real.json').read_text())['kinds']
    words = {5: 'five', 6: 'six', 7: 'seven'}
    text = ' '.join(''.join(c['source']) for c in json.loads((ROOT / 'nbs/index.ipynb').read_text())['cells'])
    said = re.search(r'parse on all (\w+) kinds', ' '.join(text.split()))
    assert said and said.group(1) == words[len(kinds)], (said and said.group(1), [k['kind'] for k in kinds])
