"""The oracle as the CLI and run config see it: configuration mistakes exit 2 naming what is missing, an oracle that
cannot answer exits 3 within seconds naming the cause, a run in which every oracle call failed exits 3, outputs are
written atomically, and requests are not logged unless --verbose."""
import json, logging, socket, time
import pytest
from loopback_server import LoopbackServer, Reply
from crome.cli import main
from crome.pipeline import ConfigError, load_config, make_oracle
from crome.oracle import NoOracle, OpenAICompatibleOracle


def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture
def pairs(tmp_path):
    p = tmp_path / 'pairs.jsonl'
    p.write_text('\n'.join(json.dumps({'prompt': f'Question {i}: how do I bake bread?', 'chosen': 'Mix flour and water, knead, '
                                       'rest and bake at 220 C for 30 minutes.', 'rejected': 'Buy some.'}) for i in range(3)))
    return p


def augment(pairs, tmp_path, *flags):
    return main(['augment', '--data', str(pairs), '--out', str(tmp_path / 'out' / 'aug.parquet'), '--kinds', 'causal',
                 '--cache', str(tmp_path / 'cache'), *flags])


@pytest.mark.parametrize('flags,what', [(['--oracle-model', 'qwen'], 'model set but no url'),
                                         (['--oracle-key-env', 'K'], 'api_key_env set but no url'),
                                         (['--oracle-url', 'ftp://127.0.0.1:21/v1', '--oracle-model', 'm'], 'http:// or https://'),
                                         (['--oracle-url', 'http://127.0.0.1:1/v1'], 'needs both url and model')])
def test_config_mistakes_exit_2_naming_what_is_missing(pairs, tmp_path, capsys, flags, what):
    assert augment(pairs, tmp_path, *flags) == 2
    assert what in capsys.readouterr().err
    assert not (tmp_path / 'out' / 'aug.parquet').exists()


def test_dead_or_wrong_oracle_exits_3_within_seconds(pairs, tmp_path, capsys):
    t0 = time.perf_counter()
    assert augment(pairs, tmp_path, '--oracle-url', f'http://127.0.0.1:{free_port()}/v1', '--oracle-model', 'm') == 3
    err = capsys.readouterr().err
    assert time.perf_counter() - t0 < 10 and 'cannot be reached' in err and 'refused' in err.lower(), err
    with LoopbackServer(served=['qwen']) as srv:
        assert augment(pairs, tmp_path, '--oracle-url', srv.url, '--oracle-model', 'llama') == 3
        assert "does not serve model 'llama'" in capsys.readouterr().err and srv.count == 0


def test_every_call_failing_exits_3_and_outputs_are_atomic(pairs, tmp_path, capsys):
    with LoopbackServer(lambda c: Reply(fault='status', status=400)) as srv:  # answers the models list, rejects every call
        assert augment(pairs, tmp_path, '--oracle-url', srv.url, '--oracle-model', srv.model, '--oracle-max-retries', '0') == 3
    out = capsys.readouterr()
    assert 'every oracle call failed' in out.err
    files = sorted(p.name for p in (tmp_path / 'out').iterdir())
    assert files == ['aug.parquet', 'aug_rejects.csv']  # written (rejects recorded), no temporary file left behind


def test_run_config_and_flags_reach_the_oracle(tmp_path):
    with LoopbackServer() as srv:
        cfg = load_config(None, **{'oracle.url': srv.url, 'oracle.model': srv.model, 'oracle.timeout': 2.5,
                                   'oracle.max_retries': 1, 'oracle.backoff': 0.1, 'oracle.max_tokens': 64,
                                   'oracle.structured': 'json_object'})
        o = make_oracle(cfg, tmp_path / 'c')
    assert isinstance(o, OpenAICompatibleOracle) and (o.timeout, o.max_retries, o.backoff) == (2.5, 1, 0.1)
    assert o.params['max_tokens'] == 64 and o.structured == 'json_object'
    assert isinstance(make_oracle(load_config(None), tmp_path / 'c'), NoOracle)
    with pytest.raises(ConfigError, match='transformers backend needs model'):
        load_config(None, **{'oracle.backend': 'transformers'})
    with pytest.raises(FileNotFoundError, match='local oracle model folder'):
        make_oracle(load_config(None, **{'oracle.backend': 'transformers', 'oracle.model': str(tmp_path / 'nope')}), tmp_path)


def test_requests_are_logged_only_with_verbose(pairs, tmp_path, caplog):  # review item 1: openai logs through httpx2
    from crome.cli_args import HTTP_LOGGERS
    assert set(HTTP_LOGGERS) >= {'httpx', 'httpx2', 'openai'}
    for verbose in (False, True):
        with LoopbackServer() as srv, caplog.at_level(logging.INFO):
            caplog.clear()
            augment(pairs, tmp_path / str(verbose), '--oracle-url', srv.url, '--oracle-model', srv.model,
                    *(['--verbose'] if verbose else []))
            assert srv.count > 0
        http = [r for r in caplog.records if r.name in HTTP_LOGGERS and 'HTTP Request' in r.getMessage()]
        assert bool(http) == verbose, [r.getMessage() for r in http][:3]
    assert all(logging.getLogger(n).level == logging.INFO for n in HTTP_LOGGERS)
    assert main(['data', '--n', '20', '--out', str(tmp_path / 'd')]) == 0  # the next command is quiet again
    assert all(logging.getLogger(n).level == logging.WARNING for n in HTTP_LOGGERS)


def test_oracle_from_the_environment(pairs, tmp_path, capsys, caplog, monkeypatch):  # review item 9
    with LoopbackServer() as srv:
        monkeypatch.setenv('CROME_ORACLE_URL', srv.url); monkeypatch.setenv('CROME_ORACLE_MODEL', srv.model)
        with caplog.at_level(logging.INFO): assert augment(pairs, tmp_path) == 3  # echo replies: no rubric parses
        assert srv.count > 0 and 'no rubric succeeded' in capsys.readouterr().err and 'oracle settings from the environment: CROME_ORACLE_MODEL, CROME_ORACLE_URL' in caplog.text
        n = srv.count  # a flag wins over its variable: a model the server does not serve is refused by name
        assert augment(pairs, tmp_path, '--oracle-model', 'nope') == 3
        assert "does not serve model 'nope'" in capsys.readouterr().err and srv.count == n
    monkeypatch.delenv('CROME_ORACLE_URL')
    assert augment(pairs, tmp_path) == 2
    assert 'oracle (set by CROME_ORACLE_MODEL): Value error, model set but no url' in capsys.readouterr().err


def test_unparseable_replies_fail_in_the_bar_and_exit_3(pairs, tmp_path, capsys):  # review item 10
    with LoopbackServer(lambda c: Reply(text='hello world')) as srv:  # replies arrive, none is a rubric
        assert augment(pairs, tmp_path, '--oracle-url', srv.url, '--oracle-model', srv.model) == 3
        n = srv.count
    out, err = capsys.readouterr()
    assert 'ok=0, failed=3' in err and 'ok=3' not in err, err
    said = f'oracle: {n} calls, {n} answered (0 from the cache); {n} requests, 0 retries, 0 errors; '
    assert n == 6 and said in out, out  # what was asked, printed also when the run fails
    assert 'crome augment: no rubric succeeded (3 of 3 failed' in err and 'aug_rejects.csv' in err


def test_single_pair_augments_unless_a_kind_borrows(tmp_path, capsys):  # review item 3
    one = tmp_path / 'one.jsonl'
    one.write_text(json.dumps({'prompt': 'Name a fruit that is red.', 'chosen': 'A strawberry.', 'rejected': 'A banana.'}))
    with LoopbackServer() as srv:
        assert main(['augment', '--data', str(one), '--out', str(tmp_path / 'a.parquet'), '--oracle-url', srv.url,
                     '--oracle-model', srv.model, '--cache', str(tmp_path / 'c')]) == 2  # default kinds: causal iqn
        assert srv.count == 0  # refused before the oracle was asked anything
    err = capsys.readouterr().err
    assert f'{one}: --kinds iqn need at least 2 pairs' in err and '<data>' not in err, err
    assert main(['augment', '--data', str(one), '--out', str(tmp_path / 'a.parquet'), '--kinds', 'causal']) == 0


def test_interrupt_is_one_line_and_exit_130(monkeypatch, capsys):  # review item 11
    import crome.pipeline as P
    def stop(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(P, 'run', stop)
    assert main(['demo', '--n', '20']) == 130
    err = capsys.readouterr().err
    assert err == 'crome demo: interrupted; run the same command again to resume (finished stages are kept)\n'


def test_run_exits_3_when_no_reply_was_usable(tmp_path, capsys):  # review item 10, `crome run` side
    import pandas as pd
    from crome.cli import _run_exit
    (tmp_path / 'rubrics').mkdir(); (tmp_path / 'augment').mkdir()
    pd.DataFrame({'rubric_error': ['attributes: no JSON'] * 2}).to_parquet(tmp_path / 'rubrics/train.parquet')
    pd.DataFrame({'kind': ['original', 'original', 'iqn']}).to_parquet(tmp_path / 'augment/crome.parquet')
    pd.DataFrame([{'kind': 'causal', 'reason': 'rubric_failed'}] * 2).to_csv(tmp_path / 'augment/crome_rejects.csv')
    online = load_config(None, **{'oracle.url': 'http://127.0.0.1:1/v1', 'oracle.model': 'm'})
    assert _run_exit(online, tmp_path) == 3 and 'no rubric succeeded (2 of 2' in capsys.readouterr().err
    assert _run_exit(load_config(None), tmp_path) == 0  # offline: the rules made what they could


def test_progress_bar_counts_ok_and_failed(capsys):
    script = lambda call: Reply(fault='status', status=400) if call.last_user == 'bad' else Reply(text='fine')
    with LoopbackServer(script) as srv:
        o = OpenAICompatibleOracle(srv.url, srv.model, cache=False, progress=True, max_concurrency=1)
        res = o.complete_many(['a', 'bad', 'b'], desc='judging')
    err = capsys.readouterr().err
    assert [r.ok for r in res] == [True, False, True] and o.stats['ok'] == 2 and o.stats['errors'] == 1
    assert 'judging' in err and 'ok=2' in err and 'failed=1' in err, err


@pytest.mark.slow
def test_crome_run_exits_3_when_every_oracle_call_failed(tmp_path, capsys):
    cfg = tmp_path / 'run.yaml'
    with LoopbackServer(lambda c: Reply(fault='status', status=400)) as srv:
        cfg.write_text(f"name: allfail\nout_dir: {tmp_path / 'run'}\ndata: {{n: 24}}\n"
                       "train: {steps: 2, batch_size: 8, recipes: [vanilla, crome]}\n"
                       "evaluate: {max_pairs: 4, robustness: false, reward_shifts: false}\n"
                       f"oracle: {{url: '{srv.url}', model: {srv.model}, max_retries: 0}}\n")
        assert main(['run', str(cfg)]) == 3
    assert 'every oracle call failed' in capsys.readouterr().err
    # the next, offline run in the same process does not inherit that oracle's failures
    assert main(['run', str(cfg), '--set', 'oracle.url=null', 'oracle.model=null']) == 0


def test_run_exit_reads_the_oracle_of_its_own_run(tmp_path, capsys):
    "`crome run --vary` checks each run's oracle (`run(...)['oracle']`), not whichever one was built last."
    from types import SimpleNamespace
    from crome.cli import _run_exit
    cfg, failed = load_config(None), SimpleNamespace(offline=False, stats={'calls': 3, 'ok': 0})
    assert _run_exit(cfg, tmp_path, failed) == 3 and 'every oracle call failed' in capsys.readouterr().err
    assert _run_exit(cfg, tmp_path, SimpleNamespace(offline=False, stats={'calls': 3, 'ok': 1})) == 0
    assert _run_exit(cfg, tmp_path, None) == 0  # the run built no oracle
