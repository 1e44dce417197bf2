"""crome.report on unfinished runs (state.json, missing models / metrics) and byte-identical rebuilds."""
import json
import pandas as pd
import yaml
from crome.report import build_report, run_status

CFG = {'name': 'toy', 'out_dir': None, 'data': {'source': 'demo'},
       'train': {'recipes': ['vanilla', 'crome'], 'seeds': [0], 'steps': 40, 'batch_size': 32, 'mode': 'frozen'}}


def _run(tmp_path, stages, models=(), metrics=False, out_dir=None):
    d = tmp_path / 'runs' / 'toy'; d.mkdir(parents=True)
    (d / 'config.yaml').write_text(yaml.safe_dump(dict(CFG, out_dir=out_dir)))
    (d / 'state.json').write_text(json.dumps({s: {'key': 'k', 'seconds': 1.0, 'finished': '2025-01-02 03:04:05'}
                                              for s in stages}))
    for m in models: (d / 'models' / m).mkdir(parents=True)
    if metrics:
        (d / 'metrics').mkdir()
        pd.DataFrame([dict(model=f'{r}-s0', recipe=r, seed=0, split='clean', subset='all', n=10, ties=0, accuracy=a)
                      for r, a in (('vanilla', .7), ('crome', .8))]).to_csv(d / 'metrics/accuracy.csv', index=False)
    return d


def test_report_of_a_run_interrupted_after_augment_says_so_first(tmp_path):
    d = _run(tmp_path, ['data', 'rubrics', 'augment'], out_dir=str(tmp_path / 'runs' / 'toy'))
    st = run_status(d)
    assert st['finished'] == ['data', 'rubrics', 'augment'] and st['models'] == ['vanilla-s0', 'crome-s0']
    assert st['metrics'] is False and st['command'] == f"crome run {d / 'config.yaml'}"  # out_dir is this folder
    page = (build_report(d)).read_text()
    body = page[page.index('<body>'):]
    assert body.startswith('<body><h1>crome run: toy (unfinished)</h1><div class="unfinished"><h2>This run is unfinished')
    assert 'Finished stages: data, rubrics, augment.' in body
    assert 'models not trained yet: vanilla-s0, crome-s0; no evaluation yet (metrics/accuracy.csv)' in body
    assert f"Finish it with <code>crome run {d / 'config.yaml'}</code>" in body
    assert 'not trained yet (planned: 40 steps x 32 pairs per recipe)' in body
    assert '40 steps x 32 pairs per recipe;' not in body  # no claim of training that did not happen


def test_unfinished_run_elsewhere_gets_its_out_dir_and_partial_training_is_named(tmp_path):
    d = _run(tmp_path, ['data', 'augment', 'model:vanilla-s0'], models=['vanilla-s0'])  # config: runs/toy from cwd
    st = run_status(d)
    assert st['models'] == ['crome-s0'] and st['command'].endswith(f" --set out_dir={d}")
    page = build_report(d).read_text()
    assert '40 steps x 32 pairs per recipe; not trained yet: crome-s0' in page
    assert 'Still to do: models not trained yet: crome-s0; no evaluation yet' in page


def test_finished_run_has_no_banner_and_rebuilds_byte_identically(tmp_path):
    stages = ['data', 'augment', 'model:vanilla-s0', 'model:crome-s0', 'evaluate']
    d = _run(tmp_path, stages, models=['vanilla-s0', 'crome-s0'], metrics=True)
    assert run_status(d) is None
    (d / 'models/crome-s0/history.json').write_text(json.dumps([0.7, 0.5, 0.4]))  # a figure: plotly's div ids
    page = build_report(d).read_bytes()
    assert build_report(d).read_bytes() == page and b'id="fig-curves"' in page
    text = page.decode()
    assert 'This run is unfinished' not in text and '(unfinished)' not in text
    assert '40 steps x 32 pairs per recipe; seeds [0]; evaluated 2025-01-02 03:04:05' in text
    assert run_status(_run(tmp_path / 'b', stages[:-1], models=['vanilla-s0', 'crome-s0'], metrics=True)) is not None


def test_models_trained_after_the_last_evaluate_make_the_run_unfinished(tmp_path):
    "Seeds [0] -> [0, 1]: the s1 models trained, the new evaluate interrupted; accuracy.csv holds only s0's numbers."
    stages = ['data', 'augment', 'model:vanilla-s0', 'model:crome-s0', 'evaluate', 'model:vanilla-s1', 'model:crome-s1']
    d = _run(tmp_path, stages, models=['vanilla-s0', 'crome-s0', 'vanilla-s1', 'crome-s1'], metrics=True)
    (d / 'config.yaml').write_text(yaml.safe_dump(dict(CFG, train=dict(CFG['train'], seeds=[0, 1]))))
    st = run_status(d)
    assert st is not None and st['models'] == [] and st['stale'] == ['vanilla-s1', 'crome-s1']
    page = build_report(d).read_text()
    assert '(unfinished)' in page and 'This run is unfinished' in page
    assert ('models trained since the last evaluation (not in metrics/accuracy.csv, or retrained): '
            'vanilla-s1, crome-s1; the numbers below are older') in page
