"Exact fast scoring (crome.packed): packed tokens and a first-token-only last layer give the plain forward's scores."
import numpy as np
import pytest
import torch
from transformers import (BertConfig, BertForMaskedLM, BertForSequenceClassification, LlamaConfig,
                          LlamaForSequenceClassification)
import crome.model
from crome.model import RewardModel, default_backbone, load_tokenizer
from crome.packed import packable, packed_logits

P = ['What is 2+2?', 'Name a colour.', 'Say hi.', 'Tell me a long story about rivers and mountains.', 'q']
R = ['4', 'Blue is a colour that many people like. ' * 3, 'hi', 'Once upon a time ' * 10, '']


@pytest.fixture(scope='module')
def tok(): return load_tokenizer(default_backbone())


def tiny_bert(vocab, layers=3, labels=1):
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=64,
                     max_position_embeddings=128, num_labels=labels)
    m = BertForSequenceClassification(cfg).eval()
    with torch.no_grad(): m.classifier.weight.normal_(0, 3.0)  # a visible reward scale
    return m


def test_packed_logits_equal_plain_forward():
    m = tiny_bert(100, labels=2)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 100, (6, 20), generator=g); am = torch.ones_like(ids)
    for row, n in enumerate([20, 13, 1, 7, 20, 2]): am[row, n:] = 0
    ids[am == 0] = 0; tt = (torch.arange(20) >= 6).long().expand(6, -1) * am
    with torch.inference_mode():
        ref = m(input_ids=ids, attention_mask=am, token_type_ids=tt).logits
        out = packed_logits(m, ids, am, tt)
    assert out.shape == ref.shape == (6, 2)
    assert (out - ref).abs().max() < 1e-5 and ref.std() > 0.1


def test_rows_and_grid_attention_agree_with_plain_forward_and_gradients():
    "Per-sequence attention (CPU default) and one masked call over the padded grid: same logits and gradients."
    m = tiny_bert(100)
    for mod in m.modules():
        if isinstance(mod, torch.nn.Dropout): mod.p = 0.0
    m.train()
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 100, (5, 30), generator=g); am = torch.ones_like(ids)
    for row, n in enumerate([30, 4, 17, 1, 29]): am[row, n:] = 0
    ids[am == 0] = 0
    res = {}
    for mode in ('plain', 'rows', 'grid'):
        m.zero_grad()
        out = m(input_ids=ids, attention_mask=am).logits if mode == 'plain' else packed_logits(m, ids, am, attention=mode)
        (out[:, 0] * torch.arange(1., 6.)).sum().backward()
        res[mode] = out.detach(), {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    (ref, gref), (rows, grows), (grid, ggrid) = res['plain'], res['rows'], res['grid']
    assert ref.std() > 0.1 and (rows - ref).abs().max() < 1e-5 and (grid - ref).abs().max() < 1e-5
    assert len(gref) > 20 and gref.keys() == grows.keys() == ggrid.keys()
    scale = max(float(g.abs().max()) for g in gref.values())  # gradients reach ~1e2 with this head: compare relatively
    assert scale > 1 and max(float((gref[n] - grows[n]).abs().max()) for n in gref) < 1e-6 * scale
    assert max(float((gref[n] - ggrid[n]).abs().max()) for n in gref) < 1e-6 * scale
    with pytest.raises(ValueError, match="not 'flash'"): packed_logits(m, ids, am, attention='flash')


def test_packable_only_where_exact():
    m = tiny_bert(100)
    assert packable(m) and not packable(m.train())
    m.eval()
    assert not packable(BertForMaskedLM(m.config))
    assert not packable(LlamaForSequenceClassification(LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64,
                                                                    num_hidden_layers=1, num_attention_heads=2)))
    ids, am = torch.ones(2, 4, dtype=torch.long), torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    with pytest.raises(ValueError, match='right-padded'): packed_logits(m, ids, am)
    with pytest.raises(ValueError, match='right-padded'): packed_logits(m, ids, torch.tensor([[1, 0, 1, 1], [1, 1, 1, 1]]))


def test_score_uses_packed_path_with_plain_scores(tok, monkeypatch):
    rm = RewardModel(tiny_bert(tok.vocab_size), tok, max_length=48)
    calls = []
    real = crome.model.packed_logits
    monkeypatch.setattr(crome.model, 'packed_logits', lambda *a, **k: calls.append(1) or real(*a, **k))
    s = rm.score(P, R, batch_size=2)
    assert calls, 'RewardModel.score did not take the packed path'
    enc = rm.encode(P, R)
    with torch.inference_mode():  # the plain forward, one text at a time (no padding at all)
        ref = np.array([rm.model(**{k: torch.tensor([v[i]]) for k, v in enc.items()}).logits[0, 0].item() for i in range(len(P))])
    assert np.abs(s - ref).max() < 1e-5 and ref.std() > 1e-3
    # a model packing cannot reproduce (training mode) scores through the plain forward, with the same result
    calls.clear(); rm.model.train()
    monkeypatch.setattr(crome.model, 'packable', lambda m: False)
    assert np.abs(rm.score(P, R, batch_size=2) - s).max() < 1e-5 and not calls and rm.model.training


@pytest.mark.slow
def test_compiled_scores_equal_eager(tok):
    rm = RewardModel(tiny_bert(tok.vocab_size, layers=2), tok, max_length=48)
    s = rm.score(P, R, batch_size=2)
    rm.compile = True
    assert np.abs(rm.score(P, R, batch_size=2) - s).max() < 1e-5


def test_packed_logits_copies_host_tensors_blocking_to_a_non_cuda_device(monkeypatch):
    "Only CUDA gets pinned non_blocking copies: on MPS a non_blocking copy of a pageable tensor freed at once (the "
    "token indices are) can read freed memory (pytorch#139550). A meta-device model stands in for such a device."
    m = tiny_bert(100).to('meta')
    ids = torch.randint(1, 100, (3, 9)); am = torch.ones_like(ids); am[1, 4:] = 0; am[2, 1:] = 0
    calls, to = [], torch.Tensor.to
    def rec(self, *a, **k):
        calls.append(k.get('non_blocking', False) or (len(a) > 1 and a[1] is True)); return to(self, *a, **k)
    monkeypatch.setattr(torch.Tensor, 'to', rec)
    with torch.inference_mode(): out = packed_logits(m, ids, am)
    assert out.shape == (3, 1) and out.device.type == 'meta'
    assert calls and not any(calls)


def test_onednn_scoring_matches_plain_forward_and_follows_training(tok, monkeypatch):
    "CPU scoring runs the real MiniLM's linear layers on prepacked oneDNN weights (crome.onednn): its scores equal the "
    "plain forward's, and an optimizer step between two scorings is seen by the second (the prepacked copy is remade)."
    from crome import onednn
    rm = RewardModel.from_pretrained(default_backbone(), max_length=48)
    with torch.no_grad(): rm.model.classifier.weight.normal_(0, 1.0)
    calls, real = [], onednn.linear
    monkeypatch.setattr(onednn, 'linear', lambda *a, **k: calls.append(1) or real(*a, **k))
    enc = rm.encode(P, R)

    def plain():  # one text at a time: no padding at all
        rm.model.eval()
        with torch.inference_mode():
            return np.array([rm.model(**{k: torch.tensor([v[i]]) for k, v in enc.items()}).logits[0, 0].item()
                             for i in range(len(P))])
    s, ref = rm.score(P, R, batch_size=2), plain()
    assert calls and np.abs(s - ref).max() < 1e-5 and ref.std() > 0.1
    opt = torch.optim.SGD(rm.model.parameters(), lr=1e-3)
    rm.model.train(); rm.rewards(rm.tokenizer(P, R, padding=True, return_tensors='pt'))[:, 0].sum().backward(); opt.step()
    s2, ref2 = rm.score(P, R, batch_size=2), plain()
    assert np.allclose(s2, ref2, rtol=1e-6, atol=1e-5) and np.abs(s2 - s).max() > 1e-2  # rtol: scores are now ~80


def test_model_made_under_inference_mode_scores_without_onednn():
    "Parameters made under torch.inference_mode keep no version counter: the packed path then uses F.linear (a stale "
    "prepacked copy could not be detected), with the plain forward's logits, instead of failing."
    from crome import onednn
    with torch.inference_mode():
        m = tiny_bert(100)
        ids = torch.randint(1, 100, (3, 9)); am = torch.ones_like(ids); am[1, 4:] = 0
        assert not onednn.usable(m)
        assert (packed_logits(m, ids, am) - m(input_ids=ids, attention_mask=am).logits).abs().max() < 1e-5
        with pytest.raises(ValueError, match='not made under torch.inference_mode'):
            packed_logits(m, ids, am, onednn=True)
