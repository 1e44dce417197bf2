"""Replay a corpus of server replies of the kinds real models and servers produce (tests/fixtures/oracle_replies.jsonl:
JSON in code fences, prose around JSON, <think> blocks, truncated JSON, wrong keys, wrong counts, refusals, empty
content, 429/5xx, timeouts, malformed and cut bodies) through the loopback server and the real openai client into
crome's parsers. Every reply must end as parsed or as a reject with a reason: 0 crashes, 0 silent defaults."""
import json
from collections import Counter
from pathlib import Path
import pytest
from loopback_server import LoopbackServer, Reply, load_replies, replay
from test_rubrics import scripted
from crome.oracle import OpenAICompatibleOracle
from crome.rubrics import Rubric, RubricFailure, llm_rubric
from crome.augment import rewrite_messages, verify_messages
from crome.llm_rewrite import VERDICT_FORMAT, parse_rewrite, parse_verdict_reply, rewrite_format

CORPUS = load_replies(Path(__file__).parent / 'fixtures' / 'oracle_replies.jsonl')
NAMES = ['correctness', 'relevance', 'completeness', 'clarity', 'safety']
ATTRS = json.dumps({'attributes': [{'name': n, 'description': f'How well the answer does on {n}.', 'weight': 0.2} for n in NAMES]})
PAIR = ('How do I bake bread?', 'Mix flour and water, knead, rest and bake at 220 C.', 'Buy some.')


def outcome(entry: dict, srv, o) -> tuple[str, str | None]:
    "('parsed', weight_sum or None) or ('reject', reason) for one corpus entry, through the real client and crome's parsers."
    kind, reply = entry['kind'], Reply(**entry['reply'])
    if kind in ('attributes', 'elements', 'review'):
        srv.script = scripted(**{'attributes': (ATTRS,), kind: (reply,)} if kind != 'attributes' else {'attributes': (reply,)})
        r = llm_rubric(o, *PAIR)
        if isinstance(r, RubricFailure): return 'reject', str(r)
        assert isinstance(r, Rubric) and len(r.attributes) == 5
        if kind == 'review' and r.review.startswith('failed'): return 'reject', r.review
        return 'parsed', r.weight_sum  # a rescaled rubric says so (None: its weights summed to 1 +- 0.1)
    srv.script = lambda call: reply
    if kind == 'rewrite': msgs, fmt = rewrite_messages(PAIR[0], PAIR[1], 'correctness', 'degrade'), rewrite_format(PAIR[1])
    else: msgs, fmt = verify_messages(PAIR[0], PAIR[1], PAIR[2], 'correctness', 'degrade'), VERDICT_FORMAT
    c = o.complete(msgs, response_format=fmt)
    assert srv.requests[-1]['response_format']['json_schema']['name'] == fmt['json_schema']['name']
    if not c.ok: return 'reject', c.error
    if c.truncated: return 'reject', 'truncated by max_tokens'
    got, why = parse_rewrite(c.text) if kind == 'rewrite' else parse_verdict_reply(c.text)
    return ('parsed', None) if got is not None else ('reject', why)


def test_corpus_is_realistic_and_covers_the_faults():
    kinds = Counter(e['kind'] for e in CORPUS)
    faults = {e['reply'].get('fault') for e in CORPUS}
    assert len(CORPUS) >= 70 and min(kinds.values()) >= 5
    json_replies = Counter(e['kind'] for e in CORPUS if e['id'].startswith(('rw_json', 'vf_json')))
    assert json_replies['rewrite'] >= 8 and json_replies['verify'] >= 8  # structured replies, good and bad
    assert {'status', 'timeout', 'malformed', 'cut_body', 'drop', 'truncated', 'refusal', None} <= faults
    assert {e['reply'].get('status') for e in CORPUS} >= {429, 500, 503}


def test_every_replayed_reply_is_parsed_or_a_reject_with_a_reason(tmp_path):
    results = {}
    with LoopbackServer() as srv:
        o = OpenAICompatibleOracle(srv.url, srv.model, cache=False, progress=False, timeout=0.5, max_retries=1,
                                   backoff=0.001, max_backoff=0.01)
        for e in CORPUS:
            try: results[e['id']] = outcome(e, srv, o)
            except Exception as ex:  # a crash is a failure of this test, reported with the entry
                results[e['id']] = ('crash', f'{type(ex).__name__}: {ex}')
    crashes = {k: v for k, v in results.items() if v[0] == 'crash'}
    assert not crashes, crashes
    wrong = {e['id']: (e['expect'], results[e['id']]) for e in CORPUS if results[e['id']][0] != e['expect']}
    assert not wrong, wrong  # a reject that parsed would be a silent default; a parse that was rejected, a lost pair
    assert all(reason for kind, reason in results.values() if kind == 'reject')
    reasons = {k: v[1] for k, v in results.items()}
    assert 'refusal' in reasons['attr_refusal_field'] and 'RateLimitError' in reasons['attr_429']
    assert 'max_tokens' in reasons['attr_truncated_length'] and 'APITimeoutError' in reasons['attr_timeout']
    assert 'expected exactly 5 attributes' in reasons['attr_four'] and 'positive number' in reasons['attr_weights_strings']
    assert (reasons['attr_weights_1_5'], reasons['attr_percent'], reasons['attr_renorm']) == (1.5, 100.0, None)
    assert 'once each' in reasons['el_keyed_repeated']  # a repeated key collapses: safety is missing
    assert reasons['rw_json_wrong_key'].startswith('reply JSON has no "rewrite" key')
    assert reasons['rw_json_empty'].startswith('reply JSON does not follow the schema: rewrite')
    assert reasons['vf_json_maybe'].startswith('reply JSON does not follow the schema: verdict')
    assert reasons['vf_json_broken'].startswith('the reply starts a JSON object that does not parse')
    assert reasons['vf_json_cut'] == 'truncated by max_tokens' and reasons['rw_no_tags'].startswith('neither')
