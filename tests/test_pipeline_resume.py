"""Resuming a pipeline run (issue 14): a fully cached resume never contacts the oracle and a partial one checks it
before any work; oracle transport settings (timeout, retries, ...) do not redo finished stages while settings that
change answers do; stage outputs are written atomically. The oracle is the loopback server, stopped after the first
run, so its URL is dead for every resume. A stage killed midway is redone by the next run whatever its config, and
config.yaml names a new config only once the metrics are its own."""
import copy, json, shutil
import pytest
import yaml
from loopback_server import LoopbackServer
from crome.oracle import OracleError
from crome.pipeline import PENDING_CONFIG, run, load_config, make_oracle, _load, _save
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
    assert not (tmp_path / 'new' / 'config.yaml').exists() and not (tmp_path / 'new' / PENDING_CONFIG).exists()
    assert [p.name for p in (tmp_path / 'new').rglob('*')] == ['.crome-run']  # no oracle cache before the check


def test_the_pipeline_and_crome_report_build_the_same_report(resumable, tmp_path, monkeypatch):
    "A run in its default folder (out_dir unset): the pipeline's report shows the config `crome report` reads."
    d, cfg = resumable
    monkeypatch.chdir(tmp_path); (tmp_path / 'runs').mkdir(); d.rename(tmp_path / 'runs' / cfg['name'])
    (tmp_path / 'runs' / cfg['name'] / 'report.html').unlink()
    res = run(dict(cfg, out_dir=None))  # runs/r: every stage up to date but the report
    assert 'report' in res['ran'], res['ran']
    built = res['report'].read_bytes()
    assert main(['report', f"runs/{cfg['name']}"]) == 0 and res['report'].read_bytes() == built


def test_a_first_run_killed_midway_has_a_config_to_report_and_finish(finished, tmp_path, monkeypatch):
    import crome.pipeline as P
    _, cfg = finished
    def stop(cfg): raise KeyboardInterrupt
    monkeypatch.setattr(P, 'build_data', stop)
    with pytest.raises(KeyboardInterrupt): run(dict(cfg, out_dir=str(tmp_path / 'new')), **{'train.recipes': ['vanilla']})
    saved = {f: yaml.safe_load((tmp_path / 'new' / f).read_text())['train']['recipes'] for f in ('config.yaml',
                                                                                                 PENDING_CONFIG)}
    assert saved == {'config.yaml': ['vanilla'], PENDING_CONFIG: ['vanilla']}  # no metrics yet: nothing to mislabel


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
    conf = (d / 'config.yaml').read_bytes()
    with pytest.raises(OracleError): run(cfg, **{key: value})  # the rubrics must be redone: the dead oracle is checked
    assert json.loads((d / 'state.json').read_text()) == state
    assert (d / 'config.yaml').read_bytes() == conf and not (d / PENDING_CONFIG).exists()  # still the metrics' config


def test_a_stage_killed_midway_is_redone_and_config_yaml_waits_for_the_metrics(resumable, monkeypatch):
    "Config A finished; config B (tau 0) killed inside filter:crome, after writing its rows; config A again."
    import crome.pipeline as P
    d, a = resumable
    kept = lambda: _load(d / 'filter' / 'crome.parquet')['kept']
    tau = lambda name: yaml.safe_load((d / name).read_text())['filter']['tau']
    kept_a, real = kept(), P.filter_sets
    def killed(*args, **kw): real(*args, **kw); raise KeyboardInterrupt
    monkeypatch.setattr(P, 'filter_sets', killed)
    with pytest.raises(KeyboardInterrupt): run(a, **{'filter.tau': 0.0})  # keeps every neutral pair: other rows
    assert kept() != kept_a and 'filter:crome' not in json.loads((d / 'state.json').read_text())  # B's rows, no key
    assert (tau('config.yaml'), tau(PENDING_CONFIG)) == (0.2, 0.0)  # config.yaml still names the metrics' config
    from crome.unfinished import PENDING, run_status
    st = run_status(d, yaml.safe_load((d / 'config.yaml').read_text()))  # as `crome report` calls it
    assert PENDING is PENDING_CONFIG and st['pending'] == str(d / PENDING_CONFIG)  # B is unfinished, not A finished
    assert st['command'].startswith(f'crome run {d / PENDING_CONFIG}')
    monkeypatch.setattr(P, 'filter_sets', real)
    res = run(a)  # the filter stage is redone (it was skipped, and Crome retrained on B's rows under A's name)
    assert 'filter:crome' in res['ran'] and res['reasons']['filter:crome'] == 'new' and kept() == kept_a
    assert 'model:crome-s0' not in res['ran']  # A's rows again: A's model stands
    assert tau('config.yaml') == 0.2 and not (d / PENDING_CONFIG).exists()


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
