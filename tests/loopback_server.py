"""A loopback OpenAI-compatible chat-completion server for tests, notebooks and benchmarks.

A real HTTP server (``http.server.ThreadingHTTPServer``) on 127.0.0.1, port chosen by the OS, in a
daemon thread. It serves ``POST /v1/chat/completions`` in the OpenAI schema (``id``, ``object``,
``created``, ``model``, ``choices[0].message``, ``finish_reason``, ``usage``) and ``GET /v1/models``.

Scriptable: ``script(call) -> Reply | str`` decides every answer. ``call`` carries the parsed request
body, its global index ``n`` and ``attempt`` (how many times this exact body was seen before, 0 first),
so a script can fail the first attempt of every request and succeed on the retry. Faults (``Reply.fault``):

| fault | what the client sees |
|---|---|
| ``None`` | a normal 200 answer (``Reply.delay`` adds latency) |
| ``'status'`` | HTTP ``Reply.status`` (429, 500, 503, 400, ...) with an OpenAI-style error body (+ ``Retry-After``) |
| ``'timeout'`` | nothing for ``Reply.delay`` seconds (set it above the client timeout), then a normal answer |
| ``'malformed'`` | 200 with a body that is not JSON |
| ``'cut_body'`` | 200 whose body stops halfway (Content-Length promises more), connection closed |
| ``'drop'`` | connection closed without any response |
| ``'truncated'`` | 200, content cut to ``Reply.text`` with ``finish_reason='length'`` |
| ``'refusal'`` | 200, ``content: null`` and ``refusal: Reply.text`` |

Like a real server it can also check what it is asked: ``served`` (the model names it serves; others get
a 404 ``model_not_found``), ``api_key`` (requests without ``Authorization: Bearer <key>`` get a 401, the models
list included) and ``formats`` (the structured-output kinds it accepts: ``json_schema``, ``json_object`` as
``response_format`` types, ``regex`` as vLLM's ``structured_outputs``; anything else gets a 400 naming it, or
``format_status``: 422 like a FastAPI-validated server).

The server records every chat request (``requests``), counts requests in flight and keeps the maximum
(``max_in_flight``): tests use it to prove the client's concurrency limit.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

__all__ = ['Reply', 'Call', 'LoopbackServer', 'echo', 'fail_first', 'FAULTS', 'load_replies', 'replay']

FAULTS = (None, 'status', 'timeout', 'malformed', 'cut_body', 'drop', 'truncated', 'refusal')


@dataclass
class Reply:
    "What the server answers to one request."
    text: str = ''  # message content (or refusal text for fault='refusal')
    status: int = 200  # HTTP status for fault='status'
    fault: str | None = None  # one of FAULTS
    delay: float = 0.0  # seconds to wait before answering (on top of the server's base latency)
    retry_after: float | None = None  # Retry-After header for fault='status'
    finish_reason: str = 'stop'


@dataclass
class Call:
    "One request as the script sees it."
    body: dict  # parsed JSON request
    n: int  # 0-based index of this request among all chat requests
    attempt: int  # times this exact body was seen before (0 = first)

    @property
    def messages(self) -> list: return self.body.get('messages', [])

    @property
    def last_user(self) -> str:
        "Content of the last user message ('' if none)."
        us = [m.get('content', '') for m in self.messages if m.get('role') == 'user']
        return us[-1] if us else ''


def echo(call: Call) -> Reply:
    "Default script: answer 'echo: <last user message>'."
    return Reply(text=f'echo: {call.last_user}')


def fail_first(fault: str = 'status', status: int = 500, delay: float = 0.0, then: Callable = echo, times: int = 1):
    "A script that injects `fault` into the first `times` attempts of every distinct request, then defers to `then`."
    def script(call: Call) -> Reply:
        if call.attempt < times: return Reply(fault=fault, status=status, delay=delay, text='partial answ')
        return then(call)
    return script


def _ntok(s: str) -> int: return max(1, len(s.split())) if s else 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        "Stay quiet when a client hangs up first (a client-side timeout); report anything else."
        import sys
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)): return
        super().handle_error(request, client_address)


class LoopbackServer:
    "An OpenAI-compatible test server on 127.0.0.1 (use as a context manager or call start/stop)."

    def __init__(self, script: Callable[[Call], Reply | str] = echo,  # decides each answer
                 latency: float = 0.0,  # base seconds added to every chat request
                 model: str = 'loopback-model',  # model name reported when the request has none
                 served: list[str] | None = None,  # model names served (None: any name is answered)
                 api_key: str | None = None,  # the key clients must send (None: no check)
                 formats: tuple = ('json_schema', 'json_object', 'regex'),  # structured-output kinds accepted
                 format_status: int = 400):  # HTTP status of a rejected structured-output kind (422: FastAPI)
        self.script, self.latency, self.model, self.format_status = script, latency, model, format_status
        self.served, self.api_key, self.formats = served, api_key, tuple(formats)
        self.requests: list[dict] = []  # every chat request body, in arrival order
        self.headers: list[dict] = []  # their HTTP headers (names lower-cased)
        self.in_flight = self.max_in_flight = 0
        self._seen = Counter()
        self._lock = threading.Lock()
        self._httpd = None

    # --- lifecycle
    def start(self) -> 'LoopbackServer':
        self._httpd = _Server(('127.0.0.1', 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd: self._httpd.shutdown(); self._httpd.server_close(); self._httpd = None

    def __enter__(self): return self.start()
    def __exit__(self, *a): self.stop()

    @property
    def port(self) -> int: return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        "The base_url to give an OpenAI client."
        return f'http://127.0.0.1:{self.port}/v1'

    @property
    def count(self) -> int: return len(self.requests)

    def reset(self):
        "Forget recorded requests, attempts and the in-flight maximum."
        with self._lock: self.requests.clear(); self.headers.clear(); self._seen.clear(); self.max_in_flight = self.in_flight

    def counts_by_user(self) -> Counter:
        "How many requests each last-user-message received."
        return Counter(Call(b, 0, 0).last_user for b in self.requests)

    # --- request handling
    def _handler(self):
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'
            disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid the 40 ms delayed-ACK stall
            def log_message(self, *a): pass

            def _send(self, status, obj=None, raw=None, headers=None):
                data = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                for k, v in (headers or {}).items(): self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _unauthorised(self) -> bool:
                if srv.api_key is None or self.headers.get('Authorization') == f'Bearer {srv.api_key}': return False
                self._send(401, {'error': {'message': 'Incorrect API key provided', 'type': 'invalid_request_error',
                                           'code': 'invalid_api_key'}})
                return True

            def _refused(self, body: dict) -> bool:
                "A 404 for a model not served, a 400 for a structured-output kind not accepted."
                if srv.served is not None and body.get('model') not in srv.served:
                    self._send(404, {'error': {'message': f"The model `{body.get('model')}` does not exist.",
                                               'type': 'invalid_request_error', 'code': 'model_not_found'}})
                    return True
                kind = (body.get('response_format') or {}).get('type')
                if kind not in (None, 'text') and kind not in srv.formats:
                    msg = f"response_format type '{kind}' is not supported by this server"
                    self._send(srv.format_status, {'error': {'message': msg, 'type': 'invalid_request_error', 'code': None}})
                    return True
                if 'structured_outputs' in body and 'regex' not in srv.formats:
                    self._send(srv.format_status, {'error': {'message': 'unknown field structured_outputs',
                                                             'type': 'invalid_request_error'}})
                    return True
                return False

            def do_GET(self):
                if self._unauthorised(): return
                if self.path.rstrip('/') == '/v1/models':
                    names = srv.served if srv.served is not None else [srv.model]
                    return self._send(200, {'object': 'list', 'data': [{'id': m, 'object': 'model', 'owned_by': 'loopback'} for m in names]})
                self._send(404, {'error': {'message': f'no route {self.path}', 'type': 'not_found'}})

            def do_POST(self):
                n = int(self.headers.get('Content-Length', 0))
                raw = self.rfile.read(n)
                if self._unauthorised(): return
                if self.path.rstrip('/') != '/v1/chat/completions':
                    return self._send(404, {'error': {'message': f'no route {self.path}', 'type': 'not_found'}})
                try: body = json.loads(raw)
                except ValueError: return self._send(400, {'error': {'message': 'request body is not JSON', 'type': 'invalid_request_error'}})
                if self._refused(body): return
                key = json.dumps(body, sort_keys=True)
                with srv._lock:
                    idx = len(srv.requests); srv.requests.append(body); srv.headers.append({k.lower(): v for k, v in self.headers.items()})
                    attempt = srv._seen[key]; srv._seen[key] += 1
                    srv.in_flight += 1; srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
                try: self._answer(Call(body, idx, attempt))
                finally:
                    with srv._lock: srv.in_flight -= 1

            def _answer(self, call: Call):
                try: r = srv.script(call)
                except Exception as e:  # a bug in the script: say so loudly instead of hanging up
                    import traceback; traceback.print_exc()
                    return self._send(500, {'error': {'message': f'loopback script raised {type(e).__name__}: {e}', 'type': 'script_error'}})
                if isinstance(r, str): r = Reply(text=r)
                time.sleep(srv.latency + r.delay)
                if r.fault == 'status':
                    h = {'Retry-After': str(r.retry_after)} if r.retry_after is not None else {}
                    kind = 'rate_limit_exceeded' if r.status == 429 else 'server_error' if r.status >= 500 else 'invalid_request_error'
                    return self._send(r.status, {'error': {'message': f'injected {r.status}', 'type': kind, 'code': None}}, headers=h)
                if r.fault == 'malformed': return self._send(200, raw=b'{"id": "x", "choices": [ this is not json')
                if r.fault == 'drop':
                    self.close_connection = True
                    return
                msg = {'role': 'assistant', 'content': r.text, 'refusal': None}
                finish = r.finish_reason
                if r.fault == 'truncated': finish = 'length'
                if r.fault == 'refusal': msg = {'role': 'assistant', 'content': None, 'refusal': r.text or "I can't help with that."}
                prompt_tokens = sum(_ntok(m.get('content') or '') for m in call.messages)
                completion_tokens = _ntok(r.text)
                obj = {'id': f'chatcmpl-loop{call.n}', 'object': 'chat.completion', 'created': int(time.time()),
                       'model': call.body.get('model') or srv.model,
                       'choices': [{'index': 0, 'message': msg, 'finish_reason': finish, 'logprobs': None}],
                       'usage': {'prompt_tokens': prompt_tokens, 'completion_tokens': completion_tokens,
                                 'total_tokens': prompt_tokens + completion_tokens}}
                if r.fault == 'cut_body':
                    data = json.dumps(obj).encode()
                    self.send_response(200)
                    self.send_header('Content-Type', 'application/json')
                    self.send_header('Content-Length', str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:len(data) // 2]); self.wfile.flush()
                    self.close_connection = True
                    return
                self._send(200, obj)

        return Handler


def load_replies(path) -> list[dict]:
    "A corpus of server replies (JSONL: id, kind, expect, note, reply={Reply fields})."
    with open(path, encoding='utf-8') as f: return [json.loads(line) for line in f if line.strip()]


def replay(entry: dict, other: Callable[[Call], Reply | str] | None = None, match: Callable[[Call], bool] | None = None):
    "A script answering with the corpus `entry`'s reply (every attempt), or with `other` where `match(call)` is False."
    def script(call: Call) -> Reply | str:
        if other is not None and match is not None and not match(call): return other(call)
        return Reply(**entry['reply'])
    return script
