"""Pipeline: configs fail clearly; a run killed midway resumes without redoing finished stages; the CLI works."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
import yaml
from crome.pipeline import load_config, ConfigError, run
from crome.cli import main
from conftest import needs_data

ROOT = Path(__file__).resolve().parents[1]
SMALL = {'data': {'n': 200}, 'train': {'steps': 20, 'batch_size': 32}, 'evaluate': {'max_pairs': 8}}


@pytest.mark.parametrize('bad,where', [
    ({'train': {'stepz': 3}}, 'train.stepz'), ({'filter': {'tau': 1.5}}, 'filter.tau'), ({'train': {'recipes': ['magic']}}, 'train.recipes.0'),
    ({'data': {'cues': [{'kind': 'signoff', 'rho': 2}]}}, 'data.cues.0.rho'), ({'name': ''}, 'name'), ({'train': {'mode': 'gpu'}}, 'train.mode')])
def test_bad_config_names_the_key(bad, where):
    with pytest.raises(ConfigError) as e: load_config(bad)
    assert where in str(e.value)


def test_cli_exit_code_2_for_bad_config(tmp_path, capsys):
    p = tmp_path / 'c.yaml'; p.write_text('train: [1, 2')
    assert main(['run', str(p)]) == 2 and 'not valid YAML' in capsys.readouterr().err
    assert main(['run', str(tmp_path / 'none.yaml')]) == 2
    p.write_text(yaml.safe_dump({'filter': {'tau': -1}}))
    assert main(['run', str(p)]) == 2 and 'filter.tau' in capsys.readouterr().err


@pytest.mark.slow
def test_killed_run_resumes_without_redoing_stages(tmp_path):
    cfg = dict(SMALL, name='kill', out_dir=str(tmp_path / 'run'))
    cfg_path = tmp_path / 'cfg.yaml'; cfg_path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_WAIT_POLICY='PASSIVE', TQDM_DISABLE='1')
    proc = subprocess.Popen([str(Path(sys.executable).parent / 'crome'), 'run', str(cfg_path)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = tmp_path / 'run' / 'state.json'
    t0 = time.time()
    while time.time() - t0 < 240:  # kill as soon as the filter stage has finished (models for the other recipes pending)
        if state.exists() and {'filter:crome', 'filter:rrm'} <= set(json.loads(state.read_text() or '{}')): break
        if proc.poll() is not None: break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    done_before = set(json.loads(state.read_text()))
    assert {'data', 'augment:crome', 'augment:rrm', 'filter:crome', 'filter:rrm'} <= done_before and 'report' not in done_before, done_before
    res = run(cfg_path)
    assert done_before <= set(res['skipped']), (done_before, res['skipped'])  # nothing finished is redone
    assert not (set(res['ran']) & done_before) and 'report' in res['ran'] and res['report'].exists()
    assert set(res['accuracy']['recipe']) == {'vanilla', 'rrm', 'crome', 'length', 'cosine'}
    html = res['report'].read_text()
    assert 'Counterfactual fidelity' in html and 'spurious_change_rate' in html  # crome.verify.fidelity_table
    assert not any(s.startswith('val') for s in res['accuracy']['split'])  # validation splits are not test splits
    iv, a = res['intervals'].set_index(['split', 'recipe']), res['accuracy']  # from metrics/verdicts.csv
    a = a[(a.subset == 'all') & (a.split != 'flip_share')].groupby(['split', 'recipe']).accuracy.mean()
    assert set(iv.index) == set(a.index) and all(abs(iv.accuracy[k] - a[k]) < 1e-9 for k in a.index)
    assert (iv.low <= iv.accuracy).all() and (iv.accuracy <= iv.high).all()
    assert iv.verdict.notna().sum() == 4 * 2  # rrm, crome and the baselines length, cosine vs vanilla, on 2 splits
    assert 'Intervals and differences from vanilla' in html
    from crome.cli import format_results
    assert 'paired differences from vanilla' in format_results(res)
    again = run(cfg_path)
    assert again['ran'] == []


class _Fixed:
    "A scorer with fixed rewards per answer text."
    def __init__(self, r): self.r = r
    def score(self, prompts, responses): return __import__('numpy').array([self.r[x] for x in responses], dtype=float)


def test_accuracy_excludes_ties():  # issue 16 bug 2: tie rows (label 0.5) were counted as preferences
    from datasets import Dataset
    from crome.pipeline import accuracy_table
    ds = Dataset.from_list([dict(prompt='q', chosen='a', rejected='b', label=1.0), dict(prompt='q', chosen='c', rejected='d', label=0.5),
                            dict(prompt='q', chosen='e', rejected='f', label=0.5)])
    t = accuracy_table({'m-s0': _Fixed({'a': 1, 'b': 0, 'c': 0, 'd': 1, 'e': 0, 'f': 1})}, {'eval': ds})
    assert (t.n[0], t.ties[0], t.accuracy[0]) == (1, 2, 1.0)


def test_finetune_keeps_the_batch_size(tmp_path, monkeypatch):  # issue 16 bug 8: silently capped at 16
    import crome.train, crome.pipeline as P
    seen = {}
    class M: history, train_rows = [], 0
    monkeypatch.setattr(crome.train, 'train_reward_model', lambda ds, recipe, config: seen.setdefault('c', config) and M())
    cfg = load_config({'train': {'mode': 'finetune', 'batch_size': 64, 'lambda_tie': 0}})
    P.train_one(cfg, 'crome', [], 0, tmp_path, None)
    assert seen['c'].batch_size == 64 and seen['c'].lambda_tie == 0


@pytest.mark.slow
def test_reused_folder_reports_only_the_current_config(tmp_path):
    "A run folder reused with another config: no stale split, metric, rubric file or model reaches the results."
    from crome.demo import make_demo
    from crome.schema import response_text, text_of
    out = str(tmp_path / 'run')
    run(dict(SMALL, name='a', out_dir=out))  # demo: train / clean / reversed; vanilla, rrm, crome (rubrics stage)
    src = tmp_path / 'pairs.jsonl'
    src.write_text(''.join(json.dumps(dict(prompt=text_of(r['prompt']) + ' (jsonl)', chosen=response_text(r['chosen']),
                                           rejected=response_text(r['rejected']))) + '\n'
                           for r in make_demo(200, seed=5)['train']))
    res = run({'name': 'b', 'out_dir': out, 'data': {'source': str(src), 'n': 200},
               'train': {'steps': 20, 'batch_size': 32, 'recipes': ['vanilla', 'rrm']},
               'evaluate': {'max_pairs': 8, 'robustness': False, 'reward_shifts': False}})
    assert set(res['accuracy'].split) == {'test'}  # not the demo's clean / reversed / flip_share
    assert set(res['validation'].split) == {'validation'}  # not the demo's val_clean / val_reversed either
    assert sorted(p.name for p in (Path(out) / 'data').glob('*.parquet')) == ['test.parquet', 'train.parquet',
                                                                            'validation.parquet']
    d = Path(out)
    assert not (d / 'metrics/robustness.csv').exists() and not (d / 'metrics/reward_shifts.csv').exists()
    from crome.run_state import _load
    train_prompts = set(_load(d / 'data/train.parquet')['prompt'])
    rrm = _load(d / 'augment/rrm.parquet')
    assert set(rrm['prompt']) <= train_prompts  # augmented from this run's train split, not the old rubrics file
    html = res['report'].read_text()
    for old in ('Robustness to meaning-preserving', 'Counterfactual fidelity', 'crome: causal',
                'Reward shifts under', 'crome-s0'):
        assert old not in html, old
    assert '"name":"rrm: rrm"' in html  # the keep rates of this config's one augmented set (rrm), not crome's
    prov = json.loads((d / 'metrics/provenance.json').read_text())
    assert prov['packages']['torch'] and prov['device']
    assert 'Validation splits (choose settings on these)' in html
    pw = res['power'].iloc[0]  # real data: can the test pairs rank recipes, against the untrained baselines?
    assert pw.split == 'test' and set(pw.baselines) == {'length', 'cosine'} and set(pw.above) <= {'vanilla', 'rrm'}
    assert ('test: can rank recipes' if pw.has_power else 'test: cannot rank recipes') in html
    res = run({'name': 'b', 'out_dir': out, 'data': {'source': str(src), 'n': 200, 'val_fraction': 0},
               'train': {'steps': 20, 'batch_size': 32, 'recipes': ['vanilla', 'rrm']},
               'evaluate': {'max_pairs': 8, 'robustness': False, 'reward_shifts': False}})
    assert res['validation'] is None and res['val_intervals'] is None  # no validation split: none reported
    assert not any((d / 'metrics' / f).exists() for f in ('validation.csv', 'val_verdicts.csv'))
    assert not (d / 'data/validation.parquet').exists() and 'Validation splits' not in res['report'].read_text()


@needs_data
def test_build_data_reads_public_sets_by_name(tmp_path):
    "data.source hh-rlhf / pandalm: the set's pairs, preferences only, capped at n and split by prompt."
    import warnings
    from crome.config import load_config
    from crome.stages import build_data
    for name in ('hh-rlhf', 'pandalm'):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            parts = build_data(load_config({'out_dir': str(tmp_path / name), 'data': {'source': name, 'n': 200}}))
        assert set(parts) == {'train', 'validation', 'test'} and sum(map(len, parts.values())) == 200, name
        for a, b in (('train', 'test'), ('train', 'validation'), ('validation', 'test')):
            assert not set(parts[a]['prompt']) & set(parts[b]['prompt']), (name, a, b)
        assert all(set(p['label']) == {1.0} for p in parts.values())
        assert any('105 of 999 rows are not preferences' in str(x.message) for x in w) == (name == 'pandalm')
