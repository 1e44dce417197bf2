"""Review fixes of the report's wording against its files: the fidelity table shows rejects by reason (the spurious-change
rate is over kept pairs), keep rates of every augmented set, reward ties and flips said as they are counted,
vulnerabilities worst first by how far past a threshold, the clean-accuracy dash's colour, and a run figure drawn from
an earlier run's metrics says so."""
import contextlib, io, json
import pandas as pd
import yaml
from crome.augment_base import REJECT_COLUMNS, _reject
from crome.schema import make_record


def _fidelity_run(d):
    "One verified rewrite of o1, and rejects the verifier (spurious change) and the dedup (duplicate pair) made."
    (d / 'augment').mkdir(parents=True)
    o = make_record('Name a fruit.', 'An apple is a fruit.', 'A hammer, I think.', id='o1')
    row = make_record('Name a fruit.', 'An apple is a fruit.', 'A hammer is a fruit.', id='o1:causal:relevance:degrade',
                      source_id='o1', kind='causal', attribute='relevance', direction='degrade',
                      generator='edit:offtopic_splice')
    pd.DataFrame([o, row]).to_parquet(d / 'augment/crome.parquet')
    rj = [_reject(f'o{i}:causal:relevance:degrade', f'o{i}', 'causal', 'spurious_change', 'markdown added',
                  'relevance', 'degrade', 'edit:offtopic_splice') for i in (2, 3)]
    rj += [_reject('o4:causal:clarity:upgrade', 'o4', 'causal', 'duplicate_pair', 'kept already', 'clarity', 'upgrade',
                   'edit:borrow_requested_item')]
    pd.DataFrame(rj, columns=list(REJECT_COLUMNS)).to_csv(d / 'augment/crome_rejects.csv', index=False)
    return d


def _cells(h: str, header: str) -> list:
    "The column `header` of an HTML table, as text, one per body row."
    import re
    heads = re.findall(r'<th>(.*?)</th>', h.split('</thead>')[0])
    i = heads.index(header)
    return [re.findall(r'<td>(.*?)</td>', r)[i] for r in h.split('<tbody>')[1].split('<tr>')[1:]]


def test_fidelity_shows_each_reject_reason_and_the_rate_is_over_kept_pairs(tmp_path):
    from crome.report import HOW_TO_READ, fidelity_section
    h = fidelity_section(_fidelity_run(tmp_path))
    assert '<th>rejected</th>' not in h  # no single summed column: a reason per column
    heads = [x for x in h.split('</thead>')[0].split('<th>')[1:]]
    names = [x.split('</th>')[0] for x in heads]
    assert names[3:7] == ['applied', 'verified', 'rejected: spurious change', 'rejected: duplicate pair'], names
    # applied = verified + these: the verifier's rejects, then the duplicates of a kept pair
    assert names.index('rejected: duplicate pair') > names.index('rejected: spurious change')
    assert _cells(h, 'rejected: spurious change') == ['0', '2']  # clarity/borrow_requested_item sorts first
    assert _cells(h, 'rejected: duplicate pair') == ['1', '0'] and _cells(h, 'applied') == ['1', '3']  # dup: applied
    assert _cells(h, 'spurious_change_rate') == ['-', '0.000']  # over the one kept pair: the verifier cleared it
    how = HOW_TO_READ['fidelity']
    assert 'among the kept pairs (0 while the verifier is on' in how and 'rejected: spurious change' in how
    assert 'then rejected: duplicate pair' in how and 'not applied' not in how and 'besides its target' not in how


def _keep_rate_run(d, recipes):
    (d / 'filter').mkdir(parents=True)
    (d / 'config.yaml').write_text(yaml.safe_dump({'name': 'toy', 'train': {'recipes': recipes}}))
    pd.DataFrame([dict(set=s, kind=k, attribute=a, direction=r, rows=n, kept=kept, label=1.0, mean_p=.5,
                       keep_rate=kept / n)
                  for s, k, a, r, n, kept in (('crome', 'causal', 'relevance', 'degrade', 10, 4),
                                              ('crome', 'original', '-', '-', 10, 10),
                                              ('rrm', 'original', '-', '-', 10, 10), ('rrm', 'rrm', '-', '-', 40, 10))]
                 ).to_csv(d / 'filter/keep_rates.csv', index=False)
    return d


def test_keep_rates_show_every_augmented_set_of_the_config(tmp_path):
    from crome.report import build_report
    page = build_report(_keep_rate_run(tmp_path / 'a', ['vanilla', 'rrm', 'crome'])).read_text()
    assert 'id="keep_rates"' in page and '"name":"crome: causal"' in page and '"name":"rrm: rrm"' in page
    assert ': original"' not in page  # original rows are always kept: not drawn
    rrm_only = build_report(_keep_rate_run(tmp_path / 'b', ['vanilla', 'rrm'])).read_text()
    assert '"name":"rrm: rrm"' in rrm_only and 'crome: causal' not in rrm_only  # was: no section without crome
    assert 'crome: causal' not in build_report(_keep_rate_run(tmp_path / 'c', ['vanilla'])).read_text()


def test_accuracy_robustness_and_vulnerability_texts_say_what_is_counted():
    from crome.report import HOW_TO_READ
    from crome.report import summary_table
    acc = pd.DataFrame([dict(recipe='length', split='clean', subset='all', n=9, ties=1, accuracy=.4)])
    assert list(summary_table(acc).columns) == ['pairs', 'tie-labelled pairs (not counted)', 'length']
    assert 'A reward tie (equal rewards' in HOW_TO_READ['accuracy'] and 'counts as wrong' in HOW_TO_READ['accuracy']
    assert 'near-black' in HOW_TO_READ['robustness'] and "model's colour" not in HOW_TO_READ['robustness']
    v = HOW_TO_READ['vulnerabilities']
    assert 'verdict change either way' in v and 'way to game' not in v and 'past its threshold' in v


def test_vulnerabilities_rank_by_how_far_past_a_threshold():
    from crome.report import vulnerabilities
    rows = []
    for m, before, shift, flips in (('a', [0, 2] * 5, 0.6, [0] * 10),  # +0.57 SD (SD 1.05): 1.1x its 0.5 SD
                                    ('b', [0, 2] * 5, 0.0, [1] * 5 + [0] * 5),  # flips 50%: 5x its 10%
                                    ('c', [0, float('nan')] * 5, 0.1, [1] * 2 + [0] * 8)):  # NaN SD, flips 20%
        rows += [dict(model=m, edit='rot13', edit_kind='spurious', attribute=None, direction=None, pair_id=str(i),
                      side='chosen', reward_before=b, reward_after=b + shift, shift=shift, flipped=bool(f))
                 for i, (b, f) in enumerate(zip(before, flips))]
    v = vulnerabilities(pd.DataFrame(rows))
    assert list(v.model) == ['b', 'c', 'a'], v  # sorted by shift_sd alone: a, b, c


def test_run_figure_of_an_unfinished_rerun_says_it_is_the_last_finished_runs(tmp_path):
    from crome.figures import run_figure
    cfg = {'name': 'toy', 'out_dir': str(tmp_path), 'train': {'recipes': ['vanilla'], 'seeds': [0]}}
    (tmp_path / 'config.yaml').write_text(yaml.safe_dump(cfg))
    (tmp_path / 'state.json').write_text(json.dumps({'model:vanilla-s0': {'key': 'a'}, 'evaluate': {'key': 'b'}}))
    (tmp_path / 'metrics').mkdir()
    pd.DataFrame([dict(model='vanilla-s0', accuracy=.8)]).to_csv(tmp_path / 'metrics/accuracy.csv', index=False)
    pd.DataFrame([dict(model='vanilla-s0', edit='rot13', edit_kind='spurious', attribute=None, direction=None,
                       pair_id=str(i), side='chosen', reward_before=float(i), reward_after=i + .1, shift=.1)
                  for i in range(3)]).to_csv(tmp_path / 'metrics/reward_shifts.csv', index=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out): assert run_figure(tmp_path, 'shifts') is not None
    assert out.getvalue() == ''  # a finished run: no note
    (tmp_path / 'config.pending.yaml').write_text(yaml.safe_dump(cfg | {'train': {'recipes': ['vanilla'],
                                                                                  'steps': 9}}))
    with contextlib.redirect_stdout(out): fig = run_figure(tmp_path, 'shifts')
    assert fig is not None and out.getvalue() == ("note: the shifts figure is the last finished run's (config.yaml), "
                                                   "not the unfinished run's\n")
