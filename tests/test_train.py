"Trainer and recipes (crome.train) with tiny random-init models: loss falls, resume, save/reload, frozen fit, CLI."
import json, warnings
import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification, BertModel, LlamaConfig, LlamaForCausalLM
from crome.model import RewardModel, PairPM, default_backbone, load_tokenizer
from crome.frozen import FrozenRewardModel
from crome.schema import make_record, to_dataset
from crome.train import select_rows, train_reward_model, prepare_pairs, PairCollator, main
from crome.train_config import RECIPES, TrainConfig, resolve_recipe
from crome.frozen_fit import fit_frozen

WORDS = ['apple', 'river', 'music', 'garden', 'engine', 'winter', 'coffee', 'planet']
FAST = dict(batch_size=8, lr=3e-3, max_steps=24, logging_steps=4, warmup_ratio=0.0, scheduler='constant')


@pytest.fixture(scope='module')
def tok(): return load_tokenizer(default_backbone())


@pytest.fixture(scope='module')
def toy():
    "Chosen answers name the prompt's topic; rejected ones another topic; half the pairs add an IQN-style tie."
    recs = []
    for i in range(48):
        w, o = WORDS[i % 8], WORDS[(i + 3) % 8]
        recs.append(make_record(f'tell me about {w}', f'{w} is nice ' * (1 + i % 3), f'{o} is here ' * (1 + (i + 1) % 3), id=f'p{i}'))
        if i % 2: recs.append(make_record(f'tell me about {o}', f'{w} thing', f'{WORDS[(i + 5) % 8]} thing', label=0.5, kind='iqn', id=f't{i}'))
    return to_dataset(recs)


def tiny_rm(tok, num_labels=1, seed=0):
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=64, num_labels=num_labels)
    return RewardModel(BertForSequenceClassification(cfg), tok, max_length=48)


@pytest.mark.parametrize('recipe', list(RECIPES))
def test_each_recipe_loss_falls(recipe, tok, toy):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        m = train_reward_model(toy, recipe, model=tiny_rm(tok, 2 if recipe == 'odin' else 1), **FAST)
    losses = [h['loss'] for h in m.history if 'loss' in h]
    assert len(losses) == 6 and np.mean(losses[-2:]) < np.mean(losses[:2]) - 0.05, losses
    assert m.recipe == recipe and m.train_config.max_steps == 24
    if recipe == 'mmd': assert {'bt', 'mmd'} <= set(m.history[0])
    if recipe == 'odin': assert {'rank', 'corr_len', 'corr_quality', 'orth'} <= set(m.history[0])


def test_recipe_defaults():
    assert resolve_recipe('crome', TrainConfig()).lambda_tie == 1.0 and resolve_recipe('crome', TrainConfig()).use_ties
    assert not resolve_recipe('vanilla', TrainConfig()).use_ties
    assert resolve_recipe('mmd', TrainConfig()).n_bins == 10 and resolve_recipe('mmd', TrainConfig(lambda_mmd=3.0)).lambda_mmd == 3.0
    assert resolve_recipe('odin', TrainConfig()).lambda_orth == 1.0
    assert TrainConfig().lr == 2e-5 and TrainConfig().warmup_ratio == 0.03 and TrainConfig().scheduler == 'cosine'
    with pytest.raises(ValueError, match='unknown recipe'): resolve_recipe('dpo', TrainConfig())
    with pytest.raises(ValueError): resolve_recipe('odin', TrainConfig(model_type='pairpm'))


def test_rows_ties_and_labels(toy):
    with pytest.warns(UserWarning, match='dropping 24 tie rows'):
        ds, labels = select_rows(toy, resolve_recipe('vanilla', TrainConfig()), 'vanilla')
    assert len(ds) == 48 and (labels == 1.0).all()
    ds, labels = select_rows(toy, resolve_recipe('crome', TrainConfig()), 'crome')
    assert len(ds) == 72 and (labels == 0.5).sum() == 24
    with pytest.raises(ValueError, match='labels must be 1.0 or 0.5'):
        select_rows(toy.map(lambda r: {'label': 0.7}), resolve_recipe('crome', TrainConfig()))
    with pytest.raises(ValueError, match="lacks column 'rejected'"):
        select_rows(toy.remove_columns('rejected'), resolve_recipe('crome', TrainConfig()))


def test_collator_mixes_preferences_and_ties(tok, toy):
    cfg = resolve_recipe('mmd', TrainConfig(use_ties=True, lambda_tie=1.0))
    prep, edges = prepare_pairs(toy, tiny_rm(tok), cfg, 'mmd')
    rows = [prep[i] for i in range(4)]  # rows 0..3 alternate preference / tie
    b = PairCollator(tok.pad_token_id)(rows)
    assert b['input_ids'].shape[0] == 8 and b['pair_labels'].tolist() == [1.0, 1.0, 0.5, 1.0]
    assert b['spurious'][0].item() == len(toy[0]['chosen']) and b['spurious'][4].item() == len(toy[0]['rejected'])
    assert b['bins'].shape == (8,) and len(edges) >= 2
    assert b['attention_mask'].sum(1).tolist() == [len(r['input_ids_c']) for r in rows] + [len(r['input_ids_r']) for r in rows]
    assert all(l == max(len(r['input_ids_c']), len(r['input_ids_r'])) for l, r in zip(prep['length'], rows))


def test_resume_reproduces_metrics_and_saved_model_reloads(tok, toy, tmp_path):
    full = train_reward_model(toy, 'crome', model=tiny_rm(tok), output_dir=str(tmp_path), save_steps=12, **FAST)
    ref = {h['step']: h['loss'] for h in full.history if 'loss' in h}
    resumed = train_reward_model(toy, 'crome', model=tiny_rm(tok, seed=5), output_dir=str(tmp_path),
                                 resume_from_checkpoint=str(tmp_path / 'checkpoint-12'), **FAST)
    got = {h['step']: h['loss'] for h in resumed.history if 'loss' in h and h['step'] > 12}
    assert sorted(got) == [16, 20, 24] and np.allclose([got[s] for s in got], [ref[s] for s in got], atol=1e-5)
    P, A = list(toy['prompt'][:8]), list(toy['chosen'][:8])
    assert np.allclose(resumed.score(P, A), full.score(P, A), atol=1e-5)
    # the final model in output_dir/model reloads as a plain sequence classifier with identical scores
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / 'model')
    assert np.allclose(RewardModel(plain, tok, 48).score(P, A), full.score(P, A), atol=1e-5)


def test_gradient_accumulation_matches_big_batch(tok, toy):
    kw = dict(FAST, max_steps=3, logging_steps=1, group_by_length=False, training_args={'train_sampling_strategy': 'sequential'})
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        a = train_reward_model(toy, 'vanilla', model=tiny_rm(tok), **{**kw, 'batch_size': 8, 'gradient_accumulation': 1})
        b = train_reward_model(toy, 'vanilla', model=tiny_rm(tok), **{**kw, 'batch_size': 4, 'gradient_accumulation': 2})
    la, lb = [h['loss'] for h in a.history if 'loss' in h], [h['loss'] for h in b.history if 'loss' in h]
    assert len(la) == len(lb) == 3 and np.allclose(la, lb, atol=1e-4), (la, lb)  # same updates, same losses
    P, A = list(toy['prompt'][:8]), list(toy['chosen'][:8])
    sa, sb = a.score(P, A), b.score(P, A)  # BT is blind to the head bias (zero gradient; Adam moves it by noise): compare centred
    assert np.allclose(sa - sa.mean(), sb - sb.mean(), atol=1e-5), (sa, sb)


def test_odin_saves_quality_head_only(tok, toy, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        m = train_reward_model(toy, 'odin', model=tiny_rm(tok, 2), **FAST)
    m.save(tmp_path)
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    P, A = list(toy['prompt'][:8]), list(toy['chosen'][:8])
    assert plain.config.num_labels == 1 and m.model.config.num_labels == 2
    assert np.allclose(RewardModel(plain, tok, 48).score(P, A), m.score(P, A), atol=1e-5)
    with pytest.raises(ValueError, match='num_labels=2'): train_reward_model(toy, 'odin', model=tiny_rm(tok, 1), **FAST)


def test_eval_accuracy_and_pairpm(tok, toy):
    m = train_reward_model(toy, 'crome', model=tiny_rm(tok), eval_ds=toy, **FAST)
    ev = [h for h in m.history if 'eval_accuracy' in h][-1]
    assert ev['eval_accuracy'] > 0.7 and ev['eval_tie_gap'] >= 0
    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, pad_token_id=tok.pad_token_id))
    pm = train_reward_model(toy, 'crome', model=PairPM(lm, tok, max_length=64), **FAST)
    losses = [h['loss'] for h in pm.history if 'loss' in h]
    assert np.mean(losses[-2:]) < np.mean(losses[:2])
    prep, _ = prepare_pairs(toy, pm, resolve_recipe('crome', TrainConfig(model_type='pairpm')), 'crome')
    y = np.array(prep['pair_labels'])
    assert set(np.unique(y)) == {0.0, 0.5, 1.0}  # order flips turn some preferences into "second wins"


def test_frozen_fit_all_recipes(tok, toy, tmp_path):
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    fm = FrozenRewardModel(tmp_path, hidden=32)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for recipe in RECIPES:
            fit_frozen(fm, toy, recipe, epochs=30, lr=1e-2, batch_size=16)
            assert len(fm.history) == 30 and fm.history[-1] < fm.history[0], recipe
            assert fm.n_outputs == (2 if recipe == 'odin' else 1)
        fit_frozen(fm, toy, 'vanilla', epochs=60, lr=1e-2, batch_size=16)
    pref = toy.filter(lambda r: r['label'] == 1.0)
    assert (fm.score(pref['prompt'], pref['chosen']) > fm.score(pref['prompt'], pref['rejected'])).mean() > 0.8
    # same seed -> same head
    s1 = fm.score(pref['prompt'][:4], pref['chosen'][:4])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); fit_frozen(fm, toy, 'vanilla', epochs=60, lr=1e-2, batch_size=16)
    assert np.allclose(fm.score(pref['prompt'][:4], pref['chosen'][:4]), s1)
    # an exact step budget, whatever the data size (the pipeline gives every recipe the same one)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for steps in (1, 7, 40):
            fit_frozen(fm, toy, 'crome', steps=steps, batch_size=16)
            assert fm.steps_done == steps
    with pytest.raises(ValueError, match='steps must be positive'): fit_frozen(fm, toy, 'crome', steps=0)


def test_cli(tok, toy, tmp_path, capsys):
    model_dir = tmp_path / 'tiny'
    tiny_rm(tok).save(model_dir)
    data = tmp_path / 'pairs.jsonl'
    data.write_text('\n'.join(json.dumps({k: r[k] for k in ('prompt', 'chosen', 'rejected', 'label')}) for r in toy))
    m = main([str(data), '--recipe', 'crome', '--model', str(model_dir), '--output_dir', str(tmp_path / 'out'), '--max_steps', '3',
              '--max_length', '48', '--batch_size', '4', '--lambda_tie', '0'])
    assert m.train_config.lambda_tie == 0.0  # issue 16.1: `--lambda_tie 0` is not dropped
    assert (tmp_path / 'out' / 'model' / 'model.safetensors').exists()
    assert RewardModel.load(tmp_path / 'out' / 'model').score(['q'], ['a']).shape == (1,)
    (tmp_path / 'by_split').mkdir(); data.rename(tmp_path / 'by_split' / 'test.jsonl')  # --split: a folder's split
    with pytest.raises(SystemExit) as e: main([str(tmp_path / 'by_split')])  # a data error: one line, exit 2
    assert e.value.code == 2 and "has no files of split 'train'" in capsys.readouterr().err
    m = main([str(tmp_path / 'by_split'), '--split', 'test', '--recipe', 'vanilla', '--model', str(model_dir),
              '--output_dir', str(tmp_path / 'out2'), '--max_steps', '1', '--max_length', '48', '--batch_size', '4'])
    assert m.train_config.max_steps == 1 and (tmp_path / 'out2' / 'model' / 'model.safetensors').exists()


@pytest.mark.slow
def test_real_minilm_fine_tunes(tmp_path):
    "A few steps of real MiniLM on the toy task: loss is finite and falls; save/reload gives identical scores."
    recs = [make_record(f'tell me about {w}', f'{w} is a topic I know well.', f'{WORDS[(i + 3) % 8]} is something else.', id=str(i))
            for i, w in enumerate(WORDS * 2)]
    ds = to_dataset(recs)
    m = train_reward_model(ds, 'vanilla', TrainConfig(max_length=32, batch_size=8, lr=1e-4, max_steps=6, logging_steps=1, warmup_ratio=0.0),
                           output_dir=str(tmp_path))
    losses = [h['loss'] for h in m.history if 'loss' in h]
    assert np.isfinite(losses).all() and np.mean(losses[-2:]) < np.mean(losses[:2])
    P, A = list(ds['prompt']), list(ds['chosen'])
    assert np.allclose(RewardModel.load(tmp_path / 'model').score(P, A), m.score(P, A), atol=1e-5)


def test_lambda_tie_zero_is_honoured(tok, toy):
    "Issue 16.1: lambda_tie=0 must switch the tie term off (it used to become 1.0 through `or 1.0`)."
    from crome.train import recipe_loss
    out = torch.tensor([[2.0], [0.5], [1.0], [0.3], [0.1], [0.9]])  # chosen rewards then rejected
    labels = torch.tensor([1.0, 0.5, 0.5])
    bt_only = torch.nn.functional.softplus(-(out[0, 0] - out[3, 0])) / 3
    for recipe in ('crome', 'rrm'):
        cfg = resolve_recipe(recipe, TrainConfig(lambda_tie=0.0))
        assert cfg.lambda_tie == 0.0
        loss, _ = recipe_loss(recipe, cfg, out, labels)
        assert torch.allclose(loss, bt_only), (recipe, loss, bt_only)
        loss1, _ = recipe_loss(recipe, resolve_recipe(recipe, TrainConfig(lambda_tie=1.0)), out, labels)
        assert loss1 > loss + 0.1
    # odin ranks ties with weight lambda_tie too when asked to use them
    two = torch.cat([out, torch.zeros(6, 1)], 1)
    hw = torch.eye(2)
    l0, p0 = recipe_loss('odin', resolve_recipe('odin', TrainConfig(lambda_tie=0.0, use_ties=True)), two, labels,
                         torch.arange(6.0), None, hw)
    assert abs(p0['rank'] - bt_only.item()) < 1e-6
    # PairPM: tie rows get weight lambda_tie
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, pad_token_id=tok.pad_token_id))
    prep, _ = prepare_pairs(toy, PairPM(lm, tok, max_length=64), resolve_recipe('crome', TrainConfig(model_type='pairpm', lambda_tie=0.0)))
    w, y = np.array(prep['pair_weights']), np.array(prep['pair_labels'])
    assert (w[y == 0.5] == 0).all() and (w[y != 0.5] == 1).all()


def test_scale_head_and_odin_default(tok, toy):
    "Issue 16.11: ODIN starts from unit-std rewards (its correlation terms otherwise swamp the ranking term)."
    from crome.train import scale_head
    lin = torch.nn.Linear(8, 2); x = torch.randn(500, 8)
    scale_head(lin, lin(x), 1.0)
    assert torch.allclose(lin(x).std(0), torch.ones(2), atol=1e-4)
    assert resolve_recipe('odin', TrainConfig()).reward_init_std == 1.0
    assert resolve_recipe('vanilla', TrainConfig()).reward_init_std is None
    assert resolve_recipe('odin', TrainConfig(reward_init_std=0)).reward_init_std == 0
    # fine-tuning: the classifier head is rescaled before the first step
    m = tiny_rm(tok, num_labels=2)
    from crome.train import scale_fresh_head
    prep, _ = prepare_pairs(toy, m, resolve_recipe('odin', TrainConfig()), 'odin')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        scale_fresh_head(m, prep, resolve_recipe('odin', TrainConfig()), n=48)
    rows = [prep[i] for i in range(48)]
    m.model.eval()  # dropout off, as train_reward_model does (disable_dropout)
    out = m.rewards({k: v for k, v in PairCollator(tok.pad_token_id)(rows).items() if k in ('input_ids', 'attention_mask', 'token_type_ids')})
    assert 0.7 < float(out[:, 0].std()) < 1.3


def test_odin_orth_term_is_scale_free(tok, toy):
    "The fresh-head rescale multiplies the raw head product by ~2e9 (tiny model); the logged |cos| term stays <= 1."
    from crome.model import head_linear
    from crome.train import scale_fresh_head, recipe_loss
    m = tiny_rm(tok, num_labels=2)
    cfg = resolve_recipe('odin', TrainConfig(**FAST))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        prep, _ = prepare_pairs(toy, m, cfg, 'odin')
        W0 = head_linear(m.model).weight.detach().clone()
        scale_fresh_head(m, prep, cfg)
    W1 = head_linear(m.model).weight.detach()
    cos = lambda W: ((W[0] @ W[1]).abs() / (W[0].norm() * W[1].norm())).item()
    assert (W0[0] @ W0[1]).abs() < 0.01 and (W1[0] @ W1[1]).abs() > 1e6 and abs(cos(W1) - cos(W0)) < 1e-6
    out = torch.randn(16, 2)
    _, p = recipe_loss('odin', cfg, out, torch.ones(8), torch.arange(16.0), None, W1)
    _, raw = recipe_loss('odin', resolve_recipe('odin', TrainConfig(orth_normalized=False)), out, torch.ones(8),
                         torch.arange(16.0), None, W1)
    assert abs(p['orth'] - cos(W0)) < 1e-6 and p['orth'] <= 1 and raw['orth'] > 1e6
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        runs = {g: train_reward_model(toy, 'odin', model=tiny_rm(tok, 2), head_lr_gain=g, **FAST) for g in (False, True)}
    orth = {g: [h['orth'] for h in r.history if 'loss' in h] for g, r in runs.items()}
    # plain rate: the big rescaled heads barely turn, but the term falls at every log through its own gradient
    assert all(a > b for a, b in zip(orth[False], orth[False][1:])) and orth[False][-1] < 1
    # head_lr_gain (the default): the head learns at lr x the gain, its fresh pace, and the cosine moves far more
    assert orth[True][0] - orth[True][-1] > 100 * (orth[False][0] - orth[False][-1]) > 0
    assert runs[True].trainer.head_lr_scale > 1e4 and runs[False].trainer.head_lr_scale == 1
    assert all(max(abs(h['loss']) for h in r.history if 'loss' in h) < 5 for r in runs.values())


def test_head_lr_gain_only_under_adam(tok, toy):
    "The gain stands for Adam's scale-invariant step: another optimizer keeps the plain rate, and says so."
    with pytest.warns(UserWarning, match='not Adam-type'):
        m = train_reward_model(toy, 'odin', model=tiny_rm(tok, 2), training_args={'optim': 'sgd'}, **FAST)
    groups = m.trainer.optimizer.param_groups
    assert len(groups) == 2 and {g['initial_lr'] for g in groups} == {FAST['lr']}


@pytest.mark.slow
def test_odin_learns_the_demo_testbed():
    "Issue 16.11 on the real testbed: frozen MiniLM, relevance with a signoff cue at rho .9, 20 epochs."
    from crome.demo import make_demo
    from crome.frozen import FrozenRewardModel
    d = make_demo(1600, tasks='relevance', seed=0)
    fm = FrozenRewardModel(max_length=128)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        accs = {}
        for init in (0, 1.0):
            fit_frozen(fm, d['train'], 'odin', epochs=20, lr=1e-3, reward_init_std=init)
            te = d['clean']
            accs[init] = float((fm.score(te['prompt'], te['chosen']) > fm.score(te['prompt'], te['rejected'])).mean())
    assert accs[0] < 0.7 and accs[1.0] > 0.88, accs


def test_lora_trains_saves_adapters_and_merges(tok, toy, tmp_path):
    "Issue 17.5: LoRA (peft, SEQ_CLS) on a tiny random model: only adapters and the head train; adapters saved; merged export."
    pytest.importorskip('peft')
    m = tiny_rm(tok)
    base = {k: v.clone() for k, v in m.model.state_dict().items()}
    lora = {'r': 4, 'lora_alpha': 8, 'target_modules': ['query', 'value'], 'lora_dropout': 0.0}
    seen = {}
    from crome import train as T
    orig = T.with_lora
    def spy(model, cfg, causal=False):
        pm = orig(model, cfg, causal); seen['trainable'] = {n for n, p in pm.named_parameters() if p.requires_grad}; return pm
    T.with_lora = spy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            out = train_reward_model(toy, 'crome', model=m, output_dir=str(tmp_path), peft_config=lora, **FAST)
    finally: T.with_lora = orig
    assert seen['trainable'] and all('lora_' in n or 'classifier' in n for n in seen['trainable']), seen
    losses = [h['loss'] for h in out.history if 'loss' in h]
    assert np.mean(losses[-2:]) < np.mean(losses[:2])
    cfg = json.loads((tmp_path / 'adapter' / 'adapter_config.json').read_text())
    assert cfg['task_type'] == 'SEQ_CLS' and (tmp_path / 'adapter' / 'adapter_model.safetensors').exists()
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / 'model')
    assert type(plain).__name__ == 'BertForSequenceClassification' and not any('lora' in k for k in plain.state_dict())
    P, A = list(toy['prompt'][:6]), list(toy['chosen'][:6])
    assert np.allclose(RewardModel.load(tmp_path / 'model').score(P, A), out.score(P, A), atol=1e-5)
    q = 'bert.encoder.layer.0.attention.self.query.weight'
    assert not torch.allclose(plain.state_dict()[q], base[q])  # the adapters were merged into the weights
    k = 'bert.encoder.layer.0.attention.self.key.weight'
    assert torch.allclose(plain.state_dict()[k], base[k])  # untouched modules stay as they were
    with pytest.raises(ValueError, match='task_type'):
        from peft import LoraConfig
        T.with_lora(tiny_rm(tok).model, LoraConfig(task_type='CAUSAL_LM', target_modules=['query']))


def test_center_rewards_and_margin(tok, toy):
    "Issue 17.5: reward centering pulls the mean reward to 0; a margin column enters the BT term."
    from crome.train import recipe_loss
    out = torch.tensor([[3.0], [2.0], [1.0], [1.0]]); y = torch.tensor([1.0, 1.0])
    base, _ = recipe_loss('vanilla', resolve_recipe('vanilla', TrainConfig()), out, y)
    cen, parts = recipe_loss('vanilla', resolve_recipe('vanilla', TrainConfig(center_rewards_coefficient=0.1)), out, y)
    assert abs(parts['center'] - (16 + 9) / 2) < 1e-6 and torch.isclose(cen, base + 0.1 * 12.5)
    mar, _ = recipe_loss('vanilla', resolve_recipe('vanilla', TrainConfig()), out, y, margin=torch.tensor([2.0, 1.0]))
    assert torch.isclose(mar, torch.nn.functional.softplus(torch.tensor(0.0)))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ds = toy.map(lambda r: {'margin': 0.5})
        a = train_reward_model(ds, 'vanilla', model=tiny_rm(tok), center_rewards_coefficient=1.0, margin_column='margin', **FAST)
        b = train_reward_model(ds, 'vanilla', model=tiny_rm(tok), **FAST)
    P, A, R = list(toy['prompt']), list(toy['chosen']), list(toy['rejected'])
    mean_a = abs(np.concatenate([a.score(P, A), a.score(P, R)]).mean())
    mean_b = abs(np.concatenate([b.score(P, A), b.score(P, R)]).mean())
    assert mean_a < 0.5 * mean_b + 0.05, (mean_a, mean_b)
    assert 'center' in a.history[0]
    with pytest.raises(ValueError, match='margin_column'):
        train_reward_model(toy, 'vanilla', model=tiny_rm(tok), margin_column='nope', **FAST)


def test_gemma2_lora_config_fits_a_tiny_gemma2(tmp_path):
    "The documented 2B config parses into a TrainConfig and its LoRA targets exist in a (tiny, random) Gemma-2 classifier."
    pytest.importorskip('peft')
    from pathlib import Path
    from transformers import Gemma2Config, Gemma2ForSequenceClassification
    from crome.train import load_train_config, with_lora
    d = load_train_config(Path(__file__).resolve().parents[1] / 'benchmarks' / 'configs' / 'gemma2_2b_lora.yaml')
    assert d.pop('recipe') == 'crome'
    cfg = TrainConfig(**d)
    assert cfg.bf16 and cfg.gradient_checkpointing and cfg.center_rewards_coefficient > 0
    torch.manual_seed(0)
    g = Gemma2ForSequenceClassification(Gemma2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                     num_attention_heads=2, num_key_value_heads=1, head_dim=8, num_labels=1,
                                                     pad_token_id=0))
    pm = with_lora(g, cfg.peft_config)
    names = [n for n, p in pm.named_parameters() if p.requires_grad]
    assert any('q_proj.lora_A' in n for n in names) and any('down_proj.lora_B' in n for n in names)
    assert any('score' in n for n in names)  # the fresh reward head trains fully
    out = pm(input_ids=torch.tensor([[1, 2, 3, 4]])).logits
    out.sum().backward()
    (tmp_path / 'bad.yaml').write_text('lr: 1\nlearning_rate: 2\n')
    with pytest.raises(ValueError, match='learning_rate'): load_train_config(tmp_path / 'bad.yaml')


def test_config_names_stay_importable_from_train():
    import crome.train, crome.train_config
    for n in ('RECIPES', 'TrainConfig', 'tie_weight', 'resolve_recipe', 'load_train_config', 'training_arguments'):
        assert getattr(crome.train, n) is getattr(crome.train_config, n), n


@pytest.mark.parametrize('recipe', ['vanilla', 'odin'])
def test_packed_training_matches_the_padded_forward(recipe, tok, toy, monkeypatch):
    "Issue 17: with dropout off, training runs on real tokens only (crome.packed); losses and the model stay the same."
    import crome.train as T
    calls = []
    monkeypatch.setattr(T, 'packed_logits', lambda *a, **k: calls.append(1) or __import__('crome.packed').packed.packed_logits(*a, **k))
    kw = dict(FAST, max_steps=6, logging_steps=1)
    nl = 2 if recipe == 'odin' else 1
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        a = train_reward_model(toy, recipe, model=tiny_rm(tok, nl), packed=True, **kw)
        assert len(calls) == 6  # one packed forward per step (chosen and rejected in one batch)
        b = train_reward_model(toy, recipe, model=tiny_rm(tok, nl), packed=False, **kw)
        assert len(calls) == 6
        c = train_reward_model(toy, recipe, model=tiny_rm(tok, nl), packed=True, disable_dropout=False, **kw)
        assert len(calls) == 6  # dropout on: the plain forward
    la, lb = [h['loss'] for h in a.history if 'loss' in h], [h['loss'] for h in b.history if 'loss' in h]
    # odin: the toy head is rescaled by ~5e4 (09_train), which turns float rounding of the packed vs padded features
    # into ~1e-4 in the loss (the raw orthogonality term, 5.6e6, used to hide this inside allclose's rtol)
    assert len(la) == 6 and np.allclose(la, lb, atol=1e-3 if recipe == 'odin' else 1e-5), (la, lb)
    P, A = list(toy['prompt'][:8]), list(toy['chosen'][:8])
    sa, sb = a.score(P, A), b.score(P, A)  # compared centred: BT is blind to the head bias (Adam moves it by noise)
    gap = np.abs((sa - sa.mean()) - (sb - sb.mean())).max()  # float rounding, amplified by ODIN's huge toy gradients
    assert gap < 1e-4 + 1e-3 * sa.std(), (gap, sa, sb)
    assert c.history[-1]['train_loss'] != a.history[-1]['train_loss']


def test_packed_forward_runs_under_ddp(tok, toy, tmp_path, monkeypatch):
    "Under DDP (a one-process gloo group) the packed forward runs inside DDP's forward: same logits and gradients."
    import types
    import torch.distributed as dist
    import crome.train as T
    from crome.packed import packed_logits
    if not dist.is_available(): pytest.skip('torch.distributed is not available')
    calls = []
    monkeypatch.setattr(T, 'packed_logits', lambda *a, **k: calls.append(1) or packed_logits(*a, **k))
    rm = tiny_rm(tok)
    prep, _ = prepare_pairs(toy, rm, resolve_recipe('vanilla', TrainConfig()), 'vanilla')
    b = PairCollator(tok.pad_token_id)([prep[i] for i in range(6)])
    m = rm.model.train()
    for mod in m.modules():
        if isinstance(mod, torch.nn.Dropout): mod.p = 0.0
    kw = {k: b[k] for k in ('input_ids', 'attention_mask', 'token_type_ids')}
    ref = m(**kw).logits; ref.sum().backward()
    g_ref = {n: p.grad.clone() for n, p in m.named_parameters()}; m.zero_grad()
    trainer = types.SimpleNamespace(pairpm=None, crome_config=TrainConfig(), data_collator=PairCollator(tok.pad_token_id))
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(m)
        out = T.CromeTrainer._outputs(trainer, ddp, b)
        out.sum().backward()
    finally: dist.destroy_process_group()
    assert calls == [1] and 'forward' not in vars(m)  # packed once; the module's own forward is back
    assert (out - ref).abs().max() < 1e-5
    assert max(float((p.grad - g_ref[n]).abs().max()) for n, p in m.named_parameters()) < 1e-5


def test_options_a_fit_would_ignore_are_refused(tok, toy):
    "fit_frozen names the fine-tuning fields it would ignore; a PairPM refuses the BT head's options; warmup_ratio < 1."
    fm = FrozenRewardModel(head='linear', device='cpu')
    with pytest.raises(ValueError, match=r'does not use gradient_accumulation, max_length, max_steps \(.*lambda_tie'):
        fit_frozen(fm, toy, 'vanilla', epochs=1, max_steps=2, gradient_accumulation=4, max_length=8)
    assert fm.head is None  # refused before any embedding or fit
    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, pad_token_id=tok.pad_token_id))
    for k in ('center_rewards_coefficient', 'reward_init_std'):
        with pytest.raises(ValueError, match=f"{k} apply to a BT reward model's head, not to a PairPM"):
            train_reward_model(toy, 'crome', model=PairPM(lm, tok, max_length=64), **{k: 0.1}, **FAST)
    with pytest.raises(ValueError, match=r'0 <= warmup_ratio < 1, got 1.0'): TrainConfig(warmup_ratio=1.0)


def test_max_length_override_applies_to_a_given_model(tok, toy):
    "With model=, an explicit max_length is what the model trains at; without one, the model's own is recorded."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        m = train_reward_model(toy, 'vanilla', model=tiny_rm(tok), max_length=16, **{**FAST, 'max_steps': 1})
        assert (m.max_length, m.train_config.max_length, max(m.trainer.train_dataset['length'])) == (16, 16, 16)
        m = train_reward_model(toy, 'vanilla', model=tiny_rm(tok), **{**FAST, 'max_steps': 1})
        assert (m.max_length, m.train_config.max_length) == (48, 48)
