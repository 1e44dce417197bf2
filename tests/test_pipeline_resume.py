"""Resuming a pipeline run (issue 14): a fully cached resume never contacts the oracle and a partial one checks it
before any work; oracle transport settings (timeout, retries, ...) do not redo finished stages while settings that
change answers do; stage outputs are written atomically. The oracle is the loopback server, stopped after the first
run, so its URL is dead for every resume."""
import copy, json, shutil
import pytest
import yaml
from loopback_server import LoopbackServer
from crome.oracle import OracleError
from crome.pipeline import run, load_config, make_oracle, _save
from crome.cli import main
from conftest import tiny_backbone


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    "A finished tiny run (rubrics and augmentation asked the loopback oracle), with the server stopped since."
    root = tmp_path_factory.mktemp('resume')
    bb = tiny_backbone(root)
    with LoopbackServer() as srv:
        cfg = {'name': 'r', 'out_dir': str(root / 'run'), 'data': {'n': 40},
               'train': {'steps': 3, 'batch_size': 16, 'backbone': str(bb), 'max_length': 32},
               'evaluate': {'max_pairs': 4, 'robustness': False, 'reward_shifts': False},
               'oracle': {'url': srv.url, 'model': srv.model, 'max_retries': 0}}
        first = run(copy.deepcopy(cfg))
        asked = srv.count
    assert asked > 0 and {'data', 'rubrics', 'augment:crome', 'augment:rrm', 'report'} <= set(first['ran'])
    return root / 'run', cfg


@pytest.fixture
def resumable(finished, tmp_path):
    "A copy of the finished run and its config (pointing at the copy)."
    src, cfg = finished
    shutil.copytree(src, tmp_path / 'run')
    return tmp_path / 'run', dict(copy.deepcopy(cfg), out_dir=str(tmp_path / 'run'))


def test_fully_cached_resume_never_contacts_the_oracle(resumable, tmp_path, capsys):
    d, cfg = resumable
    res = run(cfg)  # the oracle's URL is dead: a preflight would fail
    assert res['ran'] == [] and {'rubrics', 'augment:crome'} <= set(res['skipped'])
    assert getattr(make_oracle, 'last', None) is None  # not built at all: the CLI's exit code reads no stale oracle
    p = tmp_path / 'cfg.yaml'; p.write_text(yaml.safe_dump(cfg))
    assert main(['run', str(p)]) == 3  # the echo oracle's replies are no rubrics: a run that used none says so (exit 3)
    out = capsys.readouterr()
    assert 'none (all up to date)' in out.out and 'no rubric succeeded' in out.err and 'cannot be reached' not in out.err


def test_partial_resume_checks_the_oracle_before_any_work(resumable, tmp_path, capsys):
    d, cfg = resumable
    (d / 'augment' / 'crome.parquet').unlink()  # the augment stage must run again
    state = (d / 'state.json').read_bytes()
    with pytest.raises(OracleError, match='cannot be reached'): run(cfg)
    assert (d / 'state.json').read_bytes() == state  # nothing ran before the check
    p = tmp_path / 'cfg.yaml'; p.write_text(yaml.safe_dump(cfg))
    assert main(['run', str(p)]) == 3 and 'cannot be reached' in capsys.readouterr().err


def test_new_run_checks_the_oracle_before_the_data_stage(finished, tmp_path):
    _, cfg = finished
    with pytest.raises(OracleError, match='cannot be reached'): run(dict(cfg, out_dir=str(tmp_path / 'new')))
    assert not (tmp_path / 'new' / 'data').exists() and not (tmp_path / 'new' / 'state.json').exists()


def test_a_run_that_needs_no_oracle_does_not_check_it(finished, tmp_path):
    _, cfg = finished
    res = run(dict(cfg, out_dir=str(tmp_path / 'rrm')), **{'train.recipes': ['vanilla', 'rrm']})  # no LLM work
    assert 'augment:rrm' in res['ran'] and 'rubrics' not in res['ran'] and 'augment:crome' not in res['ran']


def test_transport_settings_do_not_redo_stages(resumable, monkeypatch):
    d, cfg = resumable
    monkeypatch.setenv('CROME_TEST_KEY', 'sk-test')
    transport = {'oracle.timeout': 3.0, 'oracle.max_retries': 2, 'oracle.backoff': 0.1, 'oracle.max_concurrency': 2,
                 'oracle.batch_size': 1, 'oracle.api_key_env': 'CROME_TEST_KEY'}
    assert run(cfg, **transport)['ran'] == []
    assert run(cfg, **{'oracle.preflight': False})['ran'] == []


@pytest.mark.parametrize('key,value', [('oracle.max_tokens', 64), ('oracle.temperature', 0.7),
                                       ('oracle.structured', 'text'), ('oracle.model', 'another-model')])
def test_settings_that_change_answers_redo_the_oracle_stages(resumable, key, value):
    d, cfg = resumable
    state = json.loads((d / 'state.json').read_text())
    with pytest.raises(OracleError): run(cfg, **{key: value})  # the rubrics must be redone: the dead oracle is checked
    assert json.loads((d / 'state.json').read_text()) == state


def test_dropping_a_recipe_or_naming_a_default_retrains_nothing(resumable, capsys, tmp_path):
    d, cfg = resumable  # the oracle is dead: a stage that needed it would fail its preflight
    assert run(cfg, **{'train.lambda_tie': 1.0})['ran'] == []  # Crome's default, and vanilla reads no tie weight
    res = run(cfg, **{'train.recipes': ['vanilla', 'crome']})  # RRM dropped: Crome's sets and models are kept
    assert res['ran'] == ['evaluate', 'report'] and res['reasons']['evaluate'] == 'input dropped: model:rrm-s0'
    res = run(cfg, **{'train.lambda_tie': 0.5})  # the tie weight trains RRM and Crome again, not vanilla
    assert sorted(res['ran']) == ['evaluate', 'model:crome-s0', 'model:rrm-s0', 'report'], res['ran']
    assert res['reasons']['model:crome-s0'] == 'settings: lambda_tie 1.0 -> 0.5'
    p = tmp_path / 'cfg.yaml'; p.write_text(yaml.safe_dump(dict(cfg, train=dict(cfg['train'], lambda_tie=2.0))))
    main(['run', str(p)])
    assert '  model:crome-s0 again: settings: lambda_tie 0.5 -> 2.0' in capsys.readouterr().out.splitlines()


def test_load_config_leaves_the_callers_dict_alone():
    cfg = {'oracle': {'url': 'http://localhost:1/v1', 'model': 'm'}}
    load_config(cfg, **{'oracle.timeout': 2.0})
    assert cfg == {'oracle': {'url': 'http://localhost:1/v1', 'model': 'm'}}


def test_stage_outputs_are_written_atomically(tmp_path):
    from datasets import Dataset
    path = tmp_path / 'data' / 'train.parquet'; path.parent.mkdir()
    _save(Dataset.from_list([{'prompt': 'q', 'chosen': 'a', 'rejected': 'b'}]), path)
    before = path.read_bytes()

    class Dies:
        "A dataset whose writer dies halfway through the file."
        def to_parquet(self, p):
            with open(p, 'wb') as f: f.write(b'PAR1 half a file')
            raise KeyboardInterrupt('killed mid-write')
    with pytest.raises(KeyboardInterrupt): _save(Dies(), path)
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == ['train.parquet']


def test_config_names_stay_importable_from_pipeline():
    import crome.config as C, crome.pipeline as P
    for name in ('RunConfig', 'DataConfig', 'OracleConfig', 'AugmentConfig', 'FilterConfig', 'TrainSettings', 'EvalConfig',
                 'CueConfig', 'ConfigError', 'load_config'):
        assert getattr(P, name) is getattr(C, name), name
