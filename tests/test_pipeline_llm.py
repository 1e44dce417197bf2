"""The pipeline's LLM path end to end: `crome run` with `oracle.url` pointing at the loopback OpenAI-compatible
server (a real HTTP server on 127.0.0.1). Rubrics, rewrites and verifications go through the real openai client;
a rerun from scratch is served by the oracle cache; the API key is written nowhere."""
import json, re
from pathlib import Path
import pytest
from loopback_server import LoopbackServer, Reply
from test_rubrics import scripted, stage_of
from crome.pipeline import run

KEY = 'sk-crome-test-secret-0123456789'


def llm(call):
    "A fake LLM that answers every prompt the pipeline sends: rubric stages, rewrites, verifications."
    body = call.messages[-1]['content']
    first_user = next(m['content'] for m in call.messages if m['role'] == 'user')
    if any(s in first_user for s in ('Identify exactly 5 attributes', 'Review the rubric for coherence')) or '<attributes>' in first_user:
        return scripted()(call)
    if body.startswith('You check'):
        return Reply(text=json.dumps({'verdict': 'Pass', 'reason': 'Only the attribute changed.'}))
    blocks = [t for tag, t in re.findall(r'<(\w+)>\n(.*?)\n</\1>', body, re.S) if tag == 'answer']
    if blocks:
        return Reply(text=json.dumps({'rewrite': blocks[-1].replace('.', ' (rewritten).', 1)}))
    return Reply(text='no JSON: an unexpected prompt')


def schema_name(body: dict) -> str | None:
    return ((body.get('response_format') or {}).get('json_schema') or {}).get('name')


@pytest.mark.slow
def test_pipeline_with_llm_oracle(tmp_path, monkeypatch):
    monkeypatch.setenv('CROME_LOOPBACK_KEY', KEY)
    with LoopbackServer(llm) as srv:
        cfg = {'name': 'llm', 'out_dir': str(tmp_path / 'run'), 'data': {'n': 60}, 'train': {'steps': 10, 'batch_size': 32},
               'evaluate': {'max_pairs': 6, 'robustness': False},
               'oracle': {'url': srv.url, 'model': 'loopback-model', 'api_key_env': 'CROME_LOOPBACK_KEY', 'max_concurrency': 4}}
        res = run(cfg)
        n_requests = len(srv.requests)
        assert n_requests > 0 and srv.max_in_flight <= 4
        # every call asked for its JSON schema: rewrites for {"rewrite"}, verifications for {"verdict", "reason"}
        asked = {(b['messages'][-1]['content'][:9], schema_name(b)) for b in srv.requests
                 if not schema_name(b) or not schema_name(b).startswith('rubric_')}
        assert {n for _, n in asked} == {'rewrite', 'verdict'} and ('You check', 'verdict') in asked, asked
        import pandas as pd
        aug = pd.read_parquet(tmp_path / 'run' / 'augment' / 'crome.parquet')
        causal = aug[aug.kind == 'causal']
        assert len(causal) > 0 and set(causal.generator) == {'llm:loopback-model'} and set(causal.verdict) == {'pass'}
        side = causal.apply(lambda r: r['rejected'] if r['direction'] == 'degrade' else r['chosen'], axis=1)
        assert side.str.contains('(rewritten)', regex=False).all()  # the rewrite sits on the side its direction says
        rub = json.loads(pd.read_parquet(tmp_path / 'run' / 'rubrics' / 'train.parquet').rubric.iloc[0])
        assert len(rub['attributes']) == 5
        # rerun from scratch (state removed): every oracle answer comes from the cache, no new request
        (tmp_path / 'run' / 'state.json').unlink()
        again = run(cfg)
        assert len(srv.requests) == n_requests and 'augment:crome' in again['ran']
    # the key itself is in no file the run wrote (config, datasets, cache, report)
    for f in (tmp_path / 'run').rglob('*'):
        if f.is_file(): assert KEY.encode() not in f.read_bytes(), f
    assert (tmp_path / 'run' / 'report.html').exists()
    assert set(res['accuracy']['recipe']) == {'vanilla', 'rrm', 'crome', 'length', 'cosine'}  # + the baselines
