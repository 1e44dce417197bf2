"""`train.finetune`: further `TrainConfig` fields (LoRA, bf16, accumulation, ...) that a run passes to fine-tuning;
checked when the config is read, recorded beside each model, and part of a model's key only when set."""
import json
import pytest
from crome.config import ConfigError, load_config
from crome.pipeline import model_settings_key, run
from conftest import tiny_backbone


def test_unset_keeps_every_models_key_as_before():
    for mode in ('frozen', 'finetune'):
        key = model_settings_key(load_config(None, **{'train.mode': mode}), 'crome')
        assert set(key) == {'mode', 'steps', 'batch_size', 'lr', 'max_length', 'backbone', 'recipe', 'lambda_tie',
                            'filter_enabled'}, key  # no 'finetune' entry when unset: the settings key as before
    frozen = load_config(None, **{'train.finetune.bf16': True, 'train.recipes': ['vanilla']})
    assert 'finetune' not in model_settings_key(frozen, 'vanilla')  # frozen mode reads none of it (and warns)


@pytest.mark.parametrize('bad, msg', [({'gradient_acumulation': 2}, "did you mean 'gradient_accumulation'?"),
                                      ({'bf16': 'yes'}, "bf16 must be bool, got 'yes'"),
                                      ({'gradient_accumulation': 2.5}, 'gradient_accumulation must be int, got 2.5'),
                                      ({'max_steps': 9}, 'max_steps is set by train.steps, not here'),
                                      ({'output_dir': '/tmp/x'}, 'output_dir is set by the run folder'),
                                      ({'warmup_ratio': 3}, 'warmup_ratio must be a share of the updates')])
def test_bad_fields_are_errors_naming_them(bad, msg):
    with pytest.raises(ConfigError) as e: load_config(None, **{'train.mode': 'finetune', 'train.finetune': bad})
    assert 'train.finetune: ' in str(e.value) and msg in str(e.value), e.value


def test_run_passes_them_to_training_and_records_them(tmp_path, monkeypatch):
    import crome.train
    seen, real = [], crome.train.train_reward_model
    def spy(ds, recipe, config): seen.append(config); return real(ds, recipe=recipe, config=config)
    monkeypatch.setattr(crome.train, 'train_reward_model', spy)
    cfg = {'name': 'ft', 'out_dir': str(tmp_path / 'run'), 'data': {'n': 40},
           'train': {'mode': 'finetune', 'steps': 2, 'recipes': ['vanilla'], 'batch_size': 4, 'max_length': 32,
                     'backbone': str(tiny_backbone(tmp_path)),
                     'finetune': {'gradient_accumulation': 2, 'scheduler': 'linear', 'warmup_ratio': 0.0}},
           'evaluate': {'max_pairs': 4, 'robustness': False, 'reward_shifts': False, 'baselines': False}}
    assert 'model:vanilla-s0' in run(cfg)['ran']  # the report too: 2 steps log no loss (logging_steps 10), no curve
    assert 'Training curves' not in (tmp_path / 'run/report.html').read_text()  # was: ValueError 'nothing to plot'
    c, = seen
    assert (c.gradient_accumulation, c.scheduler, c.warmup_ratio, c.max_steps, c.batch_size) == (2, 'linear', 0.0, 2, 4)
    meta = json.loads((tmp_path / 'run/models/vanilla-s0/crome_train.json').read_text())
    assert meta['finetune'] == {'gradient_accumulation': 2, 'scheduler': 'linear', 'warmup_ratio': 0.0}, meta
    assert run(cfg)['ran'] == []  # the same settings: nothing again
    cfg['train']['finetune']['gradient_accumulation'] = 1
    assert 'model:vanilla-s0' in run(cfg)['ran'] and seen[-1].gradient_accumulation == 1


def test_crome_train_reads_them_from_a_yaml_file(tmp_path, capsys):
    from crome.cli import main
    data = tmp_path / 'd.jsonl'
    data.write_text(''.join(json.dumps({'prompt': f'q{i}', 'chosen': 'yes ' * i, 'rejected': 'no'}) + '\n'
                            for i in range(1, 7)))
    ft, bad, m = tmp_path / 'ft.yaml', tmp_path / 'bad.yaml', tmp_path / 'm'
    ft.write_text('gradient_accumulation: 2\nwarmup_ratio: 0.0\n'); bad.write_text('bf16: maybe\n')
    common = ['train', '--data', str(data), '--out', str(m), '--backbone', str(tiny_backbone(tmp_path)), '--steps', '2',
              '--batch-size', '2', '--max-length', '32']
    assert main(common + ['--mode', 'finetune', '--finetune', str(ft)]) == 0
    assert json.loads((m / 'crome_train.json').read_text())['finetune'] == {'gradient_accumulation': 2,
                                                                            'warmup_ratio': 0.0}
    assert main(common + ['--mode', 'finetune', '--finetune', str(bad)]) == 2
    assert "--finetune: Value error, bf16 must be bool, got 'maybe'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e: main(common + ['--finetune', str(tmp_path / 'none.yaml')])
    assert e.value.code == 2 and 'argument --finetune: ' in capsys.readouterr().err
