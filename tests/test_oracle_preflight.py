"""A dead, non-HTTP, misspelt or wrong-model oracle is a configuration error found before any work, in seconds,
naming its cause; two servers with the same model name never share cached answers; a reply cut by max_tokens is
asked again on a rerun."""
import socket, threading, time
import pytest
from loopback_server import LoopbackServer, Reply
from crome.oracle import OpenAICompatibleOracle, OracleError, oracle_from_env, check_url


def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


class NotHttp:
    "A TCP server that greets like SSH and hangs up: a port that does not speak HTTP."
    def __enter__(self):
        self.sock = socket.socket(); self.sock.bind(('127.0.0.1', 0)); self.sock.listen(8)
        self.port, self.stop = self.sock.getsockname()[1], False
        def serve():
            while not self.stop:
                try: c, _ = self.sock.accept()
                except OSError: return
                try: c.recv(4096); c.sendall(b'SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n'); time.sleep(0.3)
                finally: c.close()
        threading.Thread(target=serve, daemon=True).start()
        return self
    def __exit__(self, *a): self.stop = True; self.sock.close()


def preflight_error(url, model='m', **kw) -> tuple[str, float]:
    t0 = time.perf_counter()
    o = OpenAICompatibleOracle(url, model, cache=False, progress=False, **kw)
    with pytest.raises(OracleError) as e: o.preflight()
    return str(e.value), time.perf_counter() - t0


def test_refused_port_fails_fast_naming_the_cause():
    msg, dt = preflight_error(f'http://127.0.0.1:{free_port()}/v1')
    assert dt < 10 and 'cannot be reached' in msg and 'Connect' in msg and 'refused' in msg.lower(), msg


def test_non_http_port_fails_fast():
    with NotHttp() as s:
        msg, dt = preflight_error(f'http://127.0.0.1:{s.port}/v1')
    assert dt < 10 and 'cannot be reached' in msg and 'Protocol' in msg, msg


def test_bad_scheme_and_missing_host_are_errors_at_construction():
    for url in ('ftp://127.0.0.1:8000/v1', '127.0.0.1:8000/v1', 'http:///v1'):
        with pytest.raises(ValueError, match='oracle URL'): OpenAICompatibleOracle(url, 'm', cache=False)
    assert check_url('http://h:1/v1/') == 'http://h:1/v1'
    with pytest.raises(ValueError, match='model name'): OpenAICompatibleOracle('http://h:1/v1', '', cache=False)


def test_wrong_model_and_wrong_key_fail_fast(monkeypatch):
    monkeypatch.setenv('CROME_TEST_KEY', 'sk-wrong')
    with LoopbackServer(served=['qwen2.5-7b'], api_key='sk-right') as srv:
        msg, dt = preflight_error(srv.url, 'qwen2.5-7b', api_key_env='CROME_TEST_KEY')
        assert dt < 10 and 'authentication' in msg and 'CROME_TEST_KEY' in msg and 'sk-' not in msg, msg
        monkeypatch.setenv('CROME_TEST_KEY', 'sk-right')
        msg, dt = preflight_error(srv.url, 'llama', api_key_env='CROME_TEST_KEY')
        assert dt < 10 and "does not serve model 'llama'" in msg and 'qwen2.5-7b' in msg, msg
        ok = OpenAICompatibleOracle(srv.url, 'qwen2.5-7b', api_key_env='CROME_TEST_KEY', cache=False).preflight()
        assert ok['served'] == ['qwen2.5-7b'] and srv.count == 0  # the preflight asks no completion


def test_env_model_without_url_is_an_error():
    with pytest.raises(ValueError, match='CROME_ORACLE_MODEL set but CROME_ORACLE_URL is not'):
        oracle_from_env(env={'CROME_ORACLE_MODEL': 'qwen'})
    with pytest.raises(ValueError, match='CROME_ORACLE_KEY_ENV'): oracle_from_env(env={'CROME_ORACLE_KEY_ENV': 'K'})
    o = oracle_from_env(cache=False, env={'CROME_ORACLE_URL': 'http://h:1/v1', 'CROME_ORACLE_TIMEOUT': '2',
                                          'CROME_ORACLE_MAX_RETRIES': '1'})
    assert o.timeout == 2.0 and o.max_retries == 1


def test_two_servers_with_one_model_name_do_not_share_answers(tmp_path):
    with LoopbackServer(lambda c: Reply(text='from A')) as a, LoopbackServer(lambda c: Reply(text='from B')) as b:
        oa = OpenAICompatibleOracle(a.url, 'default', cache=tmp_path / 'c', progress=False)
        ob = OpenAICompatibleOracle(b.url, 'default', cache=tmp_path / 'c', progress=False)  # the same cache folder
        assert oa.complete('hi').text == 'from A' and ob.complete('hi').text == 'from B'
        assert oa.complete('hi').cached and ob.complete('hi').text == 'from B' and a.count == b.count == 1
        # generation settings are part of the key too
        assert not oa.complete('hi', max_tokens=7).cached and not oa.complete('hi', temperature=0.5).cached
        fmt = {'type': 'json_object'}
        assert not oa.complete('hi', response_format=fmt).cached and oa.complete('hi', response_format=fmt).cached
        assert oa.cache_key('hi') != OpenAICompatibleOracle(a.url, 'default', cache=False, structured='text').cache_key('hi')


def test_truncated_reply_is_retried_on_rerun(tmp_path):
    def script(call):  # cut on the first attempt, complete on the second
        return Reply(fault='truncated', text='{"verdict": "pa') if call.attempt == 0 else Reply(text='{"verdict": "pass"}')
    with LoopbackServer(script) as srv:
        o = OpenAICompatibleOracle(srv.url, 'm', cache=tmp_path / 'c', progress=False)
        first = o.complete('judge')
        assert first.ok and first.truncated and len(o.cache) == 0
        second = OpenAICompatibleOracle(srv.url, 'm', cache=tmp_path / 'c', progress=False).complete('judge')
        assert not second.cached and not second.truncated and second.text == '{"verdict": "pass"}' and srv.count == 2
        assert OpenAICompatibleOracle(srv.url, 'm', cache=tmp_path / 'c', progress=False).complete('judge').cached


def test_connection_error_names_its_root_cause():
    o = OpenAICompatibleOracle(f'http://127.0.0.1:{free_port()}/v1', 'm', max_retries=0, cache=False, progress=False)
    c = o.complete('x')
    assert not c.ok and 'APIConnectionError' in c.error and 'cause: ConnectionRefusedError' in c.error, c.error
