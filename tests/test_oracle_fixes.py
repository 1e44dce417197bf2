"""Regression tests for the LLM-oracle path: attribute-name aliasing, truncated repair replies, non-string
attribute names, the oracle's retry rule and cache key, the rewrite-verdict fallback and the local oracle's key."""
import json, sys, warnings
from pathlib import Path

import pytest

from crome.augment_base import canonical_attribute
from crome.oracle import OpenAICompatibleOracle
from crome.rubrics import RubricFailure, _stage, parse_attributes, rubric_format, rubric_messages

sys.path.insert(0, str(Path(__file__).parent))
from loopback_server import LoopbackServer, Reply  # noqa: E402


@pytest.mark.parametrize('name', ['pharmaceutical_knowledge', 'musical_harmony', 'charm', 'pharmacokinetics',
                                  'Psychological depth', 'mathews_style'])
def test_alias_never_matches_inside_a_word(name):
    assert canonical_attribute(name) is None


@pytest.mark.parametrize('name,key', [
    ('harmlessness', 'safety'), ('avoids_harm', 'safety'), ('ethical_behaviour', 'safety'),
    ('refusal_quality', 'safety'), ('readability', 'clarity'), ('harmful_content', 'safety'),
    ('avoidance_of_unsafe_content', 'safety'), ('toxicity', 'safety'), ('dangerous_advice', 'safety'),
    ('Factual Accuracy', 'correctness'), ('logical_coherence', 'clarity'), ('incoherence', 'clarity'),
    ('irrelevance', 'relevance'), ('follows_instructions', 'instruction_following'),
    ('instruction-following', 'instruction_following'), ('detailed', 'completeness'),
    ('mathematical_reasoning', 'correctness'), ('helpfulness', 'relevance'), ('offtopic', 'relevance')])
def test_alias_whole_word_forms_still_map(name, key):
    assert canonical_attribute(name) == key


ATTRS = [{'name': n, 'description': 'what it measures here', 'weight': 0.2}
         for n in ('correctness', 'relevance', 'completeness', 'clarity', 'safety')]
CUT = json.dumps({'attributes': ATTRS})[:-1] + ', "notes": "the five attributes are mutually exc'


def _attributes_stage(oracle, prompt='What is 2+2?'):
    return _stage(oracle, [rubric_messages('attributes', prompt, '4', '5')], lambda i, t: parse_attributes(t),
                  'attributes', [rubric_format('attributes')])[0]


@pytest.mark.parametrize('first_bad', [True, False])
def test_truncated_reply_fails_in_first_pass_and_in_repair(first_bad):
    "A reply cut by max_tokens is never accepted, even when the cut text parses (it does here)."
    assert len(parse_attributes(CUT).attributes) == 5
    def script(call):
        if first_bad and len(call.messages) == 2: return json.dumps({'attributes': ATTRS[:4]})  # -> repair
        return Reply(text=CUT, fault='truncated')
    with LoopbackServer(script) as s, warnings.catch_warnings():
        warnings.simplefilter('ignore')
        v, f = _attributes_stage(OpenAICompatibleOracle(s.url, 'm', cache=False, progress=False))
    assert v is None and isinstance(f, RubricFailure) and f.stage == 'attributes'
    assert 'cut by max_tokens=600' in f.reason and ('in the repair' in f.reason) == first_bad
    assert s.count == (2 if first_bad else 1)


@pytest.mark.parametrize('bad', [None, True, ['factual accuracy'], 7])
def test_non_string_attribute_name_is_a_parse_error(bad):
    from crome.rubric_models import RubricParseError
    names = [bad, 'relevance', 'completeness', 'clarity', 'safety']
    text = json.dumps({'attributes': [{**a, 'name': n} for a, n in zip(ATTRS, names)]})
    with pytest.raises(RubricParseError, match=rf'attributes\.0\.name: attribute name must be a string, got '
                                               rf'{type(bad).__name__} '):
        parse_attributes(text)


def test_a_request_that_cannot_be_built_is_not_retried():
    "A NaN or infinite parameter is a ValueError of our own making: one attempt, no request, a clear error."
    with LoopbackServer() as s:
        o = OpenAICompatibleOracle(s.url, 'm', cache=False, progress=False, backoff=0.01, max_backoff=0.02)
        for kw in ({'temperature': float('nan')}, {'seed': float('inf')}):
            c = o.complete('hi', **kw)
            assert not c.ok and c.attempts == 1 and 'not JSON compliant' in c.error
        assert s.count == 0 and o.stats['retries'] == 0


def test_malformed_body_is_still_retried():
    with LoopbackServer(lambda call: Reply(fault='malformed') if call.attempt == 0 else Reply(text='fine')) as s:
        c = OpenAICompatibleOracle(s.url, 'm', cache=False, progress=False, backoff=0.001).complete('hi')
    assert c.ok and c.text == 'fine' and c.attempts == 2


def test_lone_surrogate_fails_only_its_row(tmp_path):
    with LoopbackServer() as s:
        o = OpenAICompatibleOracle(s.url, 'm', cache=tmp_path, progress=False, backoff=0.001)
        res = o.complete_many(['first fine', [{'role': 'user', 'content': 'hello \ud800 world'}], 'third fine'])
        assert [r.ok for r in res] == [True, False, True] and s.count == 2
        assert res[1].error == ("row 1: message 0 (user) is not valid text: surrogates not allowed at character 6 "
                                "('\\ud800'); not sent") and res[1].attempts == 0
        assert o.stats['errors'] == 1 and o.stats['cache_hits'] == 0 and len(o.cache) == 2
        assert [r.cached for r in o.complete_many(['first fine', 'x \udfff'])] == [True, False]


@pytest.mark.parametrize('text,verdict', [
    ('Verdict: it does not pass - B changed the tone too.', 'fail'), ('Verdict: not a pass', 'fail'),
    ("Verdict: it doesn't pass", 'fail'), ('Verdict: never passed', 'fail'), ('verdict: fails to pass', 'fail'),
    ('Verdict: it does not fail', None), ('Verdict: Pass, it did not fail to keep the tone', None),
    ('Verdict: no issues, pass', 'pass'), ('Verdict: Pass - not a single extra change', 'pass'),
    ('Verdict: Pass', 'pass'), ('**Verdict:** FAIL - the length changed.', 'fail')])
def test_negated_verdict_is_not_a_pass(text, verdict):
    from crome.llm_rewrite import parse_verdict, parse_verdict_reply
    assert parse_verdict(text) == verdict
    assert parse_verdict_reply(text)[0] == verdict


def test_local_oracle_cache_key_holds_the_load_and_the_files(tmp_path):
    torch = pytest.importorskip('torch')
    from crome.local_oracle import TransformersOracle, tiny_chat_lm
    m, tok = tiny_chat_lm(0)
    m.save_pretrained(tmp_path / 'tiny'); tok.save_pretrained(tmp_path / 'tiny')
    mk = lambda **lk: TransformersOracle(tmp_path / 'tiny', cache=tmp_path / 'c', progress=False, constrained=False,
                                         load_kwargs=lk or None)
    fp32, bf16 = mk(), mk(dtype=torch.bfloat16)
    assert fp32.settings()['dtype'] == 'torch.float32' and bf16.settings()['dtype'] == 'torch.bfloat16'
    assert 'bfloat16' in bf16.settings()['load_kwargs'] and fp32.settings()['load_kwargs'] == '[]'
    fp32.cache.set(fp32.cache_key('hello there', max_tokens=4),
                   {'text': 'the fp32 answer', 'usage': {}, 'finish_reason': 'stop', 'format': None})
    a, b = fp32.complete('hello there', max_tokens=4), bf16.complete('hello there', max_tokens=4)
    assert a.cached and a.text == 'the fp32 answer'
    assert b.ok and not b.cached and b.text != 'the fp32 answer'  # a bf16 load is never served the fp32 answer
    assert mk().cache_key('hello there', max_tokens=4) == fp32.cache_key('hello there', max_tokens=4)
    (tmp_path / 'tiny' / 'extra_weights.safetensors').write_bytes(b'x')  # the folder's files changed
    assert mk().cache_key('hello there', max_tokens=4) != fp32.cache_key('hello there', max_tokens=4)


def test_local_sampling_does_not_depend_on_the_batch():
    torch = pytest.importorskip('torch')
    from crome.local_oracle import TransformersOracle, tiny_chat_lm
    m, tok = tiny_chat_lm(0)
    o = TransformersOracle(m, tok, cache=False, progress=False, batch_size=4, constrained=False)
    a, others = 'tell me about cats', ['a much longer prompt about dogs and their owners ' * 3, 'zz', 'medium prompt']
    kw = dict(temperature=1.0, max_tokens=12, seed=7)
    torch.manual_seed(123); state = torch.random.get_rng_state()
    alone = o.complete(a, **kw).text
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is not reseeded
    batched = o.complete_many(others[:1] + [a] + others[1:], **kw)
    assert batched[1].text == alone and o.complete(a, **{**kw, 'seed': 8}).text != alone
    assert [c.text for c in o.complete_many(others, **kw)] == [o.complete(t, **kw).text for t in others]


def test_local_unseeded_repeats_are_distinct_samples_and_a_rerun_replays_them(tmp_path):
    "Unseeded sampled repeats in one call are cached apart as independent samples: they must differ."
    pytest.importorskip('torch')
    from crome.local_oracle import TransformersOracle, tiny_chat_lm
    m, tok = tiny_chat_lm(0)
    ask = lambda: [c.text for c in TransformersOracle(m, tok, cache=False, progress=False, constrained=False)
                   .complete_many(['tell me about cats'] * 3, temperature=1.0, max_tokens=12)]
    first = ask()
    assert len(set(first)) == 3, first  # once all seeded with 0: three identical replies
    assert ask() == first  # deterministic: a rerun replays the same three samples
    seeded = TransformersOracle(m, tok, cache=False, progress=False, constrained=False).complete_many(
        ['tell me about cats'] * 2, temperature=1.0, max_tokens=12, seed=5)
    assert seeded[0].text == seeded[1].text  # an explicit seed still makes repeats identical


def test_local_oracle_needs_a_local_folder(tmp_path):
    from crome.local_oracle import TransformersOracle
    with pytest.raises(FileNotFoundError, match='a local folder is required: nothing is downloaded'):
        TransformersOracle('HuggingFaceTB/SmolLM2-135M-Instruct', cache=False, progress=False)


def test_local_oracle_folder_loads_safetensors_only(tmp_path):
    "A model folder with pickle weights only (`pytorch_model.bin`) is refused, never unpickled."
    import torch
    from crome.local_oracle import TransformersOracle, tiny_chat_lm
    m, tok = tiny_chat_lm(0)
    m.save_pretrained(tmp_path / 'tiny'); tok.save_pretrained(tmp_path / 'tiny')
    (tmp_path / 'tiny' / 'model.safetensors').unlink()
    torch.save(m.state_dict(), tmp_path / 'tiny' / 'pytorch_model.bin')
    with pytest.raises(OSError, match='safetensors'):
        TransformersOracle(tmp_path / 'tiny', cache=None, progress=False, constrained=False)
