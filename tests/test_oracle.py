"""Oracle backends against a real loopback HTTP server: retries, concurrency limit, cache, resume, key hygiene."""
import os, subprocess, sys, textwrap, time
from pathlib import Path

import pytest

from crome.local_oracle import TransformersOracle, tiny_chat_lm
from crome.oracle import (Completion, NoOracle, OpenAICompatibleOracle, OracleCache, check_messages, is_offline,
                          oracle_from_env)

sys.path.insert(0, str(Path(__file__).parent))
from loopback_server import LoopbackServer, Reply, fail_first  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def make(srv, tmp_path=None, **kw):
    kw.setdefault('backoff', 0.005)
    kw.setdefault('progress', False)
    kw.setdefault('cache', tmp_path / 'cache' if tmp_path is not None else False)
    return OpenAICompatibleOracle(srv.url, 'loopback-model', **kw)


def test_roundtrip_order_usage_and_cache(tmp_path):
    with LoopbackServer(latency=0.02) as srv:
        o = make(srv, tmp_path, max_concurrency=4)
        msgs = [f'question number {i}' for i in range(10)]
        res = o.complete_many(msgs)
        assert [r.text for r in res] == [f'echo: {m}' for m in msgs]
        assert all(r.ok and not r.cached and r.attempts == 1 and r.latency > 0 for r in res)
        assert res[0].usage == {'prompt_tokens': 3, 'completion_tokens': 4}
        assert o.stats['prompt_tokens'] == 30 and o.stats['completion_tokens'] == 40 and o.stats['requests'] == 10
        # the request the server saw is the OpenAI schema with our defaults
        assert srv.requests[0]['model'] == 'loopback-model' and srv.requests[0]['temperature'] == 0.0
        again = o.complete_many(msgs)
        assert srv.count == 10 and all(r.cached and r.attempts == 0 for r in again)
        assert [r.text for r in again] == [r.text for r in res] and again[0].usage == res[0].usage
        # different sampling params are a different cache entry; identical requests in one batch go out once
        o.complete_many(['dup', 'dup', 'dup'], max_tokens=7)
        assert srv.count == 11 and srv.requests[-1]['max_tokens'] == 7
        o.complete('question number 0', temperature=0.5)
        assert srv.count == 12


@pytest.mark.parametrize('fault,status', [('status', 429), ('status', 500), ('status', 503), ('timeout', 200),
                                          ('malformed', 200), ('cut_body', 200), ('drop', 200)])
def test_retries_recover_from_faults(fault, status):
    with LoopbackServer(fail_first(fault, status=status, delay=1.0 if fault == 'timeout' else 0, times=2)) as srv:
        o = make(srv, timeout=0.3, max_concurrency=3)
        t0 = time.perf_counter()
        res = o.complete_many([f'q{i}' for i in range(3)])
        assert all(r.ok for r in res), [r.error for r in res]
        assert [r.text for r in res] == ['echo: q0', 'echo: q1', 'echo: q2']
        assert all(r.attempts == 3 for r in res) and srv.count == 9
        assert o.stats['retries'] == 6 and o.stats['errors'] == 0
        assert time.perf_counter() - t0 < 5  # the timeout is hard per attempt: no waiting out the 1 s stall


def test_retry_after_is_honoured():
    with LoopbackServer(fail_first('status', status=429)) as srv:
        srv.script = lambda call: Reply(fault='status', status=429, retry_after=0.4) if call.attempt == 0 else Reply(text='ok')
        o = make(srv, backoff=0.001, max_backoff=0.01)  # Retry-After wins over max_backoff
        c = o.complete('x')
        assert c.ok and c.attempts == 2 and c.latency >= 0.4


def test_retry_after_http_date_and_bound():
    from email.utils import formatdate
    from types import SimpleNamespace as NS
    from crome.oracle import RETRY_AFTER_MAX, _retry_after
    now = float(int(time.time()))
    hdr = lambda **h: NS(response=NS(headers=h))
    assert _retry_after(hdr(**{'retry-after': formatdate(now + 42, usegmt=True)}), now=now) == 42.0
    assert _retry_after(hdr(**{'retry-after-ms': '250'})) == 0.25 and _retry_after(hdr()) == 0.0
    assert _retry_after(NS(response=None)) == 0.0 and RETRY_AFTER_MAX == 600.0


def test_content_filter_is_an_error_and_not_cached(tmp_path):
    with LoopbackServer(lambda call: Reply(text='{"rewrite": "Sure, here', finish_reason='content_filter')) as srv:
        o = make(srv, tmp_path)
        c = o.complete('q')
        assert not c.ok and c.text is None and "finish_reason='content_filter'" in c.error
        assert len(o.cache) == 0 and o.stats['errors'] == 1 and not o.complete('q').cached and srv.count == 2


def test_exhausted_retries_and_permanent_errors_are_recorded():
    with LoopbackServer(lambda call: Reply(fault='status', status=500)) as srv:
        o = make(srv, max_retries=2)
        c = o.complete('x')
        assert not c.ok and c.text is None and c.attempts == 3 and 'InternalServerError' in c.error
        assert srv.count == 3 and o.stats['errors'] == 1
        srv.script = lambda call: Reply(fault='status', status=400)
        c = o.complete('y')
        assert c.attempts == 1 and 'BadRequestError' in c.error  # not transient: no retry


def test_refusal_truncation_and_empty(tmp_path):
    def script(call):
        return {'refuse': Reply(fault='refusal', text='I cannot help with that.'),
                'cut': Reply(fault='truncated', text='half an ans'),
                'empty': Reply(text='')}[call.last_user]
    with LoopbackServer(script) as srv:
        o = make(srv, tmp_path)
        ref, cut, empty = o.complete_many(['refuse', 'cut', 'empty'])
        assert ref.error == 'refusal: I cannot help with that.' and ref.text is None
        assert cut.ok and cut.truncated and cut.text == 'half an ans'
        assert not empty.ok and empty.error.startswith('empty response')
        assert len(o.cache) == 0 and o.stats['truncated'] == 1  # failures and cut replies are not cached
        again = o.complete_many(['refuse', 'cut', 'empty'])
        assert srv.count == 6 and not any(c.cached for c in again)  # a rerun asks again, the cut reply included


@pytest.mark.parametrize('limit', [1, 3, 8])
def test_concurrency_never_exceeds_limit(limit):
    # retries included: every request fails once with a 503 first
    with LoopbackServer(fail_first('status', status=503), latency=0.03) as srv:
        o = make(srv, max_concurrency=limit)
        res = o.complete_many([f'item {i}' for i in range(3 * limit + 2)])
        assert all(r.ok for r in res)
        assert srv.max_in_flight == limit  # reached, and never exceeded


KILL_SCRIPT = textwrap.dedent('''
    import sys; sys.path.insert(0, {root!r})
    from crome.oracle import OpenAICompatibleOracle
    o = OpenAICompatibleOracle({url!r}, 'loopback-model', api_key_env='CROME_TEST_KEY', max_concurrency=4,
                               cache={cache!r}, progress=False)
    o.complete_many([f'item {{i}}' for i in range(40)])
    print('FINISHED')
''')


def test_killed_run_resumes_without_repeats_or_losses(tmp_path, monkeypatch):
    secret = 'sk-loopback-SECRET-4f9a2c7e'
    monkeypatch.setenv('CROME_TEST_KEY', secret)
    run_dir = tmp_path / 'run'
    cache_dir = run_dir / 'oracle_cache'
    items = [f'item {i}' for i in range(40)]
    with LoopbackServer(latency=0.1) as srv:
        code = KILL_SCRIPT.format(root=str(ROOT), url=srv.url, cache=str(cache_dir))
        proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=run_dir.parent)
        t0 = time.time()
        while srv.count < 16 and time.time() - t0 < 60 and proc.poll() is None: time.sleep(0.01)
        proc.kill(); out, err = proc.communicate()
        assert b'FINISHED' not in out, 'the run finished before it was killed'
        assert srv.count >= 16, err.decode()[-2000:]
        first = srv.counts_by_user()
        assert srv.headers[0]['authorization'] == f'Bearer {secret}'  # the key was really used

        o = OpenAICompatibleOracle(srv.url, 'loopback-model', api_key_env='CROME_TEST_KEY', max_concurrency=4,
                                   cache=cache_dir, progress=False)
        done_before = {m for m in items if o.cache_key(m) in o.cache}
        assert 8 <= len(done_before) < 40
        srv.reset()
        res = o.complete_many(items)
        second = srv.counts_by_user()
    assert [r.text for r in res] == [f'echo: {m}' for m in items]  # nothing lost
    assert all(r.cached for r, m in zip(res, items) if m in done_before)
    assert not (set(second) & done_before)  # 0 repeated requests for completed items
    assert set(second) == set(items) - done_before and max(second.values()) == 1
    assert all(first[m] == 1 for m in done_before)
    # the API key is in no file the run wrote (cache included)
    files = [p for p in run_dir.rglob('*') if p.is_file()]
    assert files and not [p for p in files if secret.encode() in p.read_bytes()]
    assert secret not in repr(o) and secret not in str(o.stats)


def test_key_env_and_messages_are_checked(monkeypatch):
    monkeypatch.delenv('CROME_MISSING_KEY', raising=False)
    with pytest.raises(ValueError, match='CROME_MISSING_KEY'):
        OpenAICompatibleOracle('http://127.0.0.1:9/v1', 'm', api_key_env='CROME_MISSING_KEY', cache=False)
    assert check_messages('hi') == [{'role': 'user', 'content': 'hi'}]
    for bad, msg in [([], 'non-empty'), ([{'role': 'user'}], 'message 0'), ([{'role': 'bot', 'content': 'x'}], 'unknown role'),
                     ([{'role': 'user', 'content': 3}], 'must be a string')]:
        with pytest.raises(ValueError, match=msg): check_messages(bad)
    with pytest.raises(ValueError, match='max_concurrency'):
        OpenAICompatibleOracle('http://127.0.0.1:9/v1', 'm', max_concurrency=0, cache=False)


def test_connection_refused_is_an_error_not_a_crash():
    o = OpenAICompatibleOracle('http://127.0.0.1:9/v1', 'm', max_retries=1, backoff=0.001, cache=False, progress=False)
    c = o.complete('x')
    assert not c.ok and 'APIConnectionError' in c.error and c.attempts == 2


def test_cache_key_and_values(tmp_path):
    k = OracleCache.key('openai', 'm', [{'role': 'user', 'content': 'a'}], {'temperature': 0.0})
    assert k == OracleCache.key('openai', 'm', [{'role': 'user', 'content': 'a'}], {'temperature': 0.0})
    assert k != OracleCache.key('openai', 'm2', [{'role': 'user', 'content': 'a'}], {'temperature': 0.0})
    assert k != OracleCache.key('transformers', 'm', [{'role': 'user', 'content': 'a'}], {'temperature': 0.0})
    assert k != OracleCache.key('openai', 'm', [{'role': 'user', 'content': 'a'}], {'temperature': 0.1})
    c = OracleCache(tmp_path / 'c')
    c.set(k, {'text': 'é', 'usage': {}, 'finish_reason': 'stop'})
    assert OracleCache(tmp_path / 'c').get(k)['text'] == 'é' and len(c) == 1


def test_no_oracle_and_env_factory(monkeypatch):
    n = NoOracle()
    assert is_offline(n) and is_offline(None)
    res = n.complete_many(['a', 'b'])
    assert all(not r.ok and r.error.startswith('offline') for r in res)
    assert isinstance(oracle_from_env(env={}), NoOracle)
    o = oracle_from_env(cache=False, env={'CROME_ORACLE_URL': 'http://127.0.0.1:9/v1', 'CROME_ORACLE_MODEL': 'qwen',
                                          'CROME_ORACLE_CONCURRENCY': '3'})
    assert isinstance(o, OpenAICompatibleOracle) and o.model == 'qwen' and o.max_concurrency == 3 and not is_offline(o)


def test_transformers_oracle_tiny(tmp_path):
    m, tok = tiny_chat_lm(seed=1)
    o = TransformersOracle(m, tok, batch_size=2, cache=tmp_path / 'c', progress=False)
    assert o.model == 'tiny-chat-lm-1'
    msgs = ['short', 'a much longer question about something', [{'role': 'system', 'content': 'be brief'},
                                                                   {'role': 'user', 'content': 'short'}]]
    res = o.complete_many(msgs, max_tokens=5)
    assert all(r.ok and r.finish_reason in ('length', 'stop') for r in res)
    assert all(1 <= r.usage['completion_tokens'] <= 5 for r in res) and res[1].usage['prompt_tokens'] > res[0].usage['prompt_tokens']
    # batched greedy == one by one greedy
    solo = TransformersOracle(m, tok, batch_size=1, cache=False, progress=False).complete('short', max_tokens=5)
    assert solo.text == res[0].text
    again = o.complete_many(msgs, max_tokens=5)  # complete replies come from the cache, cut ones are asked again
    assert [r.cached for r in again] == [not r.truncated for r in res]
    assert o.stats['requests'] == 3 + sum(r.truncated for r in res)
    s1 = o.complete('short', max_tokens=5, temperature=1.0, seed=3)
    s2 = TransformersOracle(m, tok, cache=False, progress=False).complete('short', max_tokens=5, temperature=1.0, seed=3)
    assert s1.text == s2.text  # seeded sampling is reproducible
    with pytest.raises(ValueError, match='tokenizer'): TransformersOracle(m, None)
