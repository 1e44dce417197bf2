"Reward models (crome.model): scoring, truncation, save/reload, PairPM, pair_prob."
import numpy as np
import pytest
import torch
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel,
                          LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification)
from crome.model import (RewardModel, PairPM, default_backbone, encode_pairs, load_tokenizer, pair_prob,
                         length_batches, chat_texts)

P = ['What is 2+2?', 'Name a colour.', 'Say hi.', 'Tell me a long story about rivers and mountains.']
R = ['4', 'Blue is a colour that many people like. ' * 3, 'hi', 'Once upon a time ' * 10]


@pytest.fixture(scope='module')
def tok(): return load_tokenizer(default_backbone())


@pytest.fixture(scope='module')
def bert_rm(tok):
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=128, num_labels=1)
    return RewardModel(BertForSequenceClassification(cfg), tok, max_length=64)


def test_score_is_batch_invariant(bert_rm):
    s = bert_rm.score(P, R, batch_size=3)
    assert s.shape == (4,) and s.dtype == np.float32 and np.isfinite(s).all()
    one = np.concatenate([bert_rm.score([p], [r]) for p, r in zip(P, R)])
    assert np.allclose(s, one, atol=1e-5)
    assert np.allclose(bert_rm(P, R, batch_size=1), s, atol=1e-5)
    assert bert_rm.score([], []).shape == (0,)
    bert_rm.model.train(); bert_rm.score(P[:1], R[:1]); assert bert_rm.model.training


def test_bad_input(bert_rm):
    with pytest.raises(ValueError, match='2 prompts but 1 responses'): bert_rm.score(P[:2], R[:1])
    with pytest.raises(TypeError): bert_rm.score('a prompt', 'a response')


def test_truncation_keeps_prompt_end_and_response_start(tok):
    enc = encode_pairs(tok, ['start ' + 'word ' * 100 + 'final question'], ['first ' + 'answer ' * 100], max_length=32)
    text = tok.decode(enc['input_ids'][0])
    assert len(enc['input_ids'][0]) == 32 and 'final question' in text and text.split('[SEP]')[1].strip().startswith('first') and 'start' not in text
    # a short prompt lets the response use the rest of the budget
    enc = encode_pairs(tok, ['hi'], ['answer ' * 100], max_length=32)
    assert len(enc['input_ids'][0]) == 32 and 'hi' in tok.decode(enc['input_ids'][0])
    # empty responses (hh-rlhf has a few) encode fine
    assert len(encode_pairs(tok, ['q'], [''], 32)['input_ids'][0]) == 4


def test_chat_truncation_keeps_the_template(tok):
    "A long conversation is cut inside the chat template: BOS, role headers and EOS stay, prompt end, response start."
    ctok = load_tokenizer(default_backbone())
    ctok.chat_template = "[CLS]{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}[SEP]"
    ids = encode_pairs(ctok, ['pstart ' + 'alpha ' * 50 + 'pend'], ['rstart ' + 'beta ' * 50 + 'rend'], 32, 'chat')['input_ids'][0]
    toks = ctok.convert_ids_to_tokens(ids)
    assert len(ids) == 32 and toks[:4] == ['[CLS]', '<', 'user', '>'] and toks[-1] == '[SEP]'
    assert toks[4:17] == ['alpha'] * 4 + ['pen', '##d', '<', 'assistant', '>', 'rs', '##tar', '##t', 'beta']


def test_slow_tokenizer_text_pairs():
    "A slow (Python) tokenizer takes the same cuts on token ids (it used to need offsets only fast ones give)."
    from transformers import PerceiverTokenizer
    stok = PerceiverTokenizer()
    assert encode_pairs(stok, P, R, 512) == dict(stok(P, R))
    ids = encode_pairs(stok, ['pstart ' + 'a' * 100 + ' pend'], ['rstart ' + 'b' * 100], 43)['input_ids'][0]
    assert stok.decode(ids) == '[CLS]aaaaa pend[SEP]rstart ' + 'b' * 23 + '[SEP]'


def test_length_batches():
    b = length_batches([5, 1, 9, 3, 7], 2)
    assert [x.tolist() for x in b] == [[2, 4], [0, 3], [1]]


def test_save_reload_identical_with_plain_transformers(bert_rm, tmp_path):
    s = bert_rm.score(P, R)
    bert_rm.save(tmp_path)
    assert (tmp_path / 'model.safetensors').exists() and not list(tmp_path.glob('*.bin'))
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    t2 = AutoTokenizer.from_pretrained(tmp_path)
    with torch.no_grad(): ref = plain(**t2(P, R, padding=True, return_tensors='pt')).logits[:, 0].numpy()
    assert np.allclose(ref, s, atol=1e-5)
    again = RewardModel.load(tmp_path)
    assert again.max_length == 64 and again.pair_format == 'text_pair' and np.allclose(again.score(P, R), s, atol=1e-6)


def test_decoder_reward_model_chat_template(tok):
    ltok = load_tokenizer(default_backbone())
    ltok.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    torch.manual_seed(0)
    llama = LlamaForSequenceClassification(LlamaConfig(vocab_size=ltok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                       num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=ltok.pad_token_id))
    rm = RewardModel(llama, ltok, max_length=64)
    assert rm.pair_format == 'chat'
    assert chat_texts(ltok, [[{'role': 'user', 'content': 'q'}]], [[{'role': 'assistant', 'content': 'a'}]]) == ['user: q\nassistant: a\n']
    s = rm.score(P, R)
    assert np.allclose(s, np.concatenate([rm.score([p], [r]) for p, r in zip(P, R)]), atol=1e-5)


def test_pair_prob_from_scorers(bert_rm):
    s_ab = pair_prob(bert_rm, P, R, R[::-1])
    ra, rb = bert_rm.score(P, R), bert_rm.score(P, R[::-1])
    assert np.allclose(s_ab, 1 / (1 + np.exp(-(ra - rb))), atol=1e-6)
    assert np.allclose(pair_prob(bert_rm, P, R, R), 0.5)
    f = lambda prompts, responses: np.array([len(r) for r in responses], dtype=float)
    assert np.allclose(pair_prob(f, ['q', 'q'], ['aaa', 'a'], ['a', 'aaa']), [1 / (1 + np.exp(-2)), 1 / (1 + np.exp(2))])
    with pytest.raises(TypeError): pair_prob(object(), ['q'], ['a'], ['b'])
    with pytest.raises(ValueError): pair_prob(f, ['q'], ['a', 'b'], ['c'])


def test_pairpm(tok, tmp_path):
    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, pad_token_id=tok.pad_token_id))
    pm = PairPM(lm, tok, max_length=48)
    p_ab, p_ba = pm.prob(P, R, R[::-1]), pm.prob(P, R[::-1], R)
    assert ((p_ab > 0) & (p_ab < 1)).all() and np.allclose(p_ab + p_ba, 1)
    assert np.allclose(pm.prob(P, R, R), 0.5)
    # first_wins is order dependent; prob averages both orders
    fw = pm.first_wins(P, R, R[::-1]); bw = pm.first_wins(P, R[::-1], R)
    assert np.allclose(p_ab, 0.5 * (fw + 1 - bw))
    assert np.allclose(pair_prob(pm, P, R, R[::-1]), p_ab)
    ids = pm.encode(['long ' * 200], ['a ' * 200], ['b ' * 200])[0]
    assert len(ids) <= 48 and ids.count(tok.convert_tokens_to_ids('a')) == ids.count(tok.convert_tokens_to_ids('b')) > 0
    assert pm.knockout('q', ['x', 'y', 'z']) in (0, 1, 2)
    pm.save(tmp_path)
    assert np.allclose(PairPM.load(tmp_path).prob(P, R, R[::-1]), p_ab, atol=1e-6)


@pytest.mark.slow
def test_real_minilm_scores_and_reloads(tmp_path):
    rm = RewardModel.from_pretrained(max_length=128)
    assert rm.pair_format == 'text_pair' and rm.model.config.num_labels == 1
    s = rm.score(P, R)
    rm.save(tmp_path)
    assert np.allclose(RewardModel.load(tmp_path).score(P, R), s, atol=1e-5)


def test_loaders_refuse_a_path_that_is_no_model_folder(tmp_path, monkeypatch):
    "RewardModel / PairPM.from_pretrained on a missing path, a file or a folder without config.json: one short error "
    "naming the path and what was expected, raised before transformers is called (it gave an ~86-line traceback)."
    import transformers
    from crome.model import saved_meta
    def called(*a, **k): raise AssertionError('transformers was called')
    for name in ('AutoTokenizer', 'AutoModelForSequenceClassification', 'AutoModelForCausalLM'):
        monkeypatch.setattr(getattr(transformers, name), 'from_pretrained', called)
    (tmp_path / 'empty').mkdir(); (tmp_path / 'afile').write_text('x')
    for cls in (RewardModel, PairPM):
        for path, err, what in (('/nonexistent', FileNotFoundError, 'no such folder'),
                                (tmp_path / 'afile', FileNotFoundError, 'not a folder'),
                                (tmp_path / 'empty', ValueError, 'no config.json in this folder')):
            with pytest.raises(err) as e: cls.from_pretrained(path)
            msg = str(e.value)
            assert msg.startswith(f'{path}: {what}; ') and f'a folder saved by {cls.__name__}.save' in msg, msg
            assert 'config.json, safetensors' in msg and '\n' not in msg, msg
    assert saved_meta(default_backbone(), RewardModel) == {}  # a base model folder passes (no crome settings)
