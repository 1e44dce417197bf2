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


def test_a_model_has_one_colour_in_the_shift_robustness_and_curves_figures(tmp_path, monkeypatch):
    "The curves used to be drawn in folder-name order (crome-s0 first), the shifts in the evaluation's (vanilla-s0)."
    import crome.report as R
    cfg = dict(CFG, train=dict(CFG['train'], seeds=[0, 1]))
    ms = ['vanilla-s0', 'crome-s0', 'vanilla-s1', 'crome-s1']
    d = _run(tmp_path, ['data', 'augment', *(f'model:{m}' for m in ms), 'evaluate'], models=ms, metrics=True)
    (d / 'config.yaml').write_text(yaml.safe_dump(cfg))
    for m in ms: (d / 'models' / m / 'history.json').write_text(json.dumps([0.7, 0.5]))
    pd.DataFrame([dict(model=m, edit=e, edit_kind=k, attribute=None, direction=None, pair_id=i, side='chosen',
                       reward_before=float(i), reward_after=i + .1, shift=.1, flipped=False)
                  for m in ('vanilla-s0', 'crome-s0') for e, k in (('rot13', 'spurious'), ('typos', 'spurious'))
                  for i in range(3)]).to_csv(d / 'metrics/reward_shifts.csv', index=False)
    pd.DataFrame([dict(model=m, side='both', transformation='typos', n=3, accuracy=.6, clean_accuracy=.7, drop=.1)
                  for m in ('vanilla-s0', 'crome-s0')]).to_csv(d / 'metrics/robustness.csv', index=False)
    figs, fig_html = {}, R._fig_html
    monkeypatch.setattr(R, '_fig_html', lambda fig, div_id: figs.setdefault(div_id, fig) and fig_html(fig, div_id))
    build_report(d, cfg)

    def colour(t): return t.marker.color if t.type == 'bar' else t.line.color
    def colours(div): return {t.name: colour(t) for t in figs[div].data if t.name in ms}
    shifts, rob, curves = colours('fig-shifts'), colours('fig-robustness'), colours('fig-curves')
    assert set(shifts) == {'vanilla-s0', 'crome-s0'} and set(curves) == set(ms)
    assert shifts == rob == {m: curves[m] for m in shifts} and len(set(curves.values())) == 4
    assert list(curves) == ['vanilla-s0', 'crome-s0', 'crome-s1', 'vanilla-s1']  # the rest by name
