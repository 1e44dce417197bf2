"""Run config and staged pipeline fixes: an edited data file reruns the data stage (and all after it), an untouched
one reruns nothing; the data stage's code key covers the functions it runs; the train.lr default follows the mode
after a dump and reload (sweeps); YAML numbers like 1e-4 read as floats; a backbone folder replaced in place
retrains the models."""
import inspect, json
import pytest
from crome import stages
from crome.pipeline import early_stages, load_config, run
from conftest import tiny_backbone


def _pairs(path, swap=False):
    rows = [dict(prompt=f'Question {i}: what is {i} times two?', chosen=f'It is {2 * i}.', rejected=f'It is {2 * i + 7}.')
            for i in range(40)]
    if swap: rows = [dict(r, chosen=r['rejected'], rejected=r['chosen']) for r in rows]
    path.write_text(''.join(json.dumps(r) + '\n' for r in rows))


def test_edited_data_file_reruns_the_data_stage(tmp_path):
    f = tmp_path / 'pairs.jsonl'; _pairs(f)
    cfg = {'name': 'fp', 'out_dir': str(tmp_path / 'run'), 'data': {'source': str(f)},
           'train': {'steps': 2, 'recipes': ['vanilla'], 'batch_size': 8, 'max_length': 32,
                     'backbone': str(tiny_backbone(tmp_path))},
           'evaluate': {'max_pairs': 4, 'robustness': False, 'reward_shifts': False, 'baselines': False}}
    first = run(cfg)
    assert {'data', 'model:vanilla-s0', 'evaluate', 'report'} <= set(first['ran'])
    train0 = (tmp_path / 'run/data/train.parquet').read_bytes()
    import yaml  # an unset lr: None in config.yaml (reloaded in another mode, it takes that mode's default) ...
    assert yaml.safe_load((tmp_path / 'run/config.yaml').read_text())['train']['lr'] is None
    meta = json.loads((tmp_path / 'run/models/vanilla-s0' / stages.TRAIN_META).read_text())
    assert meta['lr'] == 1e-3 and meta['mode'] == 'frozen'  # ... and the frozen default where training used it
    f.touch()  # a newer mtime, the same content: nothing reruns
    assert run(cfg)['ran'] == []
    _pairs(f, swap=True)  # chosen <-> rejected in every row: same path, same settings, same size
    again = run(cfg)
    assert {'data', 'model:vanilla-s0', 'evaluate', 'report'} <= set(again['ran'])
    assert (tmp_path / 'run/data/train.parquet').read_bytes() != train0
    assert run(cfg)['ran'] == []


def test_data_code_key_covers_the_functions_it_runs(monkeypatch):
    cfg = load_config({})
    key = early_stages(cfg)['data']['settings']['code']
    assert {stages.build_data, stages._build_data, stages.public_pairs} <= set(stages.DATA_FUNCTIONS)
    real = inspect.getsource
    for fn in (stages._build_data, stages.public_pairs):  # an edit to what build_data calls moves the key
        monkeypatch.setattr(inspect, 'getsource', lambda o, fn=fn: real(o) + ('# edited' if o is fn else ''))
        assert early_stages(cfg)['data']['settings']['code'] != key
    monkeypatch.setattr(inspect, 'getsource', real)
    assert early_stages(cfg)['data']['settings']['code'] == key


def test_sweep_over_mode_gives_each_mode_its_default_lr(tmp_path):
    from crome.sweep import parse_vary, sweep_configs
    base = load_config({'out_dir': str(tmp_path / 'sw')})
    runs = sweep_configs(base, parse_vary(['train.mode=frozen,finetune']))
    assert [c.train.effective_lr for _, c in runs] == [1e-3, 2e-5]
    assert load_config(base.model_dump(), **{'train.mode': 'finetune'}).train.effective_lr == 2e-5
    set_lr = load_config({'train': {'lr': 3e-4}})  # a value the user set survives a dump in either mode
    assert load_config(set_lr.model_dump(), **{'train.mode': 'finetune'}).train.effective_lr == 3e-4



def test_exponent_floats_read_as_floats(tmp_path):
    from crome.sweep import parse_vary, sweep_configs
    p = tmp_path / 'run.yaml'; p.write_text('train:\n  lr: 1e-4\n')
    assert load_config(p).train.lr == 1e-4  # was 'Input should be a valid number' (YAML 1.1 read the string '1e-4')
    vary = parse_vary(['train.lr=1e-4,3e-4'])
    assert vary == {'train.lr': [1e-4, 3e-4]} and all(type(v) is float for v in vary['train.lr'])
    assert [c.train.lr for _, c in sweep_configs(load_config(p), vary)] == [1e-4, 3e-4]


def test_backbone_replaced_in_place_retrains_the_models(tmp_path):
    "The same train.backbone path with other weights: the model stage runs again (it was skipped, then failed to load)."
    import torch
    from transformers import BertModel
    bb = tiny_backbone(tmp_path)
    cfg = {'name': 'bb', 'out_dir': str(tmp_path / 'run'), 'data': {'n': 40},
           'train': {'steps': 2, 'recipes': ['vanilla'], 'batch_size': 8, 'max_length': 32, 'backbone': str(bb)},
           'evaluate': {'max_pairs': 4, 'robustness': False, 'reward_shifts': False, 'baselines': False}}
    assert 'model:vanilla-s0' in run(cfg)['ran']
    m = BertModel.from_pretrained(bb)
    with torch.no_grad():
        for p in m.parameters(): p.add_(0.5)
    m.save_pretrained(bb)  # replaced in place
    again = run(cfg)
    assert {'model:vanilla-s0', 'evaluate'} <= set(again['ran']) and 'data' not in again['ran']
    assert again['reasons']['model:vanilla-s0'].startswith('settings: backbone_files '), again['reasons']
    assert run(cfg)['ran'] == []


def test_a_file_too_small_to_split_names_the_empty_split(tmp_path):
    "A one-line error naming the empty split (it was a datasets error in a later stage); moved from 12b_stages."
    tiny_f = tmp_path / 'two.jsonl'
    tiny_f.write_text(''.join(json.dumps(dict(prompt=f'q{i}', chosen='a', rejected='b')) + '\n' for i in range(2)))
    with pytest.raises(ValueError, match=r'the test split has 0 pairs \(train 1, validation 1, test 0; test_fraction '
                                         r'0.25, val_fraction 0.15'):
        stages.build_data(load_config({'out_dir': str(tmp_path / 'o'), 'data': {'source': str(tiny_f)}}))
