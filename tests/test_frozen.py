"Frozen-encoder reward head (crome.frozen): cache keyed by embedding space, prompt truncation, seeded heads, save/reload."
import ast, warnings
from pathlib import Path
import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel
from crome.frozen import FrozenRewardModel, cache_key, encoder_fingerprint
from crome.model import default_backbone, load_tokenizer

P = ['What is 2+2?', 'Name a colour.', 'Say hi.', 'Tell me a long story about rivers and mountains.']
R = ['4', 'Blue is a colour that many people like. ' * 3, 'hi', 'Once upon a time ' * 10]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def tok(): return load_tokenizer(default_backbone())


def _encoder(tok, path, seed=0):
    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope='module')
def bb(tok, tmp_path_factory): return _encoder(tok, tmp_path_factory.mktemp('bb'))


def test_frozen_cache_and_save(bb, tmp_path):
    fm = FrozenRewardModel(bb, head='linear', max_length=32)
    with pytest.raises(RuntimeError): fm.score(P, R)
    x = fm.features(P, R)
    assert x.shape == (4, 96) and len(fm.cache) == 8
    q, a = x[:, :32], x[:, 32:64]
    assert torch.allclose(x[:, 64:], q * a) and torch.allclose(q.norm(dim=1), torch.ones(4), atol=1e-5)
    # cached values equal a fresh computation, and embedding is batch-invariant
    e1 = fm.embed(P); fm.cache.clear(); fm.batch_size = 1
    assert np.allclose(fm.embed(P), e1, atol=1e-5)
    fm.build_head(96)
    s = fm.score(P, R)
    fm.save(tmp_path / 'head'); fm.save_cache(tmp_path / 'c.npz')
    fm2 = FrozenRewardModel.load(tmp_path / 'head')
    assert fm2.load_cache(tmp_path / 'c.npz') == len(fm.cache)
    assert fm2.head_kind == 'linear' and np.allclose(fm2.score(P, R), s, atol=1e-6)
    with pytest.raises(ValueError): FrozenRewardModel(bb, head='transformer')


def test_long_prompt_keeps_its_end(bb):
    "Issue 16.7: prompts past the token limit differ only at their end; their embeddings must differ."
    fm = FrozenRewardModel(bb, max_length=16)
    a, b = 'some context ' * 30 + 'Human: first question', 'some context ' * 30 + 'Human: another request'
    x = fm.features([a, b], ['same answer', 'same answer'])
    assert not torch.allclose(x[0, :32], x[1, :32])
    # responses keep their start (as in the fine-tuned encoding)
    y = fm.features(['q', 'q'], ['one start ' + 'x ' * 40 + 'end a', 'one start ' + 'x ' * 40 + 'end b'])
    assert torch.allclose(y[0, 32:64], y[1, 32:64])


def test_cache_keyed_by_encoder_length_and_side(bb, tok, tmp_path):
    "Issue 16.13: a cache built at one token limit (or encoder, or side) is never reused at another."
    text = ['tell me ' * 40 + 'about rivers']
    short = FrozenRewardModel(bb, max_length=8)
    e8 = short.embed(text); short.save_cache(tmp_path / 's.npz')
    wide = FrozenRewardModel(bb, max_length=64)
    assert wide.load_cache(tmp_path / 's.npz') == 0
    e64 = wide.embed(text)
    assert np.allclose(e64, FrozenRewardModel(bb, max_length=64).embed(text), atol=1e-6)
    assert not np.allclose(e64, e8, atol=1e-3)
    assert not np.allclose(short.embed(text, side='left'), e8, atol=1e-3)
    other = FrozenRewardModel(_encoder(tok, tmp_path / 'other', seed=1), max_length=8)
    other.share_from(short)
    assert other.cache is short.cache and other._enc is not short._enc
    assert not np.allclose(other.embed(text), e8, atol=1e-3)
    assert cache_key('x', short.space('right')) != cache_key('x', other.space('right'))
    assert encoder_fingerprint(bb) == short.encoder_id != other.encoder_id


def test_build_head_forks_the_rng(bb):
    "Issue 16.12: the head is seeded inside `with torch.random.fork_rng()`, the global state is untouched."
    import inspect
    import crome.frozen
    assert '__enter__' not in inspect.getsource(crome.frozen)
    state = torch.random.get_rng_state()
    h1, h2 = FrozenRewardModel(bb, seed=5).build_head(12), FrozenRewardModel(bb, seed=5).build_head(12)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(h1.parameters(), h2.parameters()))


def test_old_heads_reload_with_their_truncation(bb, tmp_path):
    import json
    fm = FrozenRewardModel(bb, max_length=16); fm.build_head(96); fm.save(tmp_path)
    meta = json.loads((tmp_path / fm.META).read_text()); del meta['truncation']; del meta['encoder_id']
    (tmp_path / fm.META).write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match='truncation'): old = FrozenRewardModel.load(tmp_path)
    assert old.truncation == {'prompt': 'right', 'response': 'right'}


def _imports(path):
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(('crome.' if node.level else '') + node.module)
        elif isinstance(node, ast.Import): out.update(a.name for a in node.names)
    return out


def test_model_and_frozen_import_no_later_stage():
    "The back edge crome.model -> crome.train is gone; crome.frozen imports only earlier stages."
    later = {'crome.losses', 'crome.train', 'crome.evaluate', 'crome.stress', 'crome.inspect', 'crome.pipeline', 'crome.cli'}
    for mod in ('model', 'frozen'):
        bad = {m for m in _imports(ROOT / 'crome' / f'{mod}.py') if any(m == x or m.startswith(x + '.') for x in later)}
        assert not bad, (mod, bad)
    assert 'crome.frozen' not in _imports(ROOT / 'crome' / 'model.py')


def test_fit_bar_counts_optimizer_steps(bb, capsys):  # review item 18: the bar counted epochs (vanilla 0/50, rrm 0/12)
    from crome.frozen_fit import fit_frozen
    from crome.schema import make_record, to_dataset
    rows = [make_record(f'q{i}', f'good answer {i}', f'bad {i}', id=str(i)) for i in range(10)]
    rows += [make_record(f'q{i}', f'same {i}', f'also {i}', label=0.5, id=f't{i}') for i in range(10)]
    ds = to_dataset(rows)
    for recipe in ('vanilla', 'crome'):  # 10 rows vs 20 rows: different epochs, the same 7 steps on the bar
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            fm = fit_frozen(FrozenRewardModel(bb, head='linear', max_length=32), ds, recipe, steps=7, batch_size=4,
                            progress=True)
        err = capsys.readouterr().err
        assert f'fit {recipe}' in err and '7/7' in err and fm.steps_done == 7, err
        assert fm.train_rows == (10 if recipe == 'vanilla' else 20)
