"""Planted-cue stress test with the default frozen-MiniLM trainer: vanilla vs RRM vs Crome (offline) over cue kinds and rho.

An exploration tool: it scores the VALIDATION split by default (`--split test` only for a reported run), so that
sweeping it never tunes anything on test.

Usage: python benchmarks/stress_test.py [--n 600] [--seeds 0] [--strengths 1] [--tasks relevance,requested_item] [--filter]
Prints a table (mean over seeds) and writes benchmarks/results/stress_test.json (rows, commit, config, timing)."""
import argparse, os, time
from pathlib import Path

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TQDM_DISABLE', '1')

import pandas as pd
import torch

from crome.stress import stress_test, FrozenTrainer
from crome.evaluate import save_results
from common import run_meta


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--n', type=int, default=600)
    p.add_argument('--seeds', default='0')
    p.add_argument('--strengths', default='1')
    p.add_argument('--rhos', default='0.5,0.7,0.9,1.0')
    p.add_argument('--cues', default='signoff,markdown,verbosity')
    p.add_argument('--recipes', default='vanilla,rrm,crome')
    p.add_argument('--tasks', default='relevance,requested_item')
    p.add_argument('--epochs', type=int, default=20)
    p.add_argument('--filter', action='store_true')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--split', default='validation', choices=['validation', 'test'])
    p.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'stress_test.json'))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    split = lambda s, f=str: [f(x) for x in s.split(',') if x]
    tasks = split(a.tasks)
    tasks = tasks[0] if len(tasks) == 1 else {t: 1 / len(tasks) for t in tasks}
    trainer = FrozenTrainer(epochs=a.epochs)
    t0 = time.time()
    df = stress_test(recipes=split(a.recipes), cues=split(a.cues), strengths=split(a.strengths, int), rhos=split(a.rhos, float),
                     seeds=split(a.seeds, int), n=a.n, tasks=tasks, trainer=trainer, filter=a.filter, split=a.split,
                     progress=True)
    secs = time.time() - t0
    table = (df.groupby(['cue', 'strength', 'rho', 'recipe'], sort=False)[['clean_acc', 'reversed_acc', 'flip_share', 'shift_over_margin']]
             .mean().round(3))
    with pd.option_context('display.width', 200, 'display.max_rows', 500):
        print(table.to_string())
        print(df.groupby('recipe', sort=False)[['clean_acc', 'reversed_acc', 'flip_share', 'shift_over_margin']].mean().round(3).to_string())
    print(f'{len(df)} fits in {secs:.0f} s ({len(trainer.fm.cache)} texts embedded)')
    meta = run_meta(vars(a), split(a.seeds, int)) | {'seconds': round(secs, 1)}
    save_results({'meta': meta, 'texts_embedded': len(trainer.fm.cache), 'rows': df}, a.out)
    print('wrote', a.out)


if __name__ == '__main__':
    main()
