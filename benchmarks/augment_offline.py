"""Offline augmentation of 1,000 real pairs (650 hh-rlhf harmless + 350 GSM8K): wall time, rows per kind,
rejects per reason, shard/merge identity, and each edit's side effects on length and format.

Run: python benchmarks/augment_offline.py  (prints tables; writes benchmarks/results/augment_offline.json with the
commit and dirty flag, command, config, seeds, device, library versions and wall time: `common.run_meta`)"""
import json, os, sys, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
import pandas as pd
from datasets import concatenate_datasets
from crome.augment import content_hash, merge_results
from crome.neutrals import augment
from crome.verify import fidelity_table
from crome.data import gsm8k_pairs, load_gsm8k, load_hh_rlhf
from crome.edits import side_effects
from common import run_meta

KINDS = ('causal', 'iqn', 'para', 'rrm')


def main():
    hh, gsm = load_hh_rlhf(), load_gsm8k()
    pairs = concatenate_datasets([hh.select(range(650)), gsm8k_pairs(gsm.select(range(350)), seed=0)])
    t0 = time.time()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter('always')
        res = augment(pairs, kinds=KINDS, seed=0)
    rows = res.rows
    t_aug = time.time() - t0
    t1 = time.time()
    merged = merge_results([augment(pairs, kinds=KINDS, seed=0, shard=s, num_shards=4, progress=False)
                            for s in range(4)])
    t_shards = time.time() - t1
    same = content_hash(merged) == content_hash(res)
    counts = res.counts()
    reasons = res.rejects.groupby(['kind', 'reason']).size().rename('n')
    donors = [r['rejected'] for r in hh.select(range(1000, 1100))]
    sample = [(r['prompt'], r['chosen']) for r in hh.select(range(700, 1000))] + \
             [(g['question'], g['solution']) for g in gsm.select(range(400, 700))]
    se = side_effects(sample, donors=donors)
    ft = fidelity_table(res)
    with pd.option_context('display.width', 200, 'display.max_rows', 200):
        print(f'1,000 pairs -> {len(rows):,} rows, {len(res.rejects):,} rejects; '
              f'augment {t_aug:.1f} s (incl. validation), '
              f'4 shards {t_shards:.1f} s; merged shards identical to unsharded: {same}')
        print(counts.to_string()); print(reasons.to_string()); print(se.round(3).to_string())
        print(ft.round(3).to_string())
    secs = round(time.time() - t0, 1)
    out = dict(run_meta(dict(kinds=KINDS, seed=0, hh=650, gsm8k=350), [0]), seconds=secs, wall_seconds=secs,
               warnings=[str(w.message)[:300] for w in warned],
               pairs=len(pairs), rows=len(rows), rejects=len(res.rejects), seconds_augment=round(t_aug, 2),
               seconds_4_shards=round(t_shards, 2), shards_identical=same, content_hash=content_hash(res),
               rows_by_kind=rows.to_pandas().kind.value_counts().to_dict(),
               counts=[dict(zip(['kind', 'attribute', 'direction'], k), **v)
                       for k, v in counts.to_dict('index').items()],
               rejects_by_reason=[dict(kind=k, reason=r, n=int(n)) for (k, r), n in reasons.items()],
               side_effects=json.loads(se.to_json(orient='records')),
               fidelity_table=json.loads(ft.to_json(orient='records')))
    path = Path(__file__).parent / 'results' / 'augment_offline.json'
    path.write_text(json.dumps(out, indent=1))
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
