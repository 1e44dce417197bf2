"""Write benchmarks/results/RESULTS.md, the README's results section, from the results JSON files: every number in
it is read from a file that records the commit, config, seeds and device it came from. Nothing here is typed by hand.

Usage: python benchmarks/results_md.py [--out benchmarks/results/RESULTS.md]"""
import argparse, json
from pathlib import Path
import pandas as pd
from common import RESULTS

NAMES = {'vanilla': 'vanilla', 'rrm': 'RRM', 'crome': 'Crome', 'odin': 'ODIN', 'mmd': 'MMD', 'length': 'longer wins',
         'cosine': 'cosine (untrained)'}


def load(name):
    p = RESULTS / name
    return json.loads(p.read_text()) if p.exists() else None


def ci(m, lo, hi) -> str: return f'{m:.3f} [{lo:.3f}, {hi:.3f}]'


def meta_line(meta) -> str:
    dirty = ' (uncommitted changes)' if meta.get('dirty') else ''
    return (f"_`{meta.get('command', '?')}` at commit `{meta.get('commit', '?')[:10]}`{dirty}; seeds "
            f"{', '.join(map(str, meta.get('seeds', [])))}; {meta.get('device', '?')}; "
            f"{meta.get('seconds', 0) / 60:.0f} min._")


def md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    rows = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    rows += ['| ' + ' | '.join(str(v) for v in r) + ' |' for r in df.itertuples(index=False)]
    return '\n'.join(rows)


def testbed(q) -> list[str]:
    S = pd.DataFrame(q['testbed_summary'])
    out = ['### Planted-cue testbed', '', meta_line(q['meta']), '',
           'Accuracy on the test split with 95% intervals (pooled over cue kinds and seeds). *clean*: no cue; '
           '*reversed*: the cue on every rejected answer (a model that learned the cue fails there); *flipped*: share '
           'of clean-correct pairs the cue flips (lower is better).', '']
    for task, g in S.groupby('task', sort=False):
        t = pd.DataFrame({'recipe': [NAMES.get(r, r) for r in g.recipe],
                          'clean': [ci(*x) for x in zip(g['clean'], g.clean_low, g.clean_high)],
                          'reversed': [ci(*x) for x in zip(g['reversed'], g.reversed_low, g.reversed_high)],
                          'flipped': [f'{x:.3f}' for x in g.flip_share]})
        kind = 'contextual' if task == 'relevance' else 'within-prompt'
        out += [f'**{task.replace("_", " ")}** ({kind} attribute)', '', md(t), '']
    D = pd.DataFrame(q['testbed_differences'])
    out += ['Paired differences (same pairs, same seeds):', '']
    out += [f"- {r.task}, {r.split}: {r.verdict}" for r in D.itertuples()]
    G = pd.DataFrame(q['testbed_goals'])
    out += ['', 'Goals of the project, as measured:', '']
    out += [f"- {r.goal}: {'met' if r.met else '**not met**'} ({r.diff:+.3f} [{r.low:+.3f}, {r.high:+.3f}])"
            for r in G.itertuples()]
    return out + ['']


def real(q) -> list[str]:
    P = pd.DataFrame(q['real_power'])
    sizes = q['real_sizes']
    out = ['### Real data', '', meta_line(q['meta']), '',
           f"{sizes['train']} training / {sizes['validation']} validation / {sizes['test']} test pairs, split by prompt. "
           'Accuracy per section with 95% intervals; the two untrained baselines decide whether a section can rank '
           'recipes at all.', '']
    piv = {}
    for r in P.itertuples():
        piv.setdefault(r.section, {})[NAMES.get(r.model, r.model)] = ci(r.accuracy, r.low, r.high)
    models = [NAMES.get(m, m) for m in P.model.unique()]
    t = pd.DataFrame([{'section': s, **{m: v.get(m, '') for m in models}} for s, v in piv.items()])
    out += [md(t), '']
    power = P.groupby('section').has_power.first()
    for s, hp in power.items():
        if hp:
            above = ', '.join(NAMES.get(m, m) for m in P[(P.section == s) & P.above_baselines].model)
            out.append(f'- {s}: {above} significantly above both untrained baselines: this section can rank recipes.')
        else:
            out.append(f'- {s}: no recipe is significantly above both untrained baselines: **this section cannot rank '
                       'recipes** at this model size.')
    D = pd.DataFrame(q['real_differences'])
    out += ['', 'Paired differences:', ''] + [f'- {r.section}: {r.verdict}' for r in D.itertuples()]
    R = pd.DataFrame(q['real_robustness_drops'])
    R = R[R.side == 'both']
    out += ['', 'Robustness suite (eval-role meaning-preserving transformations on both answers; accuracy drop, '
            'micro-averaged, lower is better; interval over seeds):', '',
            md(pd.DataFrame({'model': [NAMES.get(m, m) for m in R.model], 'clean': R['clean'].round(3),
                             'transformed': R.accuracy.round(3), 'drop': [ci(*x) for x in zip(R['drop'], R.drop_low,
                                                                                              R.drop_high)]})), '']
    B = pd.DataFrame(q['real_bon'])
    b = B.groupby(['model', 'n']).accuracy.mean().unstack('n').round(3)
    ref = B.groupby('n')[['random_acc', 'oracle_acc']].mean().round(3)
    b.loc['random pick'] = ref.random_acc; b.loc['best possible (pass@N)'] = ref.oracle_acc
    b.index = [NAMES.get(i, i) for i in b.index]
    b.columns = [f'N={c}' for c in b.columns]
    out += [f"Best-of-N on {q['real_n_bon_pools']} GSM8K test questions (8 candidates: 2 right, 6 with an arithmetic "
            'slip; decorations drawn alike for both), accuracy of the pick:', '', md(b.reset_index(names='model')), '']
    return out


def main():
    p = argparse.ArgumentParser(); p.add_argument('--out', default=str(RESULTS / 'RESULTS.md'))
    a = p.parse_args()
    lines = ['<!-- generated by benchmarks/results_md.py from benchmarks/results/*.json: do not edit -->', '']
    q = load('quality.json')
    if q and 'testbed_summary' in q: lines += testbed(q)
    if q and 'real_power' in q: lines += real(q)
    if len(lines) == 2: lines.append('No results yet: run `python benchmarks/quality.py`.')
    Path(a.out).write_text('\n'.join(lines) + '\n')
    print('wrote', a.out)


if __name__ == '__main__':
    main()
