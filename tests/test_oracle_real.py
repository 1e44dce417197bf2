"""A real model end to end: the bundled SmolLM2-135M-Instruct (GGUF, located without importing its package) as a
local transformers oracle with constrained decoding runs the rubric stages, one causal rewrite and one verification
on 3 demo pairs. A 135M model's content is poor; the point is that every reply has the requested shape and every
failure is recorded with its reason. ~2-3 minutes on an idle 2-core machine (marked slow)."""
import sys, time, warnings
from pathlib import Path
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'benchmarks'))


@pytest.mark.slow
def test_smollm2_constrained_rubrics_rewrite_and_verification(tmp_path):
    import torch
    from oracle_real import load_smollm2
    from crome.demo import make_demo
    from crome.rubrics import rubricate, rubrics_of, offline_rubric
    from crome.augment import rewrite_messages, verify_messages
    from crome.llm_rewrite import VERDICT_FORMAT, parse_rewrite, parse_verdict_reply, rewrite_format
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    o = load_smollm2(batch_size=3, cache=tmp_path / 'cache')
    assert o.constrained == 'llguidance' and o.model == 'SmolLM2-135M-Instruct.Q4_1.gguf' and o.endpoint.endswith('.gguf')
    ds = make_demo(40, seed=0)['train'].select(range(3))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # a failed rubric warns; it is checked below
        out = rubricate(ds, oracle=o, review=False, progress=False)
    errs, rubs = list(out['rubric_error']), rubrics_of(out)
    for e, r in zip(errs, rubs):  # a rubric, or a failure with its reason: never both, never neither
        assert (r is None) == bool(e) and (r is None or len(r.attributes) == 5)
    assert o.stats['requests'] >= 6 and o.stats['errors'] == 0, o.stats
    # every constrained reply parsed as JSON: failures, if any, are semantic (weights, names), not syntax
    assert not any('no JSON object' in e or 'the reply is empty' in e for e in errs), errs
    row = ds[0]
    rub = rubs[0] or offline_rubric(row['prompt'], row['chosen'], row['rejected'])
    attr = rub.attributes[0].name
    rw = o.complete(rewrite_messages(row['prompt'], row['chosen'], attr, 'degrade'),
                    response_format=rewrite_format(row['chosen']), max_tokens=400)
    new, why = parse_rewrite(rw.text)
    assert rw.ok and not rw.truncated and new and why is None, rw
    vf = o.complete(verify_messages(row['prompt'], row['chosen'], new, attr, 'degrade'), response_format=VERDICT_FORMAT,
                    max_tokens=120)
    assert vf.ok and not vf.truncated and parse_verdict_reply(vf.text)[0] in ('pass', 'fail'), vf
    n, cut = o.stats['requests'], o.stats['truncated']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        again = rubricate(ds, oracle=o, review=False, progress=False)  # a rerun is served by the cache
    assert list(again['rubric']) == list(out['rubric']) and o.stats['requests'] - n <= cut  # only cut replies asked again
    assert time.perf_counter() - t0 < 600
