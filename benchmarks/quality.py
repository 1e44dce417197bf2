"""The canonical quality protocol (benchmarks/README.md): vanilla, RRM, Crome (offline), ODIN and MMD with the same
budget, trainer and seeds, scored once on test splits that share no prompt with training, and no answer text beyond
a few short stock replies (in the reported run 10, e.g. '', 'Why?', '<nooutput>': counted in `real_shared_answers`,
listed in `real_shared_answer_texts`).

Part A, testbed: the code-generated demo (crome.demo) for each causal-attribute kind (relevance: contextual;
requested_item: within-prompt; excluded_item: within-prompt, where prompt-answer similarity points at the wrong answer)
and each cue kind at rho 0.9; the augmentations are filtered by a vanilla baseline
(tau 0.2) and never see the cue. Accuracy on the clean and reversed-cue test splits, pooled over cues and seeds, with
95% bootstrap intervals (crome.stats.bootstrap_ci: seeds resampled; inside each, its cues and, once for all of them,
its pairs, since a seed's cues share its demo pairs); paired differences between recipes. A goal is met only when
its interval clears the threshold, not met when the interval lies entirely on the wrong side, else undecided
(`goal_status`).
Part B, real data: hh-rlhf harmless (Safety), GSM8K (train.jsonl for training; test.jsonl for the test pairs:
Reasoning = a correct vs an eval-role arithmetic-slip solution of the same question) and PandaLM majority preferences
(Chat), split train / validation / test by prompt. GSM8K "prompt matching" pairs (own vs another question's solution,
generator `gsm8k:other_solution`) are NOT a test subset: they are the construction of the GSM8K training pairs and of
RRM's augmentation, and a generator family never both trains and tests (METHOD.md section 7). Runs before this rule
scored them under Chat; `--resummarise JSON --drop-subset gsm8k-prompt-match` removes them from such a file.
Section accuracy with intervals (the five training seeds score the same test pairs: seeds and pairs are
resampled crossed) against two untrained baselines (longer answer wins; prompt-answer cosine);
a section ranks recipes only where some recipe is significantly above both (crome.stats.power_table; the pooled
section also above the better baseline of each section). The eval-role robustness suite (accuracy drop,
micro-averaged; interval over seeds and pairs, a pair's transformations resampled together) and Best-of-N on GSM8K
test questions (eval-role pools; the pick's 0/1 per question stored, for intervals over seeds and questions)
beside it. The results record, per seed and
recipe, the augmented rows made and kept and the rows trained on (`real_training`), and every warning of the
data-building steps with its count (`real_warnings`: e.g. GSM8K solutions left out for want of an arithmetic slip).

Usage: python benchmarks/quality.py [--seeds 0,1,2,3,4] [--skip-a] [--skip-b] [--quick]
The reported run: `quality.py --threads 1 --skip-b --out A.json` and `quality.py --threads 1 --skip-a --out B.json`
side by side (about 50 minutes on 2 cores), then `quality.py --merge A.json B.json`. A testbed task added later
(`excluded_item`) ran as `quality.py --skip-b --tasks excluded_item --out X.json` with the same settings and seeds,
then `quality.py --add-tasks quality.json X.json` (its commit and command are kept in `meta_testbed_added`).
Prints the tables and writes benchmarks/results/quality.json (commit, config, seeds, device, wall time included, and
the per-pair verdicts: `quality.py --resummarise JSON --out JSON` recomputes every interval from them, no training)."""
import argparse, os, sys, time, warnings
from pathlib import Path

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE'); os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('HF_DATASETS_OFFLINE', '1'); os.environ.setdefault('TQDM_DISABLE', '1')
warnings.filterwarnings('ignore')  # library noise; part B records crome's own warnings (`_recorded`)
import numpy as np, pandas as pd, torch
import datasets; datasets.disable_progress_bars()

from crome.stress import stress_test, FrozenTrainer, recipe_data
from crome.evaluate import (POOLED, eval_rows, section_correct, section_of, robustness_instances, robustness_table,
                            save_results)
from crome.scorers import LengthScorer, CosineScorer
from crome.stats import bootstrap_ci, clustered_ci, paired_diff_ci, power_table, verdict
from crome.bon import best_of_n, gsm8k_pools, gsm8k_reasoning_pairs
from crome.data import load_hh_rlhf, load_gsm8k, gsm8k_pairs, load_pandalm, split_by_prompt
from crome.schema import text_of, to_dataset
from crome.demo import TASKS
from common import RESULTS, git, need_data, run_meta

RECIPES = ['vanilla', 'rrm', 'crome', 'odin', 'mmd']
PAIRS = [('crome', 'vanilla'), ('crome', 'rrm'), ('rrm', 'vanilla')]
SECTIONS = {'hh-harmless': 'Safety', 'gsm8k-reasoning': 'Reasoning', 'pandalm': 'Chat'}
# Runs before the prompt-match pairs left the test split (see the docstring) scored them under Chat
PROMPT_MATCH = 'gsm8k-prompt-match'
LEGACY_SECTIONS = SECTIONS | {PROMPT_MATCH: 'Chat'}
FRACTIONS = {'train': 0.6, 'validation': 0.15, 'test': 0.25}


# ---------------------------------------------------------------- part A: the planted-cue testbed
def part_a(a, trainer) -> pd.DataFrame:
    frames = []
    for task in a.tasks:
        for cue in a.cues:
            t0 = time.time()
            df = stress_test(recipes=a.recipes, cues=[cue], rhos=[a.rho], seeds=a.seeds, n=a.n_demo, tasks=task,
                             trainer=trainer, filter=True, tau=a.tau, split='test', verdicts=True, progress=False)
            df.insert(0, 'task', task); frames.append(df)
            print(f'  [A] {task} / {cue}: {time.time() - t0:.0f} s', flush=True)
    return pd.concat(frames, ignore_index=True)


def _units(g: pd.DataFrame, col: str) -> list:
    "Per-(cue, seed) arrays in a fixed order, so that recipes are compared on the same pairs."
    return [np.asarray(x, float) for x in g.sort_values(['cue', 'seed'])[col]]


def _pair_keys(g: pd.DataFrame) -> list:
    "The pairs each `_units` array holds: a seed's demo data, shared by its cues (crome.stats.bootstrap_ci)."
    return g.sort_values(['cue', 'seed'])['seed'].tolist()


def split_intervals(g: pd.DataFrame, n_boot: int) -> dict:
    "Clean and reversed accuracy of one (task, recipe) group, each with its 95% interval (`_units`, `_pair_keys`)."
    out = {}
    for split in ('clean', 'reversed'):
        m, lo, hi = bootstrap_ci(_units(g, f'{split}_correct'), n_boot=n_boot, pairs=_pair_keys(g))
        out |= {split: m, f'{split}_low': lo, f'{split}_high': hi}
    return out


def summarise_a(A: pd.DataFrame, n_boot: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, diffs = [], []
    for (task, recipe), g in A.groupby(['task', 'recipe'], sort=False):
        rows.append(dict(task=task, recipe=recipe, flip_share=float(g.flip_share.mean()),
                         n_kept=float(g.n_kept.mean())) | split_intervals(g, n_boot))
    for task, g in A.groupby('task', sort=False):
        by = {r: x for r, x in g.groupby('recipe')}
        for x, y in PAIRS:
            for split in ('clean', 'reversed'):
                d = paired_diff_ci(_units(by[x], f'{split}_correct'), _units(by[y], f'{split}_correct'),
                                   n_boot=n_boot, pairs=_pair_keys(by[x]))
                diffs.append(dict(task=task, compare=f'{x} - {y}', split=split, diff=d[0], low=d[1], high=d[2],
                                  verdict=verdict(d, f'{x} - {y}')))
    return pd.DataFrame(rows), pd.DataFrame(diffs)


def goal_status(low: float, high: float, threshold: float) -> str:
    """A goal "difference >= threshold" judged on the difference's 95% interval: 'met' only when the whole interval
    clears the threshold, 'not met' when it lies entirely below it, else 'undecided' (the threshold is inside the
    noise). A point estimate on the right side is not enough."""
    if low >= threshold: return 'met'
    if high < threshold: return 'not met'
    return 'undecided'


def goals_a(D: pd.DataFrame) -> pd.DataFrame:
    "The issue's goals, each with the measured difference, its interval, the threshold and `goal_status`."
    get = lambda t, c, s: D[(D['task'] == t) & (D['compare'] == c) & (D['split'] == s)].iloc[0]  # noqa: E731
    out = []
    def goal(name, r, threshold):
        st = goal_status(r['low'], r['high'], threshold)
        out.append(dict(goal=name, diff=r['diff'], low=r['low'], high=r['high'], threshold=threshold, status=st,
                        met=st == 'met'))
    for task in D.task.unique():
        goal(f'{task}: Crome >= vanilla + 0.20 reversed', get(task, 'crome - vanilla', 'reversed'), 0.20)
        goal(f'{task}: Crome clean within 0.02 of vanilla (or above)', get(task, 'crome - vanilla', 'clean'), -0.02)
    if 'requested_item' in set(D.task):  # a run of other tasks only (--tasks) has no such goal
        goal('requested_item: Crome >= RRM + 0.05 reversed', get('requested_item', 'crome - rrm', 'reversed'), 0.05)
    return pd.DataFrame(out)


# ---------------------------------------------------------------- part B: real data
def _cat(parts) -> 'datasets.Dataset':
    keep = ['prompt', 'chosen', 'rejected', 'label', 'id', 'subset']
    return to_dataset([{k: r[k] for k in keep} for p in parts for r in p.to_list()], check=False)


def _questions(ds, fractions, seed=0):
    sp = split_by_prompt(ds.rename_column('question', 'prompt'), fractions, seed=seed)
    return {k: v.rename_column('prompt', 'question') for k, v in sp.items()}


def _recorded(where: str, log: list, fn, *args, **kw):
    "fn(*args, **kw), appending each warning it raises to `log` (where, category, message) instead of hiding it."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        out = fn(*args, **kw)
    log += [dict(where=where, category=w.category.__name__, message=str(w.message)[:400]) for w in caught]
    return out


def warning_counts(log: list) -> list[dict]:
    "The recorded warnings, one row per distinct (where, category, message) with its count."
    return (pd.DataFrame(log, columns=['where', 'category', 'message']).value_counts(sort=False)
            .rename('count').reset_index().to_dict('records'))


def shared_answer_texts(splits: dict) -> dict:
    """{'a/b': sorted answer texts that occur in both splits a and b} (crome.data.shared_responses counts the same
    sets); what a report needs to see that the shared ones are trivial."""
    t = {n: {text_of(r[k]).strip() for r in ds for k in ('chosen', 'rejected')} for n, ds in splits.items()}
    names = list(t)
    return {f'{a}/{b}': sorted(t[a] & t[b]) for i, a in enumerate(names) for b in names[i + 1:]}


def real_data(a, prompt_match: bool = False) -> dict:
    """Train / validation / test pairs of part B. `prompt_match=True` rebuilds the test split of runs made before
    the prompt-match pairs left it (for `--drop-subset` only: they share the training pairs' construction)."""
    hh = load_hh_rlhf(need_data('hh-rlhf', 'harmless-base', 'test.jsonl.gz')).shuffle(seed=0).select(range(a.n_hh))
    hh = split_by_prompt(hh, FRACTIONS, seed=0)
    pl = load_pandalm(need_data('pandalm', 'testset-v1.json')).filter(lambda r: r['label'] == 1.0)
    pl = split_by_prompt(pl, FRACTIONS, seed=0)
    gtr = _questions(load_gsm8k(need_data('gsm8k', 'train.jsonl')).shuffle(seed=0).select(range(a.n_gsm)),
                     {'train': 0.8, 'validation': 0.2})
    gte = load_gsm8k(need_data('gsm8k', 'test.jsonl')).shuffle(seed=0).select(range(a.n_gsm_test))
    g = {'train': gsm8k_pairs(gtr['train'], seed=0), 'validation': gsm8k_pairs(gtr['validation'], seed=0)}
    test = _cat([hh['test'], *([gsm8k_pairs(gte, seed=0)] if prompt_match else []),
                 gsm8k_reasoning_pairs(gte, seed=0), pl['test']])
    out = dict(train=_cat([hh['train'], g['train'], pl['train']]),
               validation=_cat([hh['validation'], g['validation'], pl['validation']]), test=test,
               bon_questions=gte.select(range(min(a.n_bon, len(gte)))))
    out['shared_answer_texts'] = shared_answer_texts({k: out[k] for k in ('train', 'validation', 'test')})
    out['shared_answers'] = {k: len(v) for k, v in out['shared_answer_texts'].items()}
    return out


def _training_record(seed: int, role: str, rows, info: dict) -> dict:
    "What one recipe_data call made: originals, augmented rows made and kept by the filter, rows trained on by kind."
    kinds = pd.Series(rows['kind']).value_counts().to_dict() if 'kind' in rows.column_names else {}
    return dict(seed=seed, recipe=info['recipe'], role=role, n_original=info['n_original'],
                n_augmented=info['n_augmented'], n_kept=info['n_kept'], n_train=info['n_train'],
                rows_by_kind={str(k): int(v) for k, v in kinds.items()})


def part_b(a, trainer) -> dict:
    log = []
    D = _recorded('real_data', log, real_data, a)
    train, test = D['train'], D['test']
    print(f"  [B] {len(train)} train / {len(D['validation'])} validation / {len(test)} test pairs; "
          f"answers shared across splits: {D['shared_answer_texts']}", flush=True)
    budget = 2 * len(train)
    baselines = {'length': LengthScorer(), 'cosine': CosineScorer(trainer.fm.embed)}
    pools = _recorded('gsm8k_pools', log, gsm8k_pools, D['bon_questions'], n_candidates=8, seed=0)
    rob_idx = sorted(np.random.default_rng(0).choice(len(test), size=min(a.n_rob, len(test)), replace=False).tolist())
    per_seed, rob, bon, rob_pairs, training = [], [], [], [], []
    for seed in a.seeds:
        t0 = time.time()
        rows, info = _recorded(f'recipe_data filter-baseline seed {seed}', log, recipe_data, train, 'vanilla', seed,
                               budget)
        training.append(_training_record(seed, 'filter baseline', rows, info))
        base = trainer(rows, 'vanilla', seed)
        models = {}
        for r in a.recipes:
            rows, info = _recorded(f'recipe_data {r} seed {seed}', log, recipe_data, train, r, seed, budget, 0.5,
                                   base if r in ('rrm', 'crome') else None, a.tau)
            training.append(_training_record(seed, 'scored', rows, info))
            models[r] = trainer(rows, r, seed)
        per_seed.append(section_correct(models | baselines, test, section_map=SECTIONS))
        inst = robustness_instances(models | baselines, test.select(rob_idx), seed=seed)
        rob.append(robustness_table(inst, n_boot=0).drop(columns=['drop_low', 'drop_high']).assign(seed=seed))
        rob_pairs += robustness_pair_records(inst, seed)
        bon.append(best_of_n(models | baselines, pools, ns=(1, 2, 4, 8), seeds=(seed,), verdicts=True)
                   .assign(train_seed=seed))
        print(f'  [B] seed {seed}: {time.time() - t0:.0f} s', flush=True)
    power, diffs = summarise_b(per_seed, list(baselines), a.n_boot)
    R = pd.concat(rob, ignore_index=True)
    for w in warning_counts(log): print(f"  [B] warning x{w['count']} ({w['where']}): {w['message']}", flush=True)
    return dict(sizes={k: len(D[k]) for k in ('train', 'validation', 'test')}, shared_answers=D['shared_answers'],
                shared_answer_texts=D['shared_answer_texts'], training=training, warnings=warning_counts(log),
                n_bon_pools=len(pools), verdicts=verdict_records(a.seeds, per_seed), power=power, differences=diffs, robustness=R,
                robustness_pairs=rob_pairs, robustness_drops=summarise_drops(rob_pairs, a.n_boot), bon=pd.concat(bon, ignore_index=True))


def robustness_pair_records(inst: pd.DataFrame, seed: int) -> list[dict]:
    "Per (model, side): each pair's number of transformed instances and its sums of ok and clean_ok (all it takes)."
    g = inst.groupby(['model', 'side', 'pair'], sort=False).agg(n=('ok', 'size'), ok=('ok', 'sum'),
                                                                clean_ok=('clean_ok', 'sum')).reset_index()
    return [dict(seed=seed, model=m, side=s, pair=h.pair.tolist(), n=h.n.astype(int).tolist(),
                 ok=h.ok.astype(int).tolist(), clean_ok=h.clean_ok.astype(int).tolist())
            for (m, s), h in g.groupby(['model', 'side'], sort=False)]


def _drop_instances(r) -> tuple[np.ndarray, np.ndarray]:
    "Per-instance drop values and pair labels of one record (each pair's sum and count, which is all that matters)."
    n = np.asarray(r['n'])
    return (np.repeat((np.asarray(r['clean_ok']) - np.asarray(r['ok'])) / n, n),
            np.repeat(np.asarray(r['pair'], dtype=str), n))


def summarise_drops(records: list, n_boot: int, baseline: str = 'vanilla') -> pd.DataFrame:
    """Micro-averaged robustness drop per (side, model) over seeds, with a 95% interval over seeds and pairs: every
    seed transforms the same test pairs, and a pair's transformations are resampled together (`clustered_ci`). Also
    the paired difference from `baseline` (same seeds, pairs and transformations) with its verdict."""
    R, out = pd.DataFrame(records), []
    base = {(r['side'], r['seed']): r for r in records if r['model'] == baseline}
    for (side, model), g in R.groupby(['side', 'model'], sort=False):
        recs = g.sort_values('seed').to_dict('records')
        vals, labels = zip(*map(_drop_instances, recs))
        m, lo, hi = clustered_ci(list(vals), list(labels), n_boot=n_boot)
        share = lambda k: np.mean([sum(r[k]) / sum(r['n']) for r in recs])  # noqa: E731
        row = dict(side=side, model=model, seeds=len(g), clean=share('clean_ok'), accuracy=share('ok'), drop=m,
                   drop_low=lo, drop_high=hi)
        b = [base.get((side, r['seed'])) for r in recs]
        same = lambda x, r: x is not None and list(x['pair']) == list(r['pair']) and list(x['n']) == list(r['n'])  # noqa: E731
        if model != baseline and all(same(x, r) for x, r in zip(b, recs)):
            d = clustered_ci([v - _drop_instances(x)[0] for v, x in zip(vals, b)], list(labels), n_boot=n_boot)
            row |= dict(vs_baseline=d[0], vs_baseline_low=d[1], vs_baseline_high=d[2],
                        verdict=verdict(d, f'{model} - {baseline}'))
        out.append(row)
    return pd.DataFrame(out)


def verdict_records(seeds: list, per_seed: list) -> list[dict]:
    "One record per (seed, section, model) with its 0/1 array: what a results file stores for `resummarise`."
    return [dict(seed=seed, section=sec, model=m, correct=np.asarray(v, int).tolist())
            for seed, s in zip(seeds, per_seed) for sec, by in s.items() for m, v in by.items()]


def per_seed_from(records: list) -> list:
    "The inverse of `verdict_records`: one {section: {model: 0/1 array}} per seed, in seed order."
    V = pd.DataFrame(records)
    return [{sec: {m: np.asarray(r.correct, float) for m, r in h.set_index('model').iterrows()}
             for sec, h in g.groupby('section', sort=False)} for _, g in V.groupby('seed', sort=True)]


def summarise_b(per_seed: list, baselines: list, n_boot: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Power table and paired differences; every seed scored the same test pairs, so seeds and pairs are crossed.
    Each difference carries its section's `has_power`: in a section without power a significant difference between
    two recipes is still no ranking of them (neither beats both untrained baselines)."""
    power = power_table(per_seed, baselines=baselines, n_boot=n_boot)
    has_power = power.groupby('section').has_power.first()
    diffs = []
    for sec in per_seed[0]:
        for x, y in PAIRS:
            d = paired_diff_ci([s[sec][x] for s in per_seed], [s[sec][y] for s in per_seed], n_boot=n_boot,
                               pairs=[0] * len(per_seed))
            diffs.append(dict(section=sec, compare=f'{x} - {y}', diff=d[0], low=d[1], high=d[2],
                              verdict=verdict(d, f'{x} - {y}'), section_has_power=bool(has_power[sec])))
    return power, pd.DataFrame(diffs)


def drop_subset(res: dict, subset: str) -> dict:
    """Remove one test subset from a results file's real-data verdicts and robustness pairs, in place, without
    training. The run's test split is rebuilt from its stored config (`real_data(prompt_match=True)`, the split of
    runs made before `subset` left it) and checked: the stored sizes, and the untrained length baseline's stored
    verdicts, which the rebuilt split must reproduce exactly for every seed and section (so the positions are right).
    `section_correct` keeps row order inside a section and puts every row in the pooled one, so a section's array
    positions are its rows in test order. Robustness records are labelled by pair id (`eval_rows`: a row's `id`),
    which names one test row and so its subset. Returns what was dropped (`res['resummarised']['dropped']`)."""
    import types
    cfg = res.get('meta_real', res['meta'])['config']
    a = types.SimpleNamespace(**{k: cfg[k] for k in ('n_hh', 'n_gsm', 'n_gsm_test', 'n_bon')})
    log = []
    D = _recorded('real_data (rebuilt)', log, real_data, a, prompt_match=True)
    sizes = {k: len(D[k]) for k in ('train', 'validation', 'test')}
    if sizes != res['real_sizes']:
        raise SystemExit(f'the rebuilt split {sizes} is not the run\'s {res["real_sizes"]}: cannot drop {subset!r}')
    rows = eval_rows(D['test'], 'drop_subset')
    subs = np.array([r.get('subset') or 'all' for r in rows])
    if subset not in subs: raise SystemExit(f'{subset!r} is not a test subset of this run ({sorted(set(subs))})')
    secs = np.array([section_of(x, LEGACY_SECTIONS) for x in subs])
    pooled = lambda sec: sec in (POOLED, 'Avg')  # noqa: E731  (older files call the pooled section 'Avg')
    recs = res['real_verdicts']
    keep = {sec: subs[np.arange(len(subs)) if pooled(sec) else np.flatnonzero(secs == sec)] != subset
            for sec in dict.fromkeys(r['section'] for r in recs)}
    bad = [(r['seed'], r['section'], r['model']) for r in recs if len(r['correct']) != len(keep[r['section']])]
    if bad: raise SystemExit(f'stored verdict arrays do not match the rebuilt sections: {bad[:5]}')
    checked = 'no length baseline stored'
    if any(r['model'] == 'length' for r in recs):
        ref = section_correct({'length': LengthScorer()}, D['test'], section_map=LEGACY_SECTIONS)
        for r in (r for r in recs if r['model'] == 'length'):
            mine = ref[POOLED if pooled(r['section']) else r['section']]['length']
            if not np.array_equal(np.asarray(mine, int), np.asarray(r['correct'], int)):
                raise SystemExit(f"the length baseline's verdicts (seed {r['seed']}, {r['section']}) differ on the "
                                 'rebuilt split: its row order is not the run\'s')
        checked = "the length baseline's stored verdicts reproduced exactly (every seed and section)"
    res['real_verdicts'] = [r | {'correct': np.asarray(r['correct'])[keep[r['section']]].tolist()}
                            for r in recs if keep[r['section']].any()]
    n = int((subs == subset).sum())
    out = dict(subset=subset, test_pairs=n, test_pairs_before=len(subs),
               verdict_positions={sec: int((~k).sum()) for sec, k in keep.items()},
               sections_left_out=[sec for sec, k in keep.items() if not k.any()],
               checks=[f'sizes {sizes} as stored', checked], warnings_rebuilding=warning_counts(log))
    res['real_sizes'] = sizes | {'test': len(subs) - n}
    test = D['test'].filter(lambda r: r['subset'] != subset)
    res['real_shared_answer_texts'] = shared_answer_texts({'train': D['train'], 'validation': D['validation'],
                                                           'test': test})
    res['real_shared_answers'] = {k: len(v) for k, v in res['real_shared_answer_texts'].items()}
    if 'real_robustness_pairs' in res:
        ids = pd.Series([r['pair_id'] for r in rows])
        where = dict(zip(ids, subs))
        labels = {p for r in res['real_robustness_pairs'] for p in r['pair']}
        if ids.duplicated().any() or not labels <= set(where):
            out['robustness'] = ('left as it was: its pair labels do not identify the subset (duplicate ids, or '
                                 f'{len(labels - set(where))} labels not in the rebuilt test split)')
        else:
            before = {len(r['pair']) for r in res['real_robustness_pairs']}
            recs = []
            for r in res['real_robustness_pairs']:
                k = [where[p] != subset for p in r['pair']]
                recs.append(r | {c: [x for x, y in zip(r[c], k) if y] for c in ('pair', 'n', 'ok', 'clean_ok')})
            res['real_robustness_pairs'] = recs
            out['robustness'] = dict(pairs_before=sorted(before), pairs_after=sorted({len(r['pair']) for r in recs}),
                                     pairs_dropped=len({p for p in labels if where[p] == subset}))
        if 'real_robustness' in res:
            out['not_recomputed'] = ['real_robustness (per seed and transformation: no per-pair data stored) still '
                                     f'includes the {subset} pairs; real_robustness_drops is the recomputed summary']
    return out


class FinetuneTrainer:
    """The fine-tuned protocol: MiniLM fine-tuned as a cross-encoder (`crome.train.train_reward_model`), same
    steps, batch and learning rate for every recipe. `fm` is a frozen encoder kept only for the cosine baseline."""
    def __init__(self, steps: int, batch_size: int, max_length: int, lr: float = 5e-5, crome_lambda: float = 1.0,
                 rrm_lambda: float = 1.0):
        from crome.model import default_backbone
        self.kw = dict(max_steps=steps, batch_size=batch_size, max_length=max_length, lr=lr)
        self.lambdas = {'crome': crome_lambda, 'rrm': rrm_lambda}
        self.fm = FrozenTrainer(max_length=max_length).fm
        self.backbone = default_backbone()

    def __call__(self, train_ds, recipe: str, seed: int):
        from crome.train import train_reward_model
        extra = {'lambda_tie': self.lambdas[recipe]} if recipe in self.lambdas else {}
        return train_reward_model(train_ds, recipe, seed=seed, **self.kw, **extra)


class PerRecipe:
    "One trainer per recipe where a design choice differs (Crome's and RRM's lambda, selected on validation); one cache."
    def __init__(self, base, **special):  # special: recipe -> trainer
        self.base, self.special, self.fm = base, special, base.fm
        for t in special.values(): t.fm.cache = base.fm.cache

    def __call__(self, train_ds, recipe: str, seed: int):
        return self.special.get(recipe, self.base)(train_ds, recipe, seed)


# ---------------------------------------------------------------- main
def merge(parts: list[str], out: str):
    "One results file from a testbed-only and a real-data-only run (two processes, one core each)."
    import json
    a, b = (json.loads(open(f).read()) for f in parts)
    if 'testbed_summary' not in a: a, b = b, a
    res = {'meta': a['meta'], 'meta_real': b['meta']} | {k: v for k, v in a.items() if k not in ('meta', 'meta_real')}
    save_results(res | {k: v for k, v in b.items() if k != 'meta'}, out); print('wrote', out)


def testbed_from_verdicts(res: dict, n_boot: int) -> dict:
    "The testbed's summary, differences and goals, recomputed from a results file's stored rows and verdicts."
    A = pd.DataFrame(res['testbed']).merge(pd.DataFrame(res['testbed_verdicts']), validate='one_to_one',
                                           on=['task', 'cue', 'seed', 'recipe'])
    S, D = summarise_a(A, n_boot)
    return {'testbed_summary': S, 'testbed_differences': D, 'testbed_goals': goals_a(D)}


SAME_TESTBED = ('n_demo', 'cues', 'rho', 'tau', 'recipes', 'crome_lambda', 'rrm_lambda', 'epochs', 'max_length', 'n_boot',
                'finetune', 'steps', 'batch', 'trainer', 'budget')  # not 'filter': a description (tau is the setting)


def add_tasks(base: str, extra: str, out: str):
    """`base`'s results with the testbed tasks of `extra` (a `--skip-b --tasks ...` run) added: same settings and
    seeds required (SAME_TESTBED), no task in both. The summary, differences and goals are recomputed over all tasks
    from the stored verdicts; `extra`'s provenance is kept in `meta_testbed_added`, with its tasks."""
    import json
    b, e = (json.loads(Path(f).read_text()) for f in (base, extra))
    for f, r in ((base, b), (extra, e)):
        if 'testbed_verdicts' not in r: raise SystemExit(f'{f}: no testbed verdicts stored (not a part A run)')
    cb, ce = b['meta']['config'], e['meta']['config']
    differs = {k: (cb.get(k), ce.get(k)) for k in SAME_TESTBED if cb.get(k) != ce.get(k)}
    if differs or sorted(b['meta']['seeds']) != sorted(e['meta']['seeds']):
        raise SystemExit(f"{extra}: other settings than {base}: {differs or 'seeds'} (base, extra)")
    new = list(dict.fromkeys(r['task'] for r in e['testbed']))
    both = sorted(set(new) & {r['task'] for r in b['testbed']})
    if both: raise SystemExit(f'{extra}: task(s) {both} are in {base} already')
    res = dict(b)
    for k in ('testbed', 'testbed_verdicts'): res[k] = b[k] + e[k]
    res |= testbed_from_verdicts(res, cb['n_boot'])
    res['meta_testbed_added'] = list(b.get('meta_testbed_added', [])) + [e['meta'] | {'tasks': new}]
    save_results(res, out); print('added', new, 'from', extra, '->', out)


def resummarise(path: str, out: str, drop: list[str] = ()):
    """Recompute the intervals of a results file from its stored per-pair verdicts (no training): the testbed's
    summary, differences and goals, and the real-data power table and differences where their verdicts are stored;
    with the run's own number of bootstrap draws. `drop`: test subsets to remove first (`drop_subset`); a subset an
    earlier resummarise already dropped is not dropped twice."""
    import json
    res = json.loads(Path(path).read_text())
    done, boots = [], {}
    dropped = list((res.get('resummarised') or {}).get('dropped', []))
    for sub in drop:
        if any(d['subset'] == sub for d in dropped): print(f'note: {sub!r} was dropped already'); continue
        if 'real_verdicts' not in res: raise SystemExit(f'{path}: no real_verdicts stored, nothing to drop {sub!r} from')
        dropped.append(drop_subset(res, sub)); print('dropped', dropped[-1])
    if 'testbed_verdicts' in res:
        boots['testbed'] = n_boot = res['meta']['config']['n_boot']
        res |= testbed_from_verdicts(res, n_boot); done.append('testbed')
    if 'real_verdicts' in res:
        per_seed = per_seed_from(res['real_verdicts'])
        models = list(per_seed[0][next(iter(per_seed[0]))])
        boots['real'] = n_boot = res.get('meta_real', res['meta'])['config']['n_boot']
        res['real_power'], res['real_differences'] = summarise_b(
            per_seed, [m for m in ('length', 'cosine') if m in models], n_boot)
        done.append('real')
    elif 'real_power' in res:
        print('note: no real_verdicts stored; the real-data intervals are left as they were (rerun --skip-a)')
    if 'real_robustness_pairs' in res:
        boots['robustness'] = n_boot = res.get('meta_real', res['meta'])['config']['n_boot']
        res['real_robustness_drops'] = summarise_drops(res['real_robustness_pairs'], n_boot); done.append('robustness')
    elif 'real_robustness_drops' in res:
        print('note: no real_robustness_pairs stored; the robustness intervals are over seeds only (rerun --skip-a)')
    commit, dirty = git('rev-parse', 'HEAD'), bool(git('status', '--porcelain', '--', 'crome', 'benchmarks'))
    res['resummarised'] = dict(parts=done, commit=commit, dirty=dirty, n_boot=boots, command=' '.join(sys.argv[1:]))
    if dropped: res['resummarised']['dropped'] = dropped
    save_results(res, out); print('resummarised', done, '->', out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--seeds', default='0,1,2,3,4'); p.add_argument('--n-demo', type=int, default=1600)
    p.add_argument('--cues', default='signoff,markdown,verbosity'); p.add_argument('--rho', type=float, default=0.9)
    p.add_argument('--tasks', default=','.join(TASKS), help='part A testbed tasks (crome.demo.TASKS)')
    p.add_argument('--tau', type=float, default=0.2)
    p.add_argument('--recipes', default=','.join(RECIPES),
                   help='a subset only for a reduced run (say so when reporting)')
    p.add_argument('--crome-lambda', type=float, default=2.0,
                   help="Crome's tie weight; 2 was selected on validation by crome_ablation.py (the paper uses 1)")
    p.add_argument('--rrm-lambda', type=float, default=2.0,
                   help="RRM's tie weight; 2 was selected on validation by crome_ablation.py ('rrm: ...' variants)")
    p.add_argument('--n-hh', type=int, default=1000); p.add_argument('--n-gsm', type=int, default=600)
    p.add_argument('--n-gsm-test', type=int, default=300); p.add_argument('--n-bon', type=int, default=100)
    p.add_argument('--n-rob', type=int, default=150); p.add_argument('--epochs', type=int, default=20)
    p.add_argument('--max-length', type=int, default=128); p.add_argument('--n-boot', type=int, default=2000)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--finetune', action='store_true', help='fine-tune MiniLM instead of the frozen head (a GPU run)')
    p.add_argument('--steps', type=int, default=400); p.add_argument('--batch', type=int, default=16)
    p.add_argument('--quick', action='store_true', help='a smoke run: 2 seeds, one cue, small sets (not a result)')
    p.add_argument('--skip-a', action='store_true'); p.add_argument('--skip-b', action='store_true')
    p.add_argument('--out', default=str(RESULTS / 'quality.json'))
    p.add_argument('--merge', nargs=2, metavar='JSON', help='merge a --skip-b and a --skip-a results file into --out')
    p.add_argument('--add-tasks', nargs=2, metavar='JSON', help='BASE EXTRA: add the testbed tasks of EXTRA (a --skip-b '
                   '--tasks run with the same settings) to BASE, into --out')
    p.add_argument('--resummarise', metavar='JSON', help='recompute the intervals of a results file into --out')
    p.add_argument('--drop-subset', action='append', default=[], metavar='SUBSET',
                   help=f'with --resummarise: remove a test subset first (e.g. {PROMPT_MATCH}); needs the data')
    a = p.parse_args()
    if a.merge: return merge(a.merge, a.out)
    if a.add_tasks: return add_tasks(*a.add_tasks, a.out)
    if a.resummarise: return resummarise(a.resummarise, a.out, a.drop_subset)
    if a.drop_subset: p.error('--drop-subset goes with --resummarise')
    a.seeds = [int(s) for s in a.seeds.split(',')]; a.cues = a.cues.split(','); a.recipes = a.recipes.split(',')
    a.tasks = a.tasks.split(',')
    if set(a.tasks) - set(TASKS): p.error(f'--tasks: {sorted(set(a.tasks) - set(TASKS))} (choose from {list(TASKS)})')
    bad = [r for r in a.recipes if r not in RECIPES] or [r for r in ('vanilla', 'rrm', 'crome') if r not in a.recipes]
    if bad: p.error(f'--recipes: {bad} (choose from {RECIPES}; vanilla, rrm and crome are always compared)')
    if a.quick:
        a.seeds, a.cues, a.n_demo, a.n_hh, a.n_gsm, a.n_gsm_test, a.n_rob, a.n_bon, a.n_boot = \
            a.seeds[:2], a.cues[:1], 600, 300, 200, 100, 40, 30, 300
    torch.set_num_threads(a.threads)
    special = {r: FrozenTrainer(epochs=a.epochs, max_length=a.max_length, lambda_tie=lam)
               for r, lam in (('crome', a.crome_lambda), ('rrm', a.rrm_lambda)) if lam != 1.0}
    trainer = (FinetuneTrainer(a.steps, a.batch, a.max_length, crome_lambda=a.crome_lambda, rrm_lambda=a.rrm_lambda)
               if a.finetune else PerRecipe(FrozenTrainer(epochs=a.epochs, max_length=a.max_length), **special))
    name = (f'fine-tuned MiniLM-L6 cross-encoder, {a.steps} steps x {a.batch} pairs' if a.finetune
            else 'FrozenTrainer (frozen MiniLM-L6 + MLP head)')
    cfg = {k: v for k, v in vars(a).items() if k not in ('seeds', 'out')} | dict(
        trainer=name, budget='2 x originals, 50% augmented',
        filter='vanilla baseline: crome rows kept iff |p - y| > tau; rrm rows: a seeded half scored, kept iff |p - y| >= tau',
        crome_lambda_tie=a.crome_lambda, rrm_lambda_tie=a.rrm_lambda)
    out, t0 = {'meta': run_meta(cfg, a.seeds)}, time.time()
    pd.set_option('display.width', 220); pd.set_option('display.max_columns', 30)
    if not a.skip_a:
        A = part_a(a, trainer)
        S, D = summarise_a(A, a.n_boot)
        out['testbed'] = A.drop(columns=['clean_correct', 'reversed_correct'])
        out['testbed_verdicts'] = A[['task', 'cue', 'seed', 'recipe', 'clean_correct', 'reversed_correct']]
        out |= {'testbed_summary': S, 'testbed_differences': D, 'testbed_goals': goals_a(D)}
        print('\n== Part A: testbed, test split, pooled over cues', a.cues, 'and seeds', a.seeds)
        print(S.round(3).to_string(index=False)); print(D[['task', 'split', 'verdict']].to_string(index=False))
        print(out['testbed_goals'].round(3).to_string(index=False))
    if not a.skip_b:
        B = part_b(a, trainer); out |= {f'real_{k}': v for k, v in B.items()}
        print(f"\n== Part B: real data {B['sizes']}")
        print(B['power'][['section', 'model', 'n', 'accuracy', 'low', 'high', 'above_baselines', 'has_power']]
              .round(3).to_string(index=False))
        print(B['differences'].assign(verdict=lambda d: d.verdict.where(
            d.section_has_power, d.verdict + ' [section without power: not a ranking]'))[['section', 'verdict']]
              .to_string(index=False))
        print(B['robustness_drops'].round(3).to_string(index=False))
        print(B['bon'].groupby(['model', 'n'])[['accuracy', 'random_acc', 'oracle_acc']].mean().round(3).to_string())
    out['meta']['seconds'] = round(time.time() - t0, 1)
    save_results(out, a.out); print('wrote', a.out, f"({out['meta']['seconds']} s)")


if __name__ == '__main__':
    main()
