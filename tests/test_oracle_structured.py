"""Structured output: the OpenAI-compatible backend sends the schema and steps down (json_schema -> json_object ->
text) when a server rejects it; the local transformers backend enforces schemas and regexes token by token, so even
a random-weight model returns replies of the requested shape."""
import json, re
import pytest
from loopback_server import LoopbackServer, Reply
from crome.local_oracle import ENGINES, TransformersOracle, constrained_engine, tiny_chat_lm
from crome.oracle import OpenAICompatibleOracle, json_format, regex_format
from crome.rubrics import Rubric, rubric_schema, parse_elements

VERDICT = {'type': 'object', 'properties': {'verdict': {'type': 'string', 'enum': ['pass', 'fail']},
                                            'reason': {'type': 'string', 'maxLength': 20}},
           'required': ['verdict', 'reason'], 'additionalProperties': False}


@pytest.mark.parametrize('status', [400, 422])  # 422: a FastAPI-validated server rejecting the format
@pytest.mark.parametrize('formats,level', [(('json_schema', 'json_object', 'regex'), 'json_schema'),
                                           (('json_object',), 'json_object'), ((), 'text')])
def test_openai_format_steps_down_per_server_capability(formats, level, status):
    with LoopbackServer(lambda c: Reply(text='{"verdict": "pass", "reason": "ok"}'), formats=formats,
                        format_status=status) as srv:
        o = OpenAICompatibleOracle(srv.url, 'm', cache=False, progress=False)
        res = o.complete_many(['a', 'b', 'c'], response_format=json_format(VERDICT))
        assert all(r.ok and r.format == level for r in res) and o.format_level == level
        sent = [b.get('response_format', {}).get('type') for b in srv.requests]
        assert sent == [{'json_schema': 'json_schema', 'json_object': 'json_object', 'text': None}[level]] * 3
        if level == 'json_schema': assert srv.requests[0]['response_format']['json_schema']['schema'] == VERDICT
        free = o.complete('d')  # no format asked: none sent
        assert free.format is None and 'response_format' not in srv.requests[-1]


def test_regex_format_goes_as_structured_outputs_or_is_dropped():
    with LoopbackServer(lambda c: Reply(text='Verdict: Pass')) as srv:
        o = OpenAICompatibleOracle(srv.url, 'm', cache=False, progress=False)
        c = o.complete('x', response_format=regex_format('Verdict: (Pass|Fail)'))
        assert c.format == 'regex' and srv.requests[-1]['structured_outputs'] == {'regex': 'Verdict: (Pass|Fail)'}
    with LoopbackServer(lambda c: Reply(text='Verdict: Pass'), formats=('json_schema',)) as srv:
        o = OpenAICompatibleOracle(srv.url, 'm', cache=False, progress=False)
        c = o.complete('x', response_format=regex_format('Verdict: (Pass|Fail)'))
        assert c.ok and c.format == 'text' and 'structured_outputs' not in srv.requests[-1]


def test_other_bad_requests_do_not_lower_the_level():
    with LoopbackServer(lambda c: Reply(fault='status', status=400)) as srv:
        o = OpenAICompatibleOracle(srv.url, 'm', cache=False, progress=False)
        c = o.complete('x', response_format=json_format(VERDICT))
        assert not c.ok and 'BadRequestError' in c.error and o.format_level == 'json_schema' and srv.count == 1


@pytest.fixture(scope='module')
def tiny():
    return tiny_chat_lm(seed=2)


@pytest.mark.parametrize('engine', ENGINES)
def test_constrained_decoding_random_model_follows_schema_and_regex(tiny, engine):
    m, tok = tiny
    o = TransformersOracle(m, tok, batch_size=3, cache=False, progress=False, constrained=engine)
    assert o.constrained == engine and o.settings() == {'constrained': engine, 'dtype': 'torch.float32'}
    fmts = [json_format(VERDICT), regex_format('Verdict: (Pass|Fail)'), None]
    res = o.complete_many(['judge this', 'and this one', 'free text'], response_format=fmts, max_tokens=300)
    obj = json.loads(res[0].text, strict=False)  # a random model, yet valid JSON of the schema
    assert set(obj) == {'verdict', 'reason'} and obj['verdict'] in ('pass', 'fail') and len(obj['reason']) <= 20
    assert re.fullmatch('Verdict: (Pass|Fail)', res[1].text) and res[1].format == 'regex'
    assert res[0].format == 'json_schema' and res[2].format is None and not res[0].truncated
    free = TransformersOracle(m, tok, cache=False, progress=False, constrained=False).complete(
        'judge this', response_format=json_format(VERDICT), max_tokens=30)
    assert free.format == 'text'  # unconstrained: the random model's gibberish
    with pytest.raises(json.JSONDecodeError): json.loads(free.text)


def test_engine_choice():
    assert constrained_engine(None) == 'llguidance' and constrained_engine(True) == 'llguidance'
    assert constrained_engine(False) is None and constrained_engine('lm-format-enforcer') == 'lm-format-enforcer'
    with pytest.raises(ValueError, match='one of'): constrained_engine('outlines')


def test_json_reply_ends_when_the_object_is_complete(tiny):
    "No whitespace padding after the closing brace (it would hold a batch until max_tokens): the row stops."
    m, tok = tiny
    schema = {'type': 'object', 'properties': {'v': {'type': 'string', 'enum': ['a', 'b']}}, 'required': ['v'],
              'additionalProperties': False}
    for engine in ENGINES:
        o = TransformersOracle(m, tok, batch_size=2, cache=False, progress=False, constrained=engine)
        res = o.complete_many(['x', 'a much longer prompt'], response_format=json_format(schema), max_tokens=200)
        for c in res:
            assert c.finish_reason == 'stop' and json.loads(c.text)['v'] in ('a', 'b'), (engine, c)
            assert c.text == c.text.strip() and c.usage['completion_tokens'] < 40, (engine, c)


def test_a_format_the_engine_cannot_compile_is_a_recorded_failure(tiny):
    m, tok = tiny
    o = TransformersOracle(m, tok, batch_size=2, cache=False, progress=False, constrained='llguidance')
    res = o.complete_many(['a', 'b'], response_format=[regex_format('(unclosed'), None], max_tokens=5)
    assert not res[0].ok and res[0].error.startswith('constrained decoding failed'), res[0]
    assert res[1].error is None and res[1].format is None  # the other row of the batch is unaffected


# --- the rubric schemas in both engines: hand-written replies the grammar must let through or stop ---
NAMES = ['correctness', 'relevance', 'completeness', 'safety', 'clarity']
ELS = [{'description': f'element {i}', 'direction': 'positive'} for i in range(5)]
FULL = [{'name': n, 'description': 'ddd', 'weight': 0.2, 'elements': ELS} for n in NAMES]


def _compact(obj) -> str: return json.dumps(obj, separators=(',', ':'))


def _follows(engine: str, schema: dict, text: str, tok) -> bool:
    "Whether a constrained decoder under `engine` could write `text` in full (and stop there)."
    if engine == 'lm-format-enforcer':
        from crome.local_oracle import _parser_for
        p = _parser_for(json_format(schema))
        for ch in text:
            if ch not in p.get_allowed_characters(): return False
            p = p.add_character(ch)
        return p.can_end()
    from llguidance import LLMatcher
    from llguidance.hf import from_tokenizer
    from crome.local_oracle import _grammar
    m = LLMatcher(from_tokenizer(tok, n_vocab=len(tok), eos_token=tok.eos_token_id), _grammar(json_format(schema)),
                  log_level=0)
    assert not m.is_error(), m.get_error()
    ids = tok.encode(text, add_special_tokens=False)
    return m.validate_tokens(ids) == len(ids) and m.consume_tokens(ids) and m.is_accepting()


@pytest.mark.parametrize('engine', ENGINES)
def test_rubric_schemas_let_through_only_the_intended_shapes(tiny, engine):
    "Elements: each attribute once (a repeat or a gap is impossible); review: 'ok' ends, 'revised' carries a rubric."
    _, tok = tiny
    rub = type('R', (), {'names': NAMES})()
    el, rev = rubric_schema('elements', rub), rubric_schema('review')
    keyed = {'elements': {n: ELS for n in NAMES}}
    cases = [
        (el, _compact(keyed), True),
        (el, _compact(keyed).replace('"relevance"', '"correctness"'), False),  # a name twice (and one missing)
        (el, _compact({'elements': {n: ELS for n in NAMES[:4]}}), False),  # one left out
        (el, _compact({'elements': {n: ELS for n in NAMES[:4] + ['honesty']}}), False),  # not the rubric's
        (el, _compact({'attributes': [{'name': n, 'elements': ELS} for n in NAMES]}), False),  # the old list shape
        (rev, '{"verdict":"ok","issues":[]}', True),
        (rev, _compact({'verdict': 'ok', 'issues': [], 'attributes': FULL}), False),  # "ok", then the rubric copied
        (rev, _compact({'verdict': 'revised', 'issues': ['overlap'], 'attributes': FULL}), True),
        (rev, '{"verdict":"revised","issues":["overlap"]}', False),  # revised without the rubric
        (rev, '{"verdict":"maybe","issues":[]}', False),
        (rubric_schema('attributes'), _compact({'attributes': [{k: a[k] for k in ('name', 'description', 'weight')}
                                                               for a in FULL]}), True)]
    got = [_follows(engine, s, t, tok) for s, t, _ in cases]
    assert got == [want for _, _, want in cases]
    # the attribute keys in another order: llguidance keeps the schema's order, lm-format-enforcer takes any order
    shuffled = _compact({'elements': {n: ELS for n in NAMES[::-1]}})
    assert _follows(engine, el, shuffled, tok) == (engine == 'lm-format-enforcer')
    assert parse_elements(shuffled, Rubric(attributes=[{k: a[k] for k in ('name', 'description', 'weight')}
                                                       for a in FULL])).names == NAMES  # either way it parses
