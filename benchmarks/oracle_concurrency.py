"""Oracle throughput vs in-flight limit against the loopback OpenAI-compatible server (200 ms latency).

Measures requests/s of `OpenAICompatibleOracle.complete_many` at concurrency 1, 8 and 32 (goal: >= 20x at 32
vs 1), then reruns the largest batch with the cache warm (goal: 0 requests). Prints a table and writes
benchmarks/results/oracle_concurrency.json (commit and dirty flag, command, config, device, library versions, wall time:
`common.run_meta`; not committed: a loopback measurement, rerun it to see the numbers).

    python benchmarks/oracle_concurrency.py [--latency 0.2] [--seconds 4]
"""
import argparse, json, platform, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'tests'), str(ROOT / 'benchmarks')]
from crome.oracle import OpenAICompatibleOracle  # noqa: E402
from loopback_server import LoopbackServer  # noqa: E402
from common import run_meta  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--latency', type=float, default=0.2, help='server latency per request, seconds')
    ap.add_argument('--seconds', type=float, default=4.0, help='target wall time per concurrency level (sets the request count)')
    ap.add_argument('--levels', type=int, nargs='+', default=[1, 8, 32])
    ap.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'oracle_concurrency.json'))
    a = ap.parse_args()
    meta, t_start, rows = run_meta(vars(a), []), time.time(), []
    with LoopbackServer(latency=a.latency) as srv, tempfile.TemporaryDirectory() as tmp:
        for c in a.levels:
            n = max(c, int(round(a.seconds / a.latency)) * c)
            o = OpenAICompatibleOracle(srv.url, 'loopback-model', max_concurrency=c, cache=Path(tmp) / f'c{c}', progress=False)
            msgs = [f'concurrency {c} request {i}' for i in range(n)]
            srv.reset()
            t0 = time.perf_counter(); res = o.complete_many(msgs); dt = time.perf_counter() - t0
            assert all(r.ok for r in res), [r.error for r in res if not r.ok][:3]
            rows.append(dict(concurrency=c, requests=srv.count, seconds=round(dt, 3), req_per_s=round(n / dt, 2),
                             max_in_flight=srv.max_in_flight, ideal_req_per_s=round(c / a.latency, 2)))
        # cached rerun of the last level
        srv.reset()
        t0 = time.perf_counter(); res = o.complete_many(msgs); dt = time.perf_counter() - t0
        cached = dict(items=len(msgs), requests=srv.count, seconds=round(dt, 3), all_cached=all(r.cached for r in res))
    base = rows[0]['req_per_s']
    for r in rows: r['speedup'] = round(r['req_per_s'] / base, 2)
    print(f"loopback server, latency {a.latency * 1000:.0f} ms, {platform.processor() or platform.machine()}")
    print(f"{'concurrency':>11} {'requests':>8} {'seconds':>8} {'req/s':>8} {'ideal':>7} {'speedup':>8} {'max in flight':>13}")
    for r in rows:
        print(f"{r['concurrency']:>11} {r['requests']:>8} {r['seconds']:>8.2f} {r['req_per_s']:>8.1f} {r['ideal_req_per_s']:>7.1f} "
              f"{r['speedup']:>7.1f}x {r['max_in_flight']:>13}")
    print(f"cached rerun of {cached['items']} items: {cached['requests']} requests in {cached['seconds']:.3f} s")
    top = rows[-1]['speedup']
    goal = dict(speedup_at_max=top, speedup_goal=20.0, speedup_met=top >= 20.0, cached_requests_goal_met=cached['requests'] == 0)
    print('goals:', goal)
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(meta, benchmark='oracle_concurrency', seconds=round(time.time() - t_start, 1),
                                   latency_s=a.latency, levels=rows, cached_rerun=cached, goals=goal), indent=2))
    print('wrote', out)


if __name__ == '__main__':
    main()
