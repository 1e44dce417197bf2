"""CLI, train-config and model-loading fixes: YAML 1.2 floats, repeatable list flags, safetensors-only weights,
heads whose encoder folder moved, and one-line errors instead of tracebacks."""
import json, shutil, warnings
from pathlib import Path
import pytest
import torch
import yaml
import crome.pipeline, crome.train
from crome.cli import main, build_parser
from crome.train_config import yaml_load, load_train_config

PAIRS = [{'prompt': f'What is {i} plus {i}?', 'chosen': f'It is {2 * i}.', 'rejected': f'It is {2 * i + 1}, I think.'}
         for i in range(6)]


@pytest.fixture
def data(tmp_path) -> Path:
    p = tmp_path / 'pairs.jsonl'
    p.write_text(''.join(json.dumps(r) + '\n' for r in PAIRS))
    return p


def test_yaml_load_reads_exponent_floats_and_nothing_else_changes():
    assert yaml_load('lr: 1e-4') == {'lr': 0.0001} and yaml.safe_load('lr: 1e-4') == {'lr': '1e-4'}
    assert yaml_load('[2E-5, +1e3, 1.0e5]') == [2e-5, 1000.0, 100000.0]
    for t in ('a: [x, 3, null, 1.0, "2e-5", 1e, e5, true, 2001-12-14]', '1.0', 'k: {v: 1}', ''):
        assert yaml_load(t) == yaml.safe_load(t), t
    from crome.train_config import _loader
    assert yaml.SafeLoader.yaml_implicit_resolvers is not _loader().yaml_implicit_resolvers


def test_train_config_yaml_floats_and_types(tmp_path, data, monkeypatch):
    c = tmp_path / 'tc.yaml'
    c.write_text('lr: 2e-5\nmax_steps: 2\nbatch_size: 2\n')
    assert load_train_config(c) == {'lr': 2e-5, 'max_steps': 2, 'batch_size': 2}
    seen = {}
    monkeypatch.setattr(crome.train, 'train_reward_model', lambda ds, recipe, cfg, **kw: seen.update(cfg=cfg))
    crome.train.main([str(data), '--config', str(c)])
    assert seen['cfg'].lr == 2e-5 and isinstance(seen['cfg'].lr, float)
    for bad in ('lr: abc', 'max_steps: 1.5', 'lr: [1,'):
        c.write_text(bad)
        with pytest.raises(ValueError, match=r'tc\.yaml: (lr must be|max_steps must be|not valid YAML)'):
            load_train_config(c)


def test_python_m_crome_train_errors_are_one_line(tmp_path, data, capsys):
    (tmp_path / 'bad.yaml').write_text('lr: abc')
    (tmp_path / 'afile').write_text('')
    for argv, msg in (([str(data), '--config', str(tmp_path / 'bad.yaml')], "bad.yaml: lr must be float or int, got 'abc'"),
                      ([str(tmp_path / 'none.jsonl')], 'none.jsonl: no such file'),
                      ([str(data), '--output_dir', str(tmp_path / 'afile' / 'x'), '--max_steps', '1',
                        '--max_length', '16'], 'afile/x: is not a folder')):
        with pytest.raises(SystemExit) as e: crome.train.main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and 'crome.train: error: ' in err and msg in err and 'Traceback' not in err, err


def test_repeated_list_flags_keep_every_value(tmp_path, monkeypatch):
    a = build_parser().parse_args(['run', 'c.yaml', '--set', 'train.steps=7', '--set', 'train.seeds=[1, 2]',
                                   '--vary', 'train.lr=1e-3', '--vary', 'train.lambda_tie=0,1'])
    assert a.set == ['train.steps=7', 'train.seeds=[1, 2]'] and a.vary == ['train.lr=1e-3', 'train.lambda_tie=0,1']
    d = build_parser().parse_args(['data', '--cue', 'signoff', '--cue', 'exclaim'])
    assert d.cue == ['signoff', 'exclaim'] and build_parser().parse_args(['data']).cue == ['signoff']
    cfg_file = tmp_path / 'c.yaml'; cfg_file.write_text(f'name: t\nout_dir: {tmp_path / "run"}\n')
    seen = {}
    class Stop(Exception): pass
    def fake_run(cfg): seen['cfg'] = cfg; raise Stop
    monkeypatch.setattr(crome.pipeline, 'run', fake_run)
    with pytest.raises(Stop):
        main(['run', str(cfg_file), '--set', 'train.steps=7', '--set', 'train.seeds=[1, 2]', '--set', 'train.lr=1e-3'])
    t = seen['cfg'].train
    assert (t.steps, list(t.seeds), t.lr) == (7, [1, 2], 1e-3)  # all three --set flags, 1e-3 a float


def test_cli_errors_are_one_line(tmp_path, data, capsys):
    cfg_file = tmp_path / 'c.yaml'; cfg_file.write_text(f'name: t\nout_dir: {tmp_path / "run"}\n')
    (tmp_path / 'afile').write_text('')
    cases = ((['run', str(cfg_file), '--set', 'train.seeds=[0,'], "--set train.seeds: '[0,' is not YAML"),
             (['train', '--data', str(data), '--out', str(tmp_path / 'afile'), '--steps', '1'],
              'afile: already exists, where a folder is made'),
             (['run', str(cfg_file), '--set', f'out_dir={tmp_path / "afile" / "sub"}'], 'afile/sub: is not a folder'))
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert msg in err and 'Traceback' not in err and len(err.strip().splitlines()) == 1, err


def _bin_only_bert(d: Path):
    "A tiny random BERT whose weights are only a pickle `pytorch_model.bin` (transformers 5 saves only safetensors)."
    from transformers import BertConfig, BertModel
    from crome.model import load_tokenizer, default_backbone
    tok = load_tokenizer(default_backbone())
    m = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=64))
    d.mkdir(); m.config.save_pretrained(d); tok.save_pretrained(d); torch.save(m.state_dict(), d / 'pytorch_model.bin')
    return d


def test_weights_load_only_as_safetensors(tmp_path):
    from crome.model import RewardModel, default_backbone
    from crome.frozen import FrozenRewardModel, encoder_fingerprint
    d = _bin_only_bert(tmp_path / 'bin')
    for load in (lambda: RewardModel.from_pretrained(d), lambda: FrozenRewardModel(d).embed(['hi']),
                 lambda: encoder_fingerprint(d)):
        with pytest.raises(ValueError, match='only as safetensors') as e: load()
        assert str(d) in str(e.value) and 'save_pretrained' in str(e.value)
    assert list(Path(default_backbone()).glob('*.safetensors'))  # the installed backbone is safetensors
    assert not list(Path(default_backbone()).glob('*.bin'))


def test_frozen_head_whose_encoder_folder_moved(tmp_path):
    from crome.frozen import FrozenRewardModel
    from crome.model import default_backbone
    h = FrozenRewardModel(hidden=8, max_length=16); h.build_head(12); h.save(tmp_path / 'm')
    meta_p = tmp_path / 'm' / h.META
    meta = json.loads(meta_p.read_text()); meta_p.write_text(json.dumps({**meta, 'backbone': '/old/env/minilm'}))
    with pytest.warns(UserWarning, match='/old/env/minilm no longer exists'):
        back = FrozenRewardModel.load(tmp_path / 'm')
    assert back.backbone == default_backbone() and back.encoder_id == h.encoder_id
    # another encoder's head: the fingerprint check still refuses the default encoder
    shutil.copytree(tmp_path / 'm', tmp_path / 'o')
    (tmp_path / 'o' / h.META).write_text(json.dumps({**meta, 'backbone': '/old/env/x', 'encoder_id': 'ffff'}))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(ValueError, match=r'trained on encoder ffff.*/old/env/x no longer exists'):
            FrozenRewardModel.load(tmp_path / 'o')
    with pytest.raises(FileNotFoundError):  # a backbone named explicitly is not replaced
        FrozenRewardModel.load(tmp_path / 'm', backbone='/old/env/minilm').encoder_id


def test_cue_none_with_cue_kinds_is_refused(tmp_path, capsys):
    "Repeated --cue flags add up, so `--cue none --cue signoff` asked for no cue and a cue at once."
    from crome.cli import main
    assert main(['data', '--n', '40', '--cue', 'none', '--cue', 'signoff', '--out', str(tmp_path / 'd')]) == 2
    err = capsys.readouterr().err
    assert '--cue none means no cue, but cue kinds are given too (none signoff)' in err and not (tmp_path / 'd').exists()
    assert main(['data', '--n', '40', '--cue', 'none', '--out', str(tmp_path / 'e')]) == 0  # alone it is fine
