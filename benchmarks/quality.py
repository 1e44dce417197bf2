"""Side-by-side quality benchmark: vanilla vs RRM vs Crome (offline) vs ODIN vs MMD, same budget, same seeds, one run.

Part A, testbed: the code-generated demo data (crome.demo) at rho = 0.9 for each cue kind, separately for each
causal-attribute kind (relevance: contextual; requested_item: within-prompt). Every recipe trains the same number
of rows with the same frozen-MiniLM trainer; Crome's and RRM's augmentations are filtered with a vanilla baseline
(tau 0.2; --no-filter trains on all of them). The augmentation sees only prompt/chosen/rejected/label/id: never the cue.
Part B, real data from ../shared/data (hh-rlhf harmless test, GSM8K train, PandaLM; each split by prompt): clean
accuracy per section, the reWordBench-style robustness suite (accuracy drop, micro-averaged), Best-of-N on GSM8K.

Usage: python benchmarks/quality.py [--seeds 0,1,2] [--n-demo 1600] [--quick]
Prints the tables and writes benchmarks/results/quality.json."""
import argparse, json, os, time, warnings
from pathlib import Path

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE'); os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TQDM_DISABLE', '1')
warnings.filterwarnings('ignore')
import numpy as np, pandas as pd, torch
import datasets; datasets.disable_progress_bars()

from crome.stress import stress_test, FrozenTrainer, recipe_data
from crome.evaluate import section_accuracy, robustness_suite, best_of_n, gsm8k_pools, save_results
from crome.data import load_hh_rlhf, load_gsm8k, gsm8k_pairs, load_pandalm, split_by_prompt
from crome.schema import to_dataset

RECIPES = ['vanilla', 'rrm', 'crome', 'odin', 'mmd']


def part_a(a, trainer):
    frames = []
    for task in ('relevance', 'requested_item'):
        df = stress_test(recipes=RECIPES, cues=a.cues, strengths=(1,), rhos=(0.9,), seeds=a.seeds, n=a.n_demo, tasks=task,
                         trainer=trainer, filter=a.filter, progress=False)
        df.insert(0, 'task', task); frames.append(df)
    return pd.concat(frames, ignore_index=True)


def real_splits(a):
    hh = split_by_prompt(load_hh_rlhf().shuffle(seed=0).select(range(a.n_hh)), {'train': .75, 'test': .25}, seed=0)
    g = gsm8k_pairs(load_gsm8k().shuffle(seed=0).select(range(a.n_gsm)), seed=0)
    g = split_by_prompt(g, {'train': .75, 'test': .25}, seed=0)
    pl = load_pandalm(); pl = pl.filter(lambda r: r['label'] == 1.0)
    pl = split_by_prompt(pl, {'train': .75, 'test': .25}, seed=0)
    keep = ['prompt', 'chosen', 'rejected', 'label', 'id', 'subset']
    cat = lambda parts: to_dataset([{k: r[k] for k in keep} for p in parts for r in p.to_list()], check=False)
    return cat([hh['train'], g['train'], pl['train']]), cat([hh['test'], g['test'], pl['test']])


def part_b(a, trainer):
    train, test = real_splits(a)
    sections = {'hh-harmless': 'Safety', 'gsm8k': 'Reasoning', 'pandalm': 'Chat'}
    budget = 2 * len(train)
    acc, rob, bon = [], [], []
    pools = gsm8k_pools(load_gsm8k(Path(__file__).resolve().parents[2] / 'shared/data/gsm8k/test.jsonl').select(range(a.n_bon)), seed=0)
    rng = np.random.default_rng(0)
    sub_idx = sorted(rng.choice(len(test), size=min(a.n_rob, len(test)), replace=False).tolist())
    rob_set = test.select(sub_idx)
    for seed in a.seeds:
        base = trainer(recipe_data(train, 'vanilla', seed, budget)[0], 'vanilla', seed)
        models = {}
        for r in RECIPES:
            rows, info = recipe_data(train, r, seed, budget, 0.5, base if r in ('rrm', 'crome') else None, 0.2)
            models[r] = trainer(rows, r, seed)
        s = section_accuracy(models, test, section_map=sections); s.insert(0, 'seed', seed); acc.append(s)
        if seed == a.seeds[0] or not a.quick:
            rb = robustness_suite(models, rob_set, seed=seed); rb.insert(0, 'seed', seed); rob.append(rb)
            b = best_of_n(models, pools, ns=(1, 2, 4, 8, 16), seeds=(seed,)); b.insert(0, 'train_seed', seed); bon.append(b)
    return dict(train_pairs=len(train), test_pairs=len(test), accuracy=pd.concat(acc), robustness=pd.concat(rob), bon=pd.concat(bon))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--seeds', default='0,1,2'); p.add_argument('--n-demo', type=int, default=1600)
    p.add_argument('--cues', default='signoff,markdown,verbosity')
    p.add_argument('--n-hh', type=int, default=800); p.add_argument('--n-gsm', type=int, default=600); p.add_argument('--n-bon', type=int, default=100)
    p.add_argument('--n-rob', type=int, default=150); p.add_argument('--epochs', type=int, default=20); p.add_argument('--max-length', type=int, default=128)
    p.add_argument('--threads', type=int, default=2); p.add_argument('--quick', action='store_true', help='1 seed, smaller sets')
    p.add_argument('--no-filter', dest='filter', action='store_false', help='part A: train on unfiltered augmentations')
    p.add_argument('--skip-a', action='store_true'); p.add_argument('--skip-b', action='store_true')
    p.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'quality.json'))
    a = p.parse_args()
    a.seeds = [int(s) for s in a.seeds.split(',')]; a.cues = a.cues.split(',')
    if a.quick: a.seeds, a.n_demo, a.n_hh, a.n_gsm, a.n_rob, a.n_bon = a.seeds[:1], 800, 400, 300, 60, 40
    torch.set_num_threads(a.threads)
    trainer = FrozenTrainer(epochs=a.epochs, max_length=a.max_length)
    out, t0 = {'settings': vars(a), 'device': 'cuda' if torch.cuda.is_available() else f'cpu ({torch.get_num_threads()} threads)'}, time.time()
    pd.set_option('display.width', 200)
    if not a.skip_a:
        A = part_a(a, trainer); out['testbed'] = A
        m = A.groupby(['task', 'cue', 'recipe'], sort=False)[['clean_acc', 'reversed_acc', 'flip_share', 'shift_over_margin']].mean().round(3)
        print('\n== Part A: demo testbed, rho 0.9, mean over seeds', a.seeds); print(m.to_string())
        piv = A.groupby(['task', 'recipe'])[['clean_acc', 'reversed_acc']].mean().unstack('recipe')
        goals = []
        for task in piv.index:
            c, r = piv.loc[task, 'clean_acc'], piv.loc[task, 'reversed_acc']
            goals.append(dict(task=task, crome_minus_vanilla_reversed=round(r['crome'] - r['vanilla'], 3),
                              crome_minus_vanilla_clean=round(c['crome'] - c['vanilla'], 3), crome_minus_rrm_reversed=round(r['crome'] - r['rrm'], 3)))
        G = pd.DataFrame(goals); out['testbed_goals'] = G
        print('\nGoals: Crome >= vanilla + 0.20 reversed with clean within 0.02; on requested_item Crome >= RRM + 0.05'); print(G.to_string(index=False))
        print(f'[part A: {time.time() - t0:.0f} s]')
    if not a.skip_b:
        t1 = time.time(); B = part_b(a, trainer); out.update({f'real_{k}': v for k, v in B.items()})
        acc = B['accuracy']
        sec = acc[acc['level'].isin(['section', 'average'])].groupby(['section', 'model'])['accuracy'].mean().unstack('model')[RECIPES].round(3)
        print(f"\n== Part B: real data ({B['train_pairs']} train / {B['test_pairs']} test pairs), clean accuracy, mean over seeds"); print(sec.to_string())
        rb = B['robustness']; micro = rb[rb['transformation'] == 'micro_avg'].groupby(['side', 'model'])[['clean_accuracy', 'accuracy', 'drop']].mean().round(3)
        print('\nRobustness suite (micro-average over transformations):'); print(micro.to_string())
        bon = B['bon'].groupby(['model', 'n'])['accuracy'].mean().unstack('n').round(3)
        print('\nBest-of-N on GSM8K (accuracy of the picked answer):'); print(bon.to_string())
        print(f'[part B: {time.time() - t1:.0f} s]')
    out['seconds'] = round(time.time() - t0, 1)
    save_results(out, a.out); print('wrote', a.out, f"({out['seconds']} s)")


if __name__ == '__main__':
    main()
