"""Counterfactual fidelity of offline causal augmentation on the demo testbed (issue 13's done-when figures).

For every cue kind of `crome.demo.CUES`: make the demo (n pairs, one planted cue), run offline causal augmentation
(offline rubrics per prompt, the verifier on), and measure on the kept causal pairs:
- spurious-change rate by crome.verify's detectors (the share of pairs whose two answers differ in any detector
  or in the length bound),
- cue-change rate by the testbed's own cue detector `crome.demo.has_cue` (independent of crome.verify),
- upgrade share (upgrades / kept causal pairs),
plus the rejects by reason and the fidelity table per generator. Writes benchmarks/results/fidelity.json (commit and
dirty flag, command, config, seeds, device, library versions, wall time: `common.run_meta`).

    python benchmarks/fidelity.py [--n 1600] [--seeds 0 1 2 3 4]
"""
import argparse, json, time, warnings
from collections import Counter
from pathlib import Path

from crome.augment import causal_augment
from crome.demo import CUES, CueSpec, has_cue, make_demo
from crome.verify import EXEMPT, fidelity_table, spurious_changes
from common import run_meta


def sides(r):
    return (r['chosen'], r['rejected']) if r['direction'] == 'degrade' else (r['rejected'], r['chosen'])


def measure(kind: str, n: int, seed: int) -> dict:
    train = make_demo(n, cues=[CueSpec(kind)], seed=seed)['train']
    t0 = time.time()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        res = causal_augment(train, seed=seed, progress=False)
    secs = time.time() - t0
    rows = res.records
    spur = [bool(spurious_changes(*sides(r), EXEMPT.get(r['attribute'], ()))) for r in rows]
    cue = [has_cue(sides(r)[0], kind) != has_cue(sides(r)[1], kind) for r in rows]
    ups = sum(r['direction'] == 'upgrade' for r in rows)
    ft = fidelity_table(res)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        raw = causal_augment(train, seed=seed, progress=False, verify=False).records  # the same edits, no verifier
    raw_spur = sum(bool(spurious_changes(*sides(r), EXEMPT.get(r['attribute'], ()))) for r in raw) / max(1, len(raw))
    raw_cue = sum(has_cue(sides(r)[0], kind) != has_cue(sides(r)[1], kind) for r in raw) / max(1, len(raw))
    return dict(cue=kind, seed=seed, pairs=len(train), kept_causal=len(rows), upgrades=ups,
                upgrade_share=ups / max(1, len(rows)), spurious_change_rate=sum(spur) / max(1, len(rows)),
                cue_change_rate=sum(cue) / max(1, len(rows)), cue_changes=sum(cue),
                by_generator=dict(Counter(r['generator'] for r in rows)),
                by_attribute_direction=dict(Counter(f"{r['attribute']}:{r['direction']}" for r in rows)),
                rejects_by_reason=dict(Counter(r['reason'] for r in res.reject_records)),
                without_verifier=dict(kept_causal=len(raw), spurious_change_rate=raw_spur, cue_change_rate=raw_cue),
                warnings=[str(x.message)[:300] for x in w], seconds=round(secs, 1),
                fidelity_table=json.loads(ft.to_json(orient='records')))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=1600)
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])  # >= 5 seeds (METHOD 7)
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'fidelity.json'))
    a = ap.parse_args()
    t0 = time.time()
    runs = [measure(k, a.n, s) for s in a.seeds for k in CUES]
    print(f"{'cue':<10} {'seed':>4} {'kept':>6} {'upgr%':>6} {'spur%':>6} {'cue%':>6}  | no verifier: "
          f"{'kept':>6} {'spur%':>6} {'cue%':>6}")
    for r in runs:
        nv = r['without_verifier']
        print(f"{r['cue']:<10} {r['seed']:>4} {r['kept_causal']:>6} {100 * r['upgrade_share']:>6.1f} "
              f"{100 * r['spurious_change_rate']:>6.2f} {100 * r['cue_change_rate']:>6.2f}  |              "
              f"{nv['kept_causal']:>6} {100 * nv['spurious_change_rate']:>6.2f} {100 * nv['cue_change_rate']:>6.2f}")
    for r in runs[:len(CUES)]: print(r['cue'], 'rejects:', r['rejects_by_reason'])
    cfg = dict(n=a.n, cues=list(CUES), rho=CueSpec().rho, strength=CueSpec().strength,
               augmentation='causal_augment offline, offline rubrics, verify=True')
    secs = round(time.time() - t0, 1)
    out = dict(run_meta(cfg, a.seeds), benchmark='fidelity', seconds=secs, wall_seconds=secs,
               targets=dict(spurious_change_rate_max=0.02, upgrade_share_min=0.30), runs=runs)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print('wrote', a.out)


if __name__ == '__main__':
    main()
