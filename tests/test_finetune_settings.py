"""`train.finetune`: further `TrainConfig` fields (LoRA, bf16, accumulation, ...) that a run passes to fine-tuning;
checked when the config is read, recorded beside each model, and part of a model's key only where they can change
its weights; `crome train --finetune FILE`; `crome eval` scores a fine-tuned model's baselines with its backbone."""
import json
import pytest
from crome.config import ConfigError, load_config
from crome.pipeline import model_settings_key, run
from conftest import tiny_backbone

FT = {'train.mode': 'finetune'}


def test_unset_keeps_every_models_key_as_before():
    for mode in ('frozen', 'finetune'):
        key = model_settings_key(load_config(None, **{'train.mode': mode}), 'crome')
        assert set(key) == {'mode', 'steps', 'batch_size', 'lr', 'max_length', 'backbone', 'recipe', 'lambda_tie',
                            'filter_enabled'}, key  # no 'finetune' entry when unset: the settings key as before
    frozen = load_config(None, **{'train.finetune.bf16': True, 'train.recipes': ['vanilla']})
    assert 'finetune' not in model_settings_key(frozen, 'vanilla')  # frozen mode reads none of it (and warns)


def test_key_holds_only_what_can_change_the_weights():
    c = load_config(None, **FT, **{'train.recipes': ['vanilla', 'mmd'], 'train.finetune': {
        'logging_steps': 1, 'save_steps': 5, 'bf16': False, 'lambda_mmd': 2.0, 'n_bins': 10}})
    assert 'finetune' not in model_settings_key(c, 'vanilla')  # logging, checkpoints, a default, MMD's weights
    assert model_settings_key(c, 'mmd')['finetune'] == {'lambda_mmd': 2.0}  # n_bins 10 is MMD's default


@pytest.mark.parametrize('bad, msg', [({'gradient_acumulation': 2}, "did you mean 'gradient_accumulation'?"),
                                      ({'bf16': 'yes'}, "bf16 must be bool, got 'yes'"),
                                      ({'gradient_accumulation': 2.5}, 'gradient_accumulation must be int, got 2.5'),
                                      ({'gradient_accumulation': 0}, 'gradient_accumulation must be a whole number'),
                                      ({'gradient_accumulation': 3}, 'that divides train.batch_size (128)'),
                                      ({'max_steps': 9}, 'max_steps is set by train.steps, not here'),
                                      ({'output_dir': '/tmp/x'}, 'output_dir is set by the run folder'),
                                      ({'eval_steps': 5}, "eval_steps is set by the run's evaluate stage"),
                                      ({'training_args': {'max_steps': 7, 'learning_rate': 0.5}},
                                       'training_args.max_steps is set by train.steps, not here; '
                                       'training_args.learning_rate is set by train.lr'),
                                      ({'peft_config': 'lora'}, 'peft_config must be a dict of peft LoraConfig fields'),
                                      ({'warmup_ratio': 3}, 'warmup_ratio must be a share of the updates')])
def test_bad_fields_are_errors_naming_them(bad, msg):
    with pytest.raises(ConfigError) as e: load_config(None, **FT, **{'train.finetune': bad})
    assert 'train.finetune: ' in str(e.value) and msg in str(e.value), e.value


def test_a_peft_config_typo_is_an_error_on_read():
    pytest.importorskip('peft')
    with pytest.raises(ConfigError, match=r"peft_config.rr is not a LoraConfig field; did you mean 'r'\?"):
        load_config(None, **FT, **{'train.finetune.peft_config': {'rr': 4}})


def test_unread_recipe_weights_warn():
    with pytest.warns(UserWarning, match=r'train.finetune.lambda_orth set, but recipes vanilla, mmd do not read it'):
        load_config(None, **FT, **{'train.recipes': ['vanilla', 'mmd'], 'train.finetune.lambda_orth': 2.0})


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
    c, = seen  # train.batch_size stays the pairs of one optimizer step: 2 forward passes of 2
    assert (c.gradient_accumulation, c.batch_size, c.scheduler, c.warmup_ratio, c.max_steps) == (2, 2, 'linear', 0.0, 2)
    meta = json.loads((tmp_path / 'run/models/vanilla-s0/crome_train.json').read_text())
    assert meta['finetune'] == {'gradient_accumulation': 2, 'scheduler': 'linear', 'warmup_ratio': 0.0}, meta
    assert meta['batch_size'] == 4
    assert run(cfg)['ran'] == []  # the same settings: nothing again
    cfg['train']['finetune']['logging_steps'] = 1
    assert 'model:vanilla-s0' not in run(cfg)['ran']  # logging changes no weights: no retraining
    cfg['train']['finetune']['gradient_accumulation'] = 1
    assert 'model:vanilla-s0' in run(cfg)['ran'] and seen[-1].gradient_accumulation == 1 and seen[-1].batch_size == 4


def test_crome_train_reads_them_from_a_yaml_file(tmp_path, capsys):
    from crome.cli import main
    data = tmp_path / 'd.jsonl'
    data.write_text(''.join(json.dumps({'prompt': f'q{i}', 'chosen': 'yes ' * i, 'rejected': 'no'}) + '\n'
                            for i in range(1, 7)))
    ft, bad, empty, m = (tmp_path / f for f in ('ft.yaml', 'bad.yaml', 'empty.yaml', 'm'))
    ft.write_text('gradient_accumulation: 2\nwarmup_ratio: 0.0\n'); empty.write_text('# nothing\n')
    bb = tiny_backbone(tmp_path)
    common = ['train', '--data', str(data), '--out', str(m), '--backbone', str(bb), '--steps', '2', '--batch-size', '2',
              '--max-length', '32']
    assert main(common + ['--mode', 'finetune', '--finetune', str(ft)]) == 0
    meta = json.loads((m / 'crome_train.json').read_text())
    assert meta['finetune'] == {'gradient_accumulation': 2, 'warmup_ratio': 0.0} and meta['backbone'] == str(bb)
    for text, msg in (('bf16: maybe\n', "--finetune: Value error, bf16 must be bool, got 'maybe'"),
                      ('max_steps: 5\nlr: 0.1\n', 'max_steps is set by --steps, not here; lr is set by --lr')):
        bad.write_text(text)
        assert main(common + ['--mode', 'finetune', '--finetune', str(bad)]) == 2
        assert msg in capsys.readouterr().err
    assert main(common + ['--mode', 'finetune', '--finetune', str(empty)]) == 0  # an empty file: no settings
    with pytest.raises(SystemExit) as e: main(common + ['--finetune', str(tmp_path / 'none.yaml')])
    assert e.value.code == 2 and 'argument --finetune: ' in capsys.readouterr().err
    with pytest.warns(UserWarning, match='--finetune set, but --mode is frozen'):  # and not recorded as trained with
        assert main(common + ['--finetune', str(ft)]) == 0
    assert 'finetune' not in json.loads((m / 'crome_train.json').read_text())


def test_eval_scores_a_fine_tuned_models_baselines_with_its_backbone(tmp_path):
    "Review: crome eval built the cosine baseline on the default MiniLM, not the run's backbone, unlike the run."
    from crome.stages import model_settings
    bb = tiny_backbone(tmp_path); out = tmp_path / 'm'; (out / 'model').mkdir(parents=True)
    (out / 'crome_train.json').write_text(json.dumps({'mode': 'finetune', 'backbone': str(bb)}))
    (out / 'model/crome_reward.json').write_text(json.dumps({'max_length': 32}))
    assert model_settings(out, 'finetune') == {'train.max_length': 32, 'train.backbone': str(bb)}
    (out / 'crome_train.json').write_text(json.dumps({'mode': 'finetune', 'backbone': None}))  # the default MiniLM
    assert model_settings(out, 'finetune') == {'train.max_length': 32}
