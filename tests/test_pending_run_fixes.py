"""A run of a new config killed midway (config.pending.yaml beside config.yaml): an evaluate killed inside leaves the
last finished run's metrics whole (they match config.yaml); crome compare does not pair a folder whose data/ its
metrics did not score; the inspector loads each model as its own folder was trained; a first run killed early is
not described as having a finished run's metrics. Then (a reread): the report's notes describe config.yaml's run only;
an earlier run's models are not the pending run's; a run killed inside evaluate is paired by metrics/scored.json,
which also names the models retrained since; the backbone is keyed by what its loaders read; one rule for a model
folder's mode."""
import html, json, os, re, shutil
import pandas as pd
import pytest
import yaml
import crome.pipeline as P
from crome.pipeline import PENDING_CONFIG, run
from crome.unfinished import run_status, unfinished_html
from conftest import tiny_backbone


def cfg(root, out, bb):
    return {'name': 'r', 'out_dir': str(root / out), 'data': {'n': 40},
            'train': {'steps': 3, 'batch_size': 16, 'backbone': str(bb), 'max_length': 32},
            'evaluate': {'max_pairs': 4, 'robustness': False, 'reward_shifts': False}}


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    "A finished tiny run A (frozen, seed 0, recipes vanilla rrm crome) and a maker of configs beside it."
    root = tmp_path_factory.mktemp('pending')
    bb = tiny_backbone(root)
    run(cfg(root, 'A', bb))
    return root, lambda out: cfg(root, out, bb)


def _copy(root, out):
    shutil.copytree(root / 'A', root / out)
    return root / out


def _stop(*a, **k): raise KeyboardInterrupt


def test_an_evaluate_killed_midway_leaves_the_last_runs_metrics_whole(finished, monkeypatch):
    root, make = finished
    d = _copy(root, 'killed_eval')
    acc_a = (d / 'metrics/accuracy.csv').read_bytes()
    import crome.examples as E
    monkeypatch.setattr(E, 'edit_examples', _stop)  # after accuracy and verdicts, before the end of evaluate
    with pytest.raises(KeyboardInterrupt): run(make('killed_eval'), **{'train.steps': 7, 'train.recipes': ['vanilla']})
    assert (d / 'metrics/accuracy.csv').read_bytes() == acc_a  # A's numbers, as config.yaml (A's) says
    assert yaml.safe_load((d / 'config.yaml').read_text())['train']['steps'] == 3 and (d / PENDING_CONFIG).exists()
    st = run_status(d)
    box = html.unescape(unfinished_html(st))
    assert st['metrics'] is True and "the metrics below are the last finished run's" in box
    assert 'no evaluation yet' not in box
    monkeypatch.undo()
    res = run(d / PENDING_CONFIG)  # finishing the pending run: its metrics, then its config
    assert set(pd.read_csv(d / 'metrics/accuracy.csv').model) == {'vanilla-s0', 'length', 'cosine'}
    assert yaml.safe_load((d / 'config.yaml').read_text())['train']['steps'] == 7 and 'evaluate' in res['ran']
    assert not (d / PENDING_CONFIG).exists() and not (d / 'metrics.tmp').exists() and run_status(d) is None


def test_compare_does_not_pair_a_folder_whose_data_its_metrics_did_not_score(finished, monkeypatch):
    from crome.compare import compare_runs
    root, make = finished
    d = _copy(root, 'reseeded')
    run(make('reseeded'), seed=1)  # finished on seed 1's splits
    monkeypatch.setattr(P, 'train_one', _stop)
    with pytest.raises(KeyboardInterrupt): run(make('reseeded'), seed=0)  # A's splits in data/, killed in training
    t = compare_runs([root / 'A', d], n_boot=200)
    other = t[t.run == str(d)]
    assert len(other) and other['diff'].isna().all() and other.accuracy.notna().all()
    assert other.verdict.str.match(r'unfinished run \(config.pending.yaml\): its data/val_\w+.parquet is not what its '
                                   r'metrics scored; not paired$').all(), other.verdict.tolist()
    assert set(other.settings) == {'seed=1'}  # config.yaml: the config of its metrics
    same = compare_runs([root / 'A', _copy(root, 'copy')], n_boot=200)  # a finished folder: paired as before
    assert same[same.run.str.endswith('copy')]['diff'].eq(0).all()


def test_inspect_loads_each_model_as_its_own_folder_was_trained(finished, monkeypatch):
    from crome.frozen import FrozenRewardModel
    from crome.inspect import run_models
    from crome.model import RewardModel
    root, make = finished
    d = _copy(root, 'mixed')
    real, done = P.train_one, []
    def once(*a, **k):
        if done: raise KeyboardInterrupt
        done.append(1); return real(*a, **k)
    monkeypatch.setattr(P, 'train_one', once)
    with pytest.raises(KeyboardInterrupt): run(make('mixed'), **{'train.mode': 'finetune'})  # after vanilla-s0
    ms = run_models(d)  # config.yaml still says frozen (A's)
    assert isinstance(ms['vanilla-s0'], RewardModel) and isinstance(ms['crome-s0'], FrozenRewardModel)
    assert ms['vanilla-s0'].max_length == 32
    (d / 'models/empty').mkdir()
    with pytest.raises(FileNotFoundError, match=r'models/empty: not a crome model folder \(expected head'):
        run_models(d, ['empty'])


def test_a_first_run_killed_early_has_no_finished_run(finished, monkeypatch):
    root, make = finished
    monkeypatch.setattr(P, 'train_one', _stop)
    with pytest.raises(KeyboardInterrupt): run(make('first'))
    st = run_status(root / 'first')
    box = html.unescape(unfinished_html(st))
    assert st['metrics'] is False and st['pending'] and 'no run has finished here yet' in box
    assert "last finished run's" not in box


def test_the_report_notes_describe_config_yaml_run_beside_a_pending_one(finished, monkeypatch):
    "A finished on seed 0, B (train.seeds [1]) killed in its first model stage: the notes keep A's budget and seeds."
    from crome.report import build_report
    root, make = finished
    d = _copy(root, 'notes')
    monkeypatch.setattr(P, 'train_one', _stop)
    with pytest.raises(KeyboardInterrupt): run(make('notes'), **{'train.seeds': [1]})
    page = build_report(d).read_text()
    notes = re.search(r'<p>data: [^<]*</p>', page).group(0)
    assert '3 steps x 16 pairs per recipe; seeds [0]' in notes and 'not trained yet' not in notes, notes
    assert 'models not trained yet: vanilla-s1, rrm-s1, crome-s1' in page  # the pending run's, in the red box


def test_an_earlier_runs_models_are_not_the_pending_runs(finished, monkeypatch):
    "A trained every model with 3 steps; B (4 steps) killed in model:vanilla-s0 retrains them all, so reached none."
    root, make = finished
    d, pend = _copy(root, 'unreached'), root / 'unreached' / PENDING_CONFIG
    monkeypatch.setattr(P, 'train_one', _stop)
    with pytest.raises(KeyboardInterrupt): run(make('unreached'), **{'train.steps': 4})
    st = run_status(d)
    assert st['models'] == ['vanilla-s0'] and st['unreached'] == ['rrm-s0', 'crome-s0'], st
    assert ("models trained by an earlier run (kept where the unfinished run's settings match, else retrained when it "
            'reaches them): rrm-s0, crome-s0') in html.unescape(unfinished_html(st))
    t = pend.stat().st_mtime - 5; os.utime(pend, (t, t))  # B started 5 s ago; resumed now, killed after vanilla-s0
    monkeypatch.undo(); real, done = P.train_one, []
    def once(*a, **k):
        if done: raise KeyboardInterrupt
        done.append(1); return real(*a, **k)
    monkeypatch.setattr(P, 'train_one', once)
    with pytest.raises(KeyboardInterrupt): run(make('unreached'), **{'train.steps': 4})
    assert pend.stat().st_mtime == t  # a resume of the same config keeps the file, and its time
    st = run_status(d)
    assert st['models'] == ['rrm-s0'] and st['unreached'] == ['crome-s0'], st  # vanilla-s0: B's own


def test_a_run_killed_inside_evaluate_with_its_data_untouched_is_paired(finished, monkeypatch):
    from crome.compare import compare_runs
    import crome.examples as E
    root, make = finished
    d = _copy(root, 'eval_paired')
    monkeypatch.setattr(E, 'edit_examples', _stop)
    with pytest.raises(KeyboardInterrupt): run(make('eval_paired'), **{'train.steps': 4})
    assert 'evaluate' not in json.loads((d / 'state.json').read_text()) and (d / PENDING_CONFIG).exists()
    t = compare_runs([root / 'A', d], n_boot=200)
    other = t[t.run == str(d)]
    assert len(other) and other['diff'].eq(0).all() and not other.verdict.str.contains('not paired').any(), \
        other.verdict.tolist()
    splits = {f'data/{p.name}' for p in (d / 'data').glob('*.parquet')} - {'data/train.parquet'}
    rec = json.loads((d / 'metrics/scored.json').read_text())  # A's evaluate recorded what it scored: splits, models
    assert {k for k in rec if k.startswith('data/')} == splits
    scored = {k.removeprefix('model:') for k in rec if k.startswith('model:')}
    assert scored and set(run_status(d)['stale']) == scored  # all retrained (steps 3 -> 4) after A's metrics


def test_the_backbone_is_keyed_by_what_its_loaders_read(tmp_path, monkeypatch):
    import crome.frozen as FZ
    import crome.stages as S
    from crome.pipeline import backbone_fingerprint, load_config
    bb = tmp_path / 'bb'; bb.mkdir(); (bb / 'config.json').write_text('{}')
    w = bb / 'model.safetensors'; w.write_bytes(b'a' * 64)
    c = load_config({'train': {'backbone': str(bb)}})
    monkeypatch.setattr(S, 'HASH_MAX', 16)  # as if the weights were over 256 MiB (they were keyed by their mtime)
    k = backbone_fingerprint(c)
    (bb / '.git').mkdir(); (bb / '.git/index').write_text('git status'); (bb / 'onnx').mkdir()
    (bb / 'onnx/model.onnx').write_bytes(b'an export no loader reads')
    assert backbone_fingerprint(c) == k  # nothing the loaders read changed: no model retrains
    st = w.stat(); w.write_bytes(b'b' * 64); os.utime(w, ns=(st.st_atime_ns, st.st_mtime_ns))  # cp -p other weights
    FZ._FILE_HASHES.clear()  # a new process (the next crome run): its per-process memo is empty
    assert backbone_fingerprint(c) != k


def test_one_rule_for_a_model_folders_mode(tmp_path):
    from crome.cli import model_mode
    from crome.inspect import run_models, saved_mode
    m = tmp_path / 'run/models/both'; (m / 'model').mkdir(parents=True); (m / 'head.safetensors').write_bytes(b'')
    for f in (lambda: saved_mode(m), lambda: model_mode(m), lambda: run_models(tmp_path / 'run', ['both'])):
        with pytest.raises(ValueError, match='holds both a frozen head and a fine-tuned model, and no crome_train.json'):
            f()
    (m / 'model').rmdir(); (m / 'model').write_text('')  # a stray file named model is no fine-tuned model
    assert saved_mode(m) == model_mode(m) == 'frozen'
    with pytest.raises(ValueError, match=r'holds a frozen model, not a finetune one: pass --mode frozen'):
        model_mode(m, 'finetune')


def test_config_yaml_is_replaced_in_one_place():
    import inspect
    assert inspect.getsource(P.run).count("os.replace(pending, d / 'config.yaml')") == 1
