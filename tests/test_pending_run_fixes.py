"""A run of a new config killed midway (config.pending.yaml beside config.yaml): an evaluate killed inside leaves the
last finished run's metrics whole (they match config.yaml); crome compare does not pair a folder whose data/ its
metrics did not score; the inspector loads each model as its own folder was trained; a first run killed early is
not described as having a finished run's metrics."""
import html, shutil
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
    with pytest.raises(FileNotFoundError, match=r'models/empty: no model to load \(saved modes: \[\]'):
        run_models(d, ['empty'])


def test_a_first_run_killed_early_has_no_finished_run(finished, monkeypatch):
    root, make = finished
    monkeypatch.setattr(P, 'train_one', _stop)
    with pytest.raises(KeyboardInterrupt): run(make('first'))
    st = run_status(root / 'first')
    box = html.unescape(unfinished_html(st))
    assert st['metrics'] is False and st['pending'] and 'no run has finished here yet' in box
    assert "last finished run's" not in box
