"""Untrained baselines on the planted-cue testbed of `quality.py` part A.

The same test splits as part A (`crome.stress.stress_test` with its tasks, cue kinds, rho, demo size and seeds:
`crome.demo.make_demo` is deterministic given them), scored by two rules that learn nothing:
- *length*: the longer answer wins;
- *cosine*: the answer whose frozen MiniLM embedding is nearer the prompt's wins (the encoder and length part B's
  cosine baseline uses).
Accuracy on the clean and reversed splits is pooled and bootstrapped as part A pools a recipe (seeds resampled; in
each, its cue kinds, and its pairs once). Each trained recipe of a part A results file is then compared with the
cosine rule pair by pair (`crome.stats.paired_diff_ci`), where the file holds the same units (task, cue kind,
seed) with the same number of pairs; otherwise the comparison is left out and says why.

Why: a trained recipe whose clean accuracy is not above the cosine rule has not shown that it learned the task
beyond embedding similarity. On `excluded_item` the cosine rule is below chance by construction (the rejected
answer repeats the item the prompt rules out), so there a recipe must also be above 0.5. The testbed's own
question (how much a model leans on the cue: reversed against clean, paired between recipes) stands either way.

    python benchmarks/testbed_baselines.py [--seeds 0 1 2 3 4] [--quality results/quality.json] [--out JSON]

Prints the tables and writes benchmarks/results/testbed_baselines.json (commit and dirty flag, command, config,
seeds, device, library versions, wall time: `common.run_meta`; the per-pair verdicts of both rules).
"""
import argparse, json, os, time, warnings
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
import numpy as np, pandas as pd

from crome.demo import TASKS as DEMO_TASKS
from crome.scorers import CosineScorer, LengthScorer
from crome.stats import paired_diff_ci, verdict
from crome.stress import FrozenTrainer, stress_test
from common import RESULTS, run_meta
from quality import _pair_keys, _units, split_intervals  # part A's units, pair keys and pooled intervals

TASKS = tuple(DEMO_TASKS)  # relevance, requested_item, excluded_item: part A's tasks
RULES = ('length', 'cosine')


def rule_verdicts(cues: list, seeds: list, n: int, rho: float, max_length: int) -> pd.DataFrame:
    "One row per (task, rule, cue, seed): the rule's 0/1 verdicts on part A's clean and reversed test pairs."
    fm = FrozenTrainer(max_length=max_length).fm
    rules = {'length': LengthScorer(), 'cosine': CosineScorer(fm.embed)}
    frames = []
    for task in TASKS:
        for cue in cues:
            for name, rule in rules.items():
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')  # the unused vanilla training rows' notes
                    df = stress_test(recipes=['vanilla'], cues=[cue], rhos=[rho], seeds=seeds, n=n, tasks=task,
                                     trainer=lambda rows, recipe, seed, r=rule: r, split='test', verdicts=True,
                                     progress=False)
                frames.append(df.assign(task=task, recipe=name))
            print(f'  {task} / {cue}: done', flush=True)
    return pd.concat(frames, ignore_index=True)[['task', 'recipe', 'cue', 'seed', 'clean_correct', 'reversed_correct']]


def summarise(V: pd.DataFrame, n_boot: int) -> list[dict]:
    "Per (task, rule): clean and reversed accuracy with its 95% interval, pooled as part A pools a recipe."
    return [dict(task=task, rule=rule, units=len(g), pairs=int(sum(len(x) for x in g.clean_correct)))
            | split_intervals(g, n_boot) for (task, rule), g in V.groupby(['task', 'recipe'], sort=False)]


def versus_cosine(V: pd.DataFrame, Q: pd.DataFrame, n_boot: int) -> list[dict]:
    "Each trained recipe of part A minus the cosine rule, paired by unit and pair; or why it cannot be paired."
    out = []
    for task, q in Q.groupby('task', sort=False):
        cos = V[(V.task == task) & (V.recipe == 'cosine')]
        for recipe, g in q.groupby('recipe', sort=False):
            a, b = g.sort_values(['cue', 'seed']), cos.sort_values(['cue', 'seed'])
            same = (list(zip(a.cue, a.seed)) == list(zip(b.cue, b.seed))
                    and [len(x) for x in a.clean_correct] == [len(x) for x in b.clean_correct])
            for split in ('clean', 'reversed'):
                row = dict(task=task, recipe=recipe, split=split)
                if not same:
                    out.append(row | dict(note='other units or pair counts than this run: not paired')); continue
                d = paired_diff_ci(_units(a, f'{split}_correct'), _units(b, f'{split}_correct'), n_boot=n_boot,
                                   pairs=_pair_keys(a))
                out.append(row | dict(diff=d[0], low=d[1], high=d[2], verdict=verdict(d, f'{recipe} - cosine')))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])  # part A's (METHOD 7: >= 5)
    ap.add_argument('--cues', nargs='+', default=['signoff', 'markdown', 'verbosity'])
    ap.add_argument('--n-demo', type=int, default=1600); ap.add_argument('--rho', type=float, default=0.9)
    ap.add_argument('--max-length', type=int, default=128); ap.add_argument('--n-boot', type=int, default=2000)
    ap.add_argument('--quality', default=str(RESULTS / 'quality.json'), help='the part A results to compare with')
    ap.add_argument('--out', default=str(RESULTS / 'testbed_baselines.json'))
    a = ap.parse_args()
    t0 = time.time()
    V = rule_verdicts(a.cues, a.seeds, a.n_demo, a.rho, a.max_length)
    S = summarise(V, a.n_boot)
    print(pd.DataFrame(S).round(3).to_string(index=False))
    q = json.loads(Path(a.quality).read_text()) if Path(a.quality).exists() else {}
    qc = q.get('meta', {}).get('config', {})
    differs = {k: (qc.get(k), v) for k, v in dict(n_demo=a.n_demo, rho=a.rho, cues=a.cues).items()
               if k in qc and qc.get(k) != v}
    vs = []
    if q.get('testbed_verdicts') and not differs and sorted(q['meta'].get('seeds', [])) == sorted(a.seeds):
        vs = versus_cosine(V, pd.DataFrame(q['testbed_verdicts']), a.n_boot)
        for r in vs: print(f"{r['task']}, {r['split']}: {r.get('verdict') or r['recipe'] + ': ' + r['note']}")
    cfg = dict(n_demo=a.n_demo, cues=a.cues, rho=a.rho, max_length=a.max_length, n_boot=a.n_boot, tasks=list(TASKS),
               rules=list(RULES), quality=Path(a.quality).name, quality_commit=q.get('meta', {}).get('commit'),
               quality_settings_differ=differs)
    secs = round(time.time() - t0, 1)
    V = V.assign(clean_correct=V.clean_correct.map(lambda x: np.asarray(x, int).tolist()),
                 reversed_correct=V.reversed_correct.map(lambda x: np.asarray(x, int).tolist()))
    out = dict(run_meta(cfg, a.seeds), benchmark='testbed_baselines', seconds=secs, wall_seconds=secs, summary=S,
               versus_cosine=vs, verdicts=V.to_dict('records'))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f'wrote {a.out} ({secs:.0f} s)')


if __name__ == '__main__':
    main()
