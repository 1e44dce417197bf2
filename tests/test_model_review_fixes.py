"""Review fixes in crome.onednn / model / frozen / train: stale prepacked weights after a `.data` write (LoRA merge),
the whole-file encoder fingerprint, and PairPM's answer budget."""
import json, os, shutil, warnings
import numpy as np
import pytest
import torch
from conftest import tiny_backbone
from crome import onednn
from crome.encoding import default_backbone, load_tokenizer, pad_batch

pytestmark = pytest.mark.skipif(not onednn.available(), reason='torch without oneDNN kernels: no prepacked weights')

P = ['what about cats?', 'tell me of dogs', 'birds?', 'fish facts'] * 4
C = ['cats are great', 'dogs bark loud', 'birds fly high', 'fish swim'] * 4
R = ['no', 'maybe', 'idk', 'whatever'] * 4


def _plain(rm, prompts, responses):
    "Rewards from the plain transformers forward (no packing, no oneDNN)."
    enc = rm.encode(prompts, responses)
    b = pad_batch([{k: enc[k][i] for k in enc} for i in range(len(prompts))], rm.tokenizer.pad_token_id)
    rm.model.eval()
    with torch.no_grad(): return rm.model(**b).logits[:, 0].numpy()


@pytest.mark.parametrize('check', ['digest', 'forget'])
def test_lora_merge_then_score_uses_trained_weights(tmp_path, monkeypatch, check):
    "Score on CPU (prepacks), LoRA-train + merge (writes through .data), score again: the trained weights are used."
    pytest.importorskip('peft')
    from datasets import Dataset
    from crome.model import RewardModel
    from crome.train import train_reward_model
    if check == 'forget': monkeypatch.setattr(onednn, '_digest', lambda params: ())  # only train's `forget` left
    else: monkeypatch.setattr('crome.train.forget', lambda model: 0)  # only the contents check left
    rm = RewardModel.from_pretrained(tiny_backbone(tmp_path), max_length=32)
    before = rm.score(P[:4], C[:4])
    ds = Dataset.from_dict(dict(prompt=P, chosen=C, rejected=R))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        train_reward_model(ds, 'vanilla', model=rm, peft_config={'r': 4, 'target_modules': ['query', 'value']},
                           max_steps=5, lr=5e-2, batch_size=4, warmup_ratio=0.0, logging_steps=100)
    after, plain = rm.score(P[:4], C[:4]), _plain(rm, P[:4], C[:4])
    assert np.abs(after - before).max() > 1e-3  # training moved the scores ...
    assert np.abs(after - plain).max() < 1e-5, (after, plain)  # ... and scoring sees it (was 1e-3 off, stale)


def test_score_checks_contents_once_per_call(tmp_path, monkeypatch):
    "RewardModel.score checks each prepacked product once per call, not per batch; a .data write is then seen."
    from crome.model import RewardModel
    rm = RewardModel.from_pretrained(tiny_backbone(tmp_path), max_length=32)
    rm.score(P, C, batch_size=2)
    calls, real = [], onednn._digest
    monkeypatch.setattr(onednn, '_digest', lambda params: calls.append(1) or real(params))
    rm.score(P, C, batch_size=2)  # 8 batches
    n_products = 4 * len(rm.model.bert.encoder.layer)  # qkv (kv in the last layer), out, intermediate, output
    assert len(calls) == n_products, (len(calls), n_products)
    with torch.no_grad():
        for layer in rm.model.bert.encoder.layer: layer.output.dense.weight.data.mul_(1.5)
    assert np.abs(rm.score(P, C) - _plain(rm, P, C)).max() < 1e-5


def _save_encoder(model, tok, path):
    model.save_pretrained(path); tok.save_pretrained(path)
    return path


def test_fingerprint_sees_finetuned_attention_weights(tmp_path):
    "MiniLM with its query/value weights changed (a merged LoRA): another fingerprint, no shared cache or encoder."
    from transformers import AutoModel
    from crome.frozen import FrozenRewardModel, encoder_fingerprint
    tok = load_tokenizer(default_backbone())
    enc = AutoModel.from_pretrained(default_backbone(), use_safetensors=True)
    base = _save_encoder(enc, tok, tmp_path / 'base')
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in enc.named_parameters():
            if 'attention.self.query.weight' in n or 'attention.self.value.weight' in n:
                p.add_(0.05 * torch.randn_like(p))
    ft = _save_encoder(enc, tok, tmp_path / 'ft')
    # the old fingerprint (first and last MiB) cannot tell them apart; the whole-file one can
    assert encoder_fingerprint(base, legacy=True) == encoder_fingerprint(ft, legacy=True)
    assert encoder_fingerprint(base) != encoder_fingerprint(ft)
    a, b = FrozenRewardModel(base, device='cpu'), FrozenRewardModel(ft, device='cpu')
    t = ['the cat sat on the mat']
    ea, eb = a.embed(t), b.embed(t)
    a.save_cache(tmp_path / 'base.npz')  # the base's embeddings are not served to the fine-tune
    assert FrozenRewardModel(ft, device='cpu').load_cache(tmp_path / 'base.npz') == 0
    c = FrozenRewardModel(ft, device='cpu').share_from(a)
    assert c._enc is not a._enc and np.allclose(c.embed(t), eb, atol=1e-6) and not np.allclose(eb, ea, atol=1e-2)
    a.build_head(3 * ea.shape[1]); a.save(tmp_path / 'head')
    with pytest.raises(ValueError, match='trained on encoder'): FrozenRewardModel.load(tmp_path / 'head', backbone=ft)


def test_legacy_fingerprint_is_the_previous_one(tmp_path):
    "`legacy=True` reproduces the fingerprint crome recorded before (value computed with the previous code)."
    from crome.frozen import encoder_fingerprint
    d = tmp_path / 'enc'; d.mkdir()
    (d / 'config.json').write_text(json.dumps({'a': 1}))
    (d / 'model.safetensors').write_bytes(bytes(range(256)) * (3 << 12))  # 3 MiB
    assert encoder_fingerprint(d, legacy=True) == '866e9512700dd923'  # crome/frozen.py at HEAD before the change
    assert encoder_fingerprint(d) != encoder_fingerprint(d, legacy=True)
    shutil.copytree(d, tmp_path / 'copy'); os.utime(tmp_path / 'copy' / 'model.safetensors', ns=(1, 1))
    assert encoder_fingerprint(tmp_path / 'copy') == encoder_fingerprint(d)  # content, not path or time


def test_pairpm_gives_unused_answer_room_to_the_other():
    "max_length=64, answer A ~80 tokens, B='ok': the sequence fills 64 tokens (was 40, A cut to 12 words)."
    from types import SimpleNamespace as NS
    from crome.model import PairPM
    tok = load_tokenizer(default_backbone())
    pm = PairPM(NS(config=NS(pad_token_id=0)), tok, max_length=64)
    a = ' '.join(f'w{i}' for i in range(40))
    ids = pm.encode(['q'], [a], ['ok'])[0]
    assert len(ids) == 64 and 'w23' in tok.decode(ids) and tok.decode(ids).endswith('[ response b ] ok [ result ]')
    ids = pm.encode(['q'], ['ok'], [a])[0]
    assert len(ids) == 64 and tok.decode(ids).startswith('[ context ] q [ response a ] ok [ response b ] w0')
    both = pm.encode(['q'], [a], [a])[0]  # two long answers: equal halves, as before, the prompt kept
    left, right = tok.decode(both).split('[ response b ]')
    assert len(both) <= 64 and left.split('[ response a ]')[1].strip() == right.replace('[ result ]', '').strip()
    assert left.startswith('[ context ] q [ response a ]')
