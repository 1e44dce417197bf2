"""Why offline Crome lost to vanilla on the demo testbed, and the fix: vanilla / RRM / Crome (current defaults) and two
ablations that restore the old behaviour (IQN drawn from causal pairs too; contradict_fact among the correctness edits).

Frozen MiniLM + MLP head, the same optimizer budget for every recipe (--steps x --batch pairs), training rows =
2 x originals with 50% augmentations (as crome.stress.recipe_data). Accuracy per demo task on the clean and
reversed-cue test splits. Usage: python benchmarks/crome_ablation.py [--n 1600] [--seeds 0,1,2] [--cues signoff]
Writes benchmarks/results/crome_ablation.json."""
import argparse, os, random, time, warnings
from pathlib import Path
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE'); os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TQDM_DISABLE', '1')
import numpy as np, pandas as pd, torch

from crome import augment as A
from crome.demo import make_demo, CueSpec  # the benchmark knows the cue; the augmentation never does
from crome.evaluate import save_results
from crome.frozen import FrozenRewardModel
from crome.schema import to_dataset
from crome.stress import _strip, _draw, _KEEP
from crome.train import fit_frozen


def rows_for(orig, aug, seed, budget, aug_share=0.5):
    rng = random.Random(f'{seed}|budget')
    n_aug = round(budget * aug_share) if aug else 0
    rows = _draw(orig, max(len(orig), budget - n_aug) if aug else budget, rng) + _draw(aug, n_aug, rng)
    return to_dataset([{k: r[k] for k in _KEEP} for r in rows[:budget]], check=False)


def accuracies(fm, d):
    out = {}
    for task in ('relevance', 'requested_item', 'all'):
        for split in ('clean', 'reversed'):
            R = [r for r in d[split].to_list() if task == 'all' or r['subset'] == task]
            P = [r['prompt'] for r in R]
            out[f'{task}_{split}'] = float((fm.score(P, [r['chosen'] for r in R]) > fm.score(P, [r['rejected'] for r in R])).mean())
    return out


def recipes(src, seed):
    causal = A.causal_augment(src, seed=seed, progress=False)
    old_corr = A.ATTRIBUTE_EDITS['correctness']
    A.ATTRIBUTE_EDITS['correctness'] = old_corr + ('contradict_fact',)
    try: causal_cf = A.causal_augment(src, seed=seed, progress=False)
    finally: A.ATTRIBUTE_EDITS['correctness'] = old_corr
    iqn = A.iqn_neutrals(src, seed=seed).records
    return {'vanilla': [], 'rrm': A.rrm_augment(src, seed=seed).records,
            'crome': causal.records + iqn,
            'crome, iqn from causal too': causal.records + A.iqn_neutrals(src, causal, seed=seed, source='both').records,
            'crome, + contradict_fact': causal_cf.records + iqn}


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--n', type=int, default=1600); p.add_argument('--seeds', default='0,1,2'); p.add_argument('--cues', default='signoff')
    p.add_argument('--rho', type=float, default=0.9); p.add_argument('--steps', type=int, default=600); p.add_argument('--batch', type=int, default=128)
    p.add_argument('--cache', default=None, help='npz embedding cache to load/save (speeds up reruns)')
    p.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'crome_ablation.json'))
    a = p.parse_args()
    torch.set_num_threads(1); warnings.filterwarnings('ignore')
    fm = FrozenRewardModel(max_length=128)
    if a.cache and os.path.exists(a.cache): fm.load_cache(a.cache)
    rows, t0 = [], time.time()
    for cue in a.cues.split(','):
        for seed in map(int, a.seeds.split(',')):
            d = make_demo(a.n, cues=[CueSpec(cue, a.rho, 1)], seed=seed)
            orig = _strip(d['train']); src = A._Sources(to_dataset(orig))
            for name, aug in recipes(src, seed).items():
                tr = rows_for(orig, aug, seed, 2 * len(orig))
                fit_frozen(fm, tr, 'vanilla' if name == 'vanilla' else 'crome', epochs=max(1, round(a.steps * a.batch / len(tr))),
                           batch_size=a.batch, seed=seed)
                rows.append(dict(cue=cue, seed=seed, recipe=name, **accuracies(fm, d)))
                print(cue, seed, name, {k: round(v, 3) for k, v in rows[-1].items() if k.endswith('d')}, flush=True)
            if a.cache: fm.save_cache(a.cache)
    df = pd.DataFrame(rows)
    cols = [f'{t}_{s}' for t in ('relevance', 'requested_item', 'all') for s in ('clean', 'reversed')]
    table = df.groupby(['cue', 'recipe'], sort=False)[cols].agg(['mean', 'std']).round(3)
    with pd.option_context('display.width', 250, 'display.max_columns', 50): print(table.to_string())
    save_results({'settings': vars(a), 'seconds': time.time() - t0, 'rows': df}, a.out)
    print('wrote', a.out)


if __name__ == '__main__': main()
