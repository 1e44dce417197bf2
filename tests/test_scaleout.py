"""Scale-out on CPU (issue 17.4): two processes under `accelerate launch` (DDP over gloo) train to the same model as one
process at the same global batch, and augmentation split into shards across processes merges to the one-process result.

Pitfall found here: `accelerate launch --num_processes 2 --cpu` starts ONE process (accelerate's simple launcher; its
multi-CPU mode expects MPI). Two CPU processes need the torchrun-based launcher plus the CPU flag:
`ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 ...` (or `torchrun --nproc_per_node 2` with
that variable); accelerate then picks DistributedType.MULTI_CPU with the gloo backend.
Slow: each launch starts Python processes (~10-30 s on 2 cores)."""
import json, os, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
REL_TOL = 1e-3  # max |score difference| 1 vs 2 processes, as a share of how far training moved the scores (fp32 sums)


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', OMP_WAIT_POLICY='PASSIVE', TOKENIZERS_PARALLELISM='false',
               HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    env.pop('CUDA_VISIBLE_DEVICES', None)
    return env


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


_RETRY_WORDS = ('address already in use', 'eaddrinuse', 'connection refused', 'timed out', 'timeout')


def _run(cmd, cwd, timeout):
    """Run `cmd` in its own process group; on timeout kill the launcher and every process under it. torch's launcher
    starts each worker in a session of its own, so killing the group alone left a hung worker holding the pipes (and
    this test waiting on them for ever, seen here); workers that outlive the launcher are killed too."""
    import psutil, signal
    p = subprocess.Popen(cmd, cwd=cwd, env=dict(_env(), ACCELERATE_USE_CPU='true'), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen, out, deadline = {}, None, time.monotonic() + timeout  # seen: every process under the launcher so far
    while True:
        try: seen.update({c.pid: c for c in psutil.Process(p.pid).children(recursive=True)})
        except psutil.Error: pass
        try: out, err = p.communicate(timeout=1); break
        except subprocess.TimeoutExpired:  # still running, or the launcher ended and a worker holds the pipes
            if p.poll() is not None or time.monotonic() > deadline: break
    timed_out = p.poll() is None
    if timed_out: os.killpg(p.pid, signal.SIGKILL)
    for c in seen.values():
        try: c.kill()
        except psutil.Error: pass
    if out is None: out, err = p.communicate(timeout=60)
    return (-9 if timed_out else p.returncode), out, err, timed_out


def _launch(args, nproc, tmp_path, attempts: int = 3, timeout: int = 300):
    """`accelerate launch` with `nproc` CPU processes. The rendezvous port is picked free just before the launch, so
    another program may take it first (or a loaded machine may stall the gloo rendezvous): such a launch is retried
    on a new port, and the whole process group is killed on timeout. Any other failure fails at once."""
    for attempt in range(attempts):
        mode = ['--multi_gpu', '--main_process_port', str(_free_port())] if nproc > 1 else ['--cpu']
        cmd = [sys.executable, '-m', 'accelerate.commands.launch', '--num_processes', str(nproc), '--num_machines',
               '1', '--mixed_precision', 'no', '--dynamo_backend', 'no'] + mode + args
        rc, out, err, timed_out = _run(cmd, tmp_path, timeout)
        if rc == 0: return out
        transient = timed_out or (nproc > 1 and any(w in (out + err).lower() for w in _RETRY_WORDS))
        if not transient or attempt == attempts - 1:
            raise AssertionError(f'launch failed (attempt {attempt + 1}, rc {rc}, timed out {timed_out}):\n'
                                 + out[-3000:] + err[-3000:])
        print(f'retrying the launch on a new port (attempt {attempt + 1}: rc {rc}, timed out {timed_out})')


def test_run_kills_a_worker_left_holding_the_pipes(tmp_path):
    "A worker in its own session that outlives its launcher no longer blocks the launch (it hung a suite run here)."
    import psutil
    child = 'import time; time.sleep(600)'
    parent = ('import subprocess, sys, time; c = subprocess.Popen([sys.executable, "-c", %r], start_new_session=True); '
              'print(c.pid, flush=True); time.sleep(3)' % child)
    t0 = time.monotonic()
    rc, out, err, timed_out = _run([sys.executable, '-c', parent], tmp_path, 120)
    assert rc == 0 and not timed_out and time.monotonic() - t0 < 60, (rc, timed_out, err)
    pid = int(out.split()[0])
    time.sleep(0.5)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_launch_retries_only_transient_failures(tmp_path, monkeypatch):
    calls = []
    def fake(cmd, cwd, timeout):
        calls.append(cmd)
        return (1, '', 'RuntimeError: Address already in use', False) if len(calls) == 1 else (0, 'ok', '', False)
    monkeypatch.setattr(sys.modules[__name__], '_run', fake)
    assert _launch(['x.py'], 2, tmp_path) == 'ok' and len(calls) == 2
    assert calls[0][calls[0].index('--main_process_port') + 1].isdigit()
    calls.clear()
    monkeypatch.setattr(sys.modules[__name__], '_run', lambda *a: (calls.append(1), (1, '', 'ValueError: bad', False))[1])
    with pytest.raises(AssertionError, match='bad'): _launch(['x.py'], 2, tmp_path)
    assert len(calls) == 1  # a real error is not retried


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    from transformers import BertConfig, BertForSequenceClassification
    from crome.model import RewardModel, default_backbone, load_tokenizer
    from crome.schema import make_record
    d = tmp_path_factory.mktemp('scale')
    tok = load_tokenizer(default_backbone())
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=64, num_labels=1)
    RewardModel(BertForSequenceClassification(cfg), tok, max_length=48).save(d / 'tiny')
    words = ['apple', 'river', 'music', 'garden', 'engine', 'winter', 'coffee', 'planet']
    rows = []
    for i in range(64):
        w, o = words[i % 8], words[(i + 3) % 8]
        rows.append(make_record(f'tell me about {w}', f'{w} is nice ' * (1 + i % 3), f'{o} is here ' * (1 + (i + 1) % 3), id=f'p{i}'))
        if i % 2: rows.append(make_record(f'tell me about {o}', f'{w} thing', f'{words[(i + 5) % 8]} thing', label=0.5, id=f't{i}'))
    (d / 'pairs.jsonl').write_text('\n'.join(json.dumps({k: r[k] for k in ('prompt', 'chosen', 'rejected', 'label')}) for r in rows))
    return d


@pytest.mark.slow
def test_ddp_two_processes_match_one(tiny):
    from crome.model import RewardModel
    # plain SGD: Adam would turn float32 reduction-order noise in near-zero gradients into full-size steps
    # (with AdamW the per-step losses and gradient norms still agree to 1e-5, the final scores to ~1e-3)
    (tiny / 'sgd.yaml').write_text('training_args: {optim: sgd}\nwarmup_ratio: 0.0\nscheduler: constant\nreward_init_std: 1.0\n')
    common = ['-m', 'crome.train', str(tiny / 'pairs.jsonl'), '--recipe', 'crome', '--model', str(tiny / 'tiny'), '--max_steps', '8',
              '--lr', '0.05', '--max_length', '48', '--seed', '0', '--logging_steps', '1', '--no_group_by_length',
              '--config', str(tiny / 'sgd.yaml')]
    _launch(common + ['--batch_size', '16', '--output_dir', str(tiny / 'one')], 1, tiny)
    _launch(common + ['--batch_size', '8', '--output_dir', str(tiny / 'two')], 2, tiny)
    rows = [json.loads(x) for x in (tiny / 'pairs.jsonl').read_text().splitlines()]
    P, A = [r['prompt'] for r in rows], [r['chosen'] for r in rows]
    one, two = RewardModel.load(tiny / 'one' / 'model').score(P, A), RewardModel.load(tiny / 'two' / 'model').score(P, A)
    start = RewardModel.load(tiny / 'tiny').score(P, A)
    moved = float(np.abs(one - start).max())
    diff = float(np.abs(one - two).max())
    assert moved > 0.5, moved  # training changed the scores a lot, so agreement is not trivial
    assert diff < REL_TOL * moved, (diff, moved)
    # the gradient norms logged at every step agree (DDP averages the two processes' gradients)
    g1, g2 = (_grad_norms(tiny / d / 'log_history.json') for d in ('one', 'two'))
    assert len(g1) == 8 and np.allclose(g1, g2, rtol=1e-3), (g1, g2)


def _grad_norms(path):
    return [h['grad_norm'] for h in json.loads(Path(path).read_text()) if 'grad_norm' in h]


@pytest.mark.slow
def test_augmentation_shards_across_processes_merge_to_one(tiny):
    from crome.augment import AugmentResult, causal_augment, content_hash, merge_results
    from crome.demo import make_demo
    _launch([str(ROOT / 'tests' / 'scaleout_worker.py'), str(tiny)], 2, tiny)
    parts = [json.loads((tiny / f'shard{i}.json').read_text()) for i in range(2)]
    assert {p['world'] for p in parts} == {2} and all('gloo' in p['backend'] for p in parts)
    merged = merge_results([AugmentResult(p['records'], p['rejects'], p['shard'], p['num_shards']) for p in parts])
    single = causal_augment(make_demo(40, cues=[], seed=3)['train'], seed=0, progress=False)
    single = json.loads(json.dumps({'records': single.records, 'rejects': single.reject_records}, default=str))
    assert len(merged.records) == len(single['records']) > 0
    assert content_hash(merged.records) == content_hash(single['records'])
    assert merged.reject_records == single['rejects']
