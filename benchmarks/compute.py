"""Shared helpers for the speed benchmarks: run metadata, a matmul peak probe, and FLOP counts of encoder reward models.

FLOPs are counted for the useful (non-pad) tokens only: a sequence of L tokens costs, per forward pass,
2 * (weights of all linear layers) * L for the matmuls plus 4 * layers * hidden * L^2 for attention (QK^T and AV).
A training step costs 3x its forward pass (backward ~2x). Padding, embeddings, norms and softmax are not counted,
so the share of peak is a lower bound on the hardware's busy time and an honest measure of useful work."""
import json, os, subprocess, time
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    try: return subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError: return 'unknown'


def load_info() -> dict:
    "Machine load when measuring (this machine is shared): 1/5/15-minute load averages and the CPU count."
    try: l1, l5, l15 = os.getloadavg()
    except OSError: l1 = l5 = l15 = float('nan')
    return {'loadavg_1_5_15': [round(l1, 2), round(l5, 2), round(l15, 2)], 'cpus': os.cpu_count()}


def device_name(threads: int) -> str:
    if torch.cuda.is_available(): return torch.cuda.get_device_name(0)
    from common import cpu_model
    return f'CPU: {cpu_model()}, {threads} torch threads'


def _products(device: str, dtype) -> dict:
    """Matrix-product kernels to probe, each `make(a, b) -> run()`: torch.mm (MKL on x86 CPUs, cuBLAS on GPUs) and, for
    float32 on a CPU, oneDNN's product on a prepacked weight (crome.onednn: what crome's CPU scoring runs), which can
    beat torch.mm; the peak is the best of them."""
    from crome.onednn import available  # the check crome's scoring makes before it uses these kernels
    out = {'torch.mm': lambda a, b: (lambda: torch.mm(a, b))}
    ops = torch.ops.mkldnn
    if str(device) == 'cpu' and dtype == torch.float32 and available():
        def onednn(a, b):
            w = ops._reorder_linear_weight(b.t().contiguous(), a.shape[0])
            return lambda: ops._linear_pointwise(a, w, None, 'none', [], '')
        out['onednn prepacked'] = onednn
    return out


def matmul_peak(n=(1024, 1536, 2048),  # matrix size, or several (the best one counts)
                reps: int = 8, dtype=torch.float32, device: str = 'cpu',
                warmup_s: float = 0.5) -> dict:  # multiply for this long first (clocks and caches settle)
    """Best achieved FLOP/s of n x n x n matrix products with the current torch thread count (on a GPU:
    synchronised), over sizes and kernels (`_products`). Several sizes and a warm-up: one size right after loading a
    model read 20-30% low on this machine."""
    sizes = [n] if isinstance(n, int) else list(n)
    sync = torch.cuda.synchronize if str(device).startswith('cuda') else (lambda: None)
    out = {}
    for m in sizes:
        a, b = torch.randn(m, m, dtype=dtype, device=device), torch.randn(m, m, dtype=dtype, device=device)
        for kernel, make in _products(device, dtype).items():
            run = make(a, b)
            t_end = time.perf_counter() + warmup_s
            run(); sync()
            while time.perf_counter() < t_end: run(); sync()
            best = float('inf')
            for _ in range(reps):
                t0 = time.perf_counter(); run(); sync(); best = min(best, time.perf_counter() - t0)
            out[m, kernel] = (best, 2 * m ** 3 / best)
    m, kernel = max(out, key=lambda k: out[k][1])
    return {'n': m, 'kernel': kernel, 'reps': reps, 'best_s': out[m, kernel][0], 'flops_per_s': out[m, kernel][1],
            'threads': torch.get_num_threads(),
            'flops_per_s_by_n': {str(k): max(v[1] for (mm, _), v in out.items() if mm == k) for k in sizes},
            'flops_per_s_by_kernel': {kk: max(v[1] for (_, k2), v in out.items() if k2 == kk)
                                      for kk in dict.fromkeys(k for _, k in out)}}


def best_peak(res: dict, runs: str) -> float:
    "The peak FLOP/s of a results dict: the best of its probes at the start, at the end and after each of `res[runs]`."
    probes = [res['peak_probe_start'], res['peak_probe_end']] + [r['peak_probe_after'] for r in res[runs].values()]
    return max(x['flops_per_s'] for x in probes)


def linear_weights(model) -> int:
    "Multiply-accumulates per token of all linear layers (the classifier head included, embeddings excluded)."
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))


def forward_flops(model, lengths) -> float:
    "Forward FLOPs of an encoder over sequences of the given (non-pad) lengths."
    cfg = model.config
    lin, layers, d = linear_weights(model), cfg.num_hidden_layers, cfg.hidden_size
    return float(sum(2 * lin * L + 4 * layers * d * L * L for L in lengths))


def write_json(path, obj):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2, default=str))
