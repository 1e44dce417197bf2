"The accelerator benchmark script (issue 17 item 6) runs end to end here in its --quick form and writes its JSON."
import json, subprocess, sys
from pathlib import Path
import pytest
from conftest import needs_data

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@needs_data
def test_device_speed_quick_writes_every_measurement(tmp_path):
    out = tmp_path / 'device_speed.json'
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'device_speed.py'), '--quick', '--out', str(out)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(out.read_text())
    assert d['benchmark'] == 'device_speed' and d['quick'] is True and d['device_name'] and d['commit']
    assert set(d['runs']) == {'minilm_packed', 'minilm_padded', 'smollm2_pairpm'}
    for name, run in d['runs'].items():
        assert run['pairs_per_s'] > 0 and run['nonpad_tokens_per_s'] > 0 and run['useful_flops_per_s'] > 0, name
    assert d['runs']['smollm2_pairpm']['config']['model_type'] == 'pairpm'
    s = d['scoring']
    assert s['texts'] == 32 and s['texts_per_s']['crome'] > 0 and s['texts_per_s']['pipeline'] > 0
    assert s['max_abs_diff_untruncated'] is not None and s['max_abs_diff_untruncated'] < 1e-4  # same scores


@pytest.mark.slow
@needs_data
def test_device_speed_runs_from_a_prepared_folder_alone(tmp_path):
    "The path a bare lent machine takes: --prepare here, then --models with random-init weights and no CROME_DATA."
    import os
    prep, out = tmp_path / 'prep', tmp_path / 'd.json'
    script = str(ROOT / 'benchmarks' / 'device_speed.py')
    r = subprocess.run([sys.executable, script, '--prepare', str(prep)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not list(prep.rglob('*.safetensors')) and not list(prep.rglob('*.gguf'))  # configs only: they travel
    assert (prep / 'data' / 'hh-rlhf' / 'harmless-base' / 'test.jsonl.gz').exists()
    commit = (prep / 'commit').read_text().strip()
    env = {k: v for k, v in os.environ.items() if k not in ('CROME_DATA', 'CROME_SHARED_DATA')}
    r = subprocess.run([sys.executable, script, '--models', str(prep), '--quick', '--out', str(out)],
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(out.read_text())
    assert d['weights'].startswith('random-init') and d['commit'] == commit.removesuffix('+dirty')
    assert d['dirty'] == commit.endswith('+dirty')
    assert d['runs']['smollm2_pairpm']['config']['model'] == 'smollm2 (config)'
    assert d['scoring']['max_abs_diff_untruncated'] < 1e-4


@pytest.mark.slow
@needs_data
def test_device_speed_scoring_only_measures_each_batch_with_tokenizer_threads_off_and_on(tmp_path):
    out = tmp_path / 's.json'
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'device_speed.py'), '--quick', '--scoring-only',
                        '--score-batches', '4,8', '--out', str(out)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(out.read_text())
    assert d['runs'] == {} and 'scoring' not in d
    V = d['scoring_variants']
    kinds = list(dict.fromkeys(v['texts_kind'] for v in V))  # --quick cuts at 128 tokens: no long texts
    assert kinds == ['short (<= 64 tokens)', 'mixed (all lengths)']
    assert [(v['batch'], v['tokenizers_parallelism']) for v in V] == [(4, False), (4, True), (8, False), (8, True)] * 2
    n = {v['texts_kind']: v['texts'] for v in V}
    assert 0 < n['short (<= 64 tokens)'] < n['mixed (all lengths)'] <= 64  # 32 pairs, both answers, untruncated
    assert all(v['tokens_median'] <= 64 for v in V if v['texts_kind'].startswith('short'))
    for v in V:
        assert 0 < v['encode_s'] < v['crome_s'] and v['max_abs_diff_untruncated'] < 1e-4
