"""Review fixes: compare credits the right run, sweep folders never collide, rewrites lose the prompt's tag escapes,
JSON is found past brackets in prose, Rubric[name] is a KeyError, a split's file and its .gz copy are an error."""
import gzip, json
from pathlib import Path
import pandas as pd
import pytest
import yaml
from crome.compare import compare_runs, format_compare
from crome.config import ConfigError, load_config
from crome.llm_rewrite import parse_rewrite, parse_verdict_reply, quote, same_text, unquote
from crome.readers import data_files, read_rows
from crome.rubric_models import RubricParseError, extract_json, parse_attributes, parse_elements, parse_review
from crome.schema import CromeDataError
from crome.sweep import parse_vary, run_sweep, sweep_configs


def _run(root: Path, name: str, recipes: list, right: dict, steps: int) -> Path:
    "A run folder with what compare_runs reads (config, validation pairs, validation verdicts)."
    d = root / name; (d / 'data').mkdir(parents=True); (d / 'metrics').mkdir()
    (d / 'config.yaml').write_text(yaml.safe_dump({'name': name, 'out_dir': str(d), 'seed': 0,
                                                   'train': {'steps': steps, 'recipes': recipes, 'seeds': [0, 1]}}))
    pd.DataFrame([dict(prompt=f'p{i}', chosen='a', rejected='b', label=1.0) for i in range(40)]
                 ).to_parquet(d / 'data/validation.parquet')
    pd.DataFrame([dict(recipe=r, seed=s, split='validation', pair=i, correct=int(i < right[r]))
                  for r in recipes for s in (0, 1) for i in range(40)]).to_csv(d / 'metrics/val_verdicts.csv', index=False)
    return d


def test_compare_credits_best_run_when_reference_lacks_recipe(tmp_path):
    runs = [_run(tmp_path, 'ref', ['vanilla'], {'vanilla': 24}, 5),
            _run(tmp_path, 'b', ['vanilla', 'crome'], {'vanilla': 24, 'crome': 30}, 7),
            _run(tmp_path, 'c', ['vanilla', 'crome'], {'vanilla': 24, 'crome': 20}, 9)]
    out = format_compare(compare_runs(runs, n_boot=200))
    crome = out.split('validation / crome:')[1]
    assert f'highest: {runs[1]} (' in crome and 'vs the first run: not in the first run' in crome
    assert 'highest: the first run' not in crome
    assert 'highest: the first run (' in out.split('validation / crome:')[0]  # a tie in vanilla: the reference


def test_compare_says_the_seeds_its_difference_is_on(tmp_path):
    "Reference on seed 0, a run on seeds 0-2: its pooled accuracy is highest, its paired difference is on seed 0 only."
    runs = []
    for name, right in (('ref', {0: 30}), ('more', {0: 20, 1: 38, 2: 38})):
        d = tmp_path / name; (d / 'data').mkdir(parents=True); (d / 'metrics').mkdir()
        (d / 'config.yaml').write_text(yaml.safe_dump({'name': name, 'out_dir': str(d), 'seed': 0,
                                                       'train': {'recipes': ['crome'], 'seeds': sorted(right)}}))
        pd.DataFrame([dict(prompt=f'p{i}', chosen='a', rejected='b', label=1.0) for i in range(40)]
                     ).to_parquet(d / 'data/validation.parquet')
        pd.DataFrame([dict(recipe='crome', seed=s, split='validation', pair=i, correct=int(i < r))
                      for s, r in right.items() for i in range(40)]).to_csv(d / 'metrics/val_verdicts.csv', index=False)
        runs.append(d)
    t = compare_runs(runs, n_boot=200)
    assert t.accuracy[1] > t.accuracy[0] and t.seeds.tolist() == [1, 3]  # pooled over seeds 0, 1, 2
    assert t.diff_seeds[1] == [0] and abs(t['diff'][1] + 0.25) < 1e-12  # on the shared seed: 20/40 vs 30/40
    assert t.verdict[1].endswith('(significant) (on seeds [0])'), t.verdict[1]
    out = format_compare(t)
    assert f'highest: {runs[1]} (train.seeds=[0, 1, 2]); vs the first run: -0.250' in out, out
    assert out.endswith('(on seeds [0])'), out


def test_sweep_labels_that_collapse_get_a_hash_and_equal_values_are_an_error(tmp_path):
    base = load_config({'name': 'tune', 'out_dir': str(tmp_path / 'tune')})
    done = run_sweep(base, ['data.source=v1/pairs.jsonl,v1_pairs.jsonl'],
                     runner=lambda c: {'dir': str(c.run_dir), 'ran': []})
    dirs = [r['dir'] for *_, r in done]
    assert len(set(dirs)) == 2 and all('source=v1_pairs.jsonl@' in d for d in dirs)
    assert [c.data.source for _, c, _ in done] == ['v1/pairs.jsonl', 'v1_pairs.jsonl']
    for vals, msg in (('filter.tau=0.3,0.30', "'0.3' and '0.30' are the same value"),
                      ('train.lr=1e-4,0.0001', "'1e-4' and '0.0001' are the same value")):
        with pytest.raises(ConfigError, match=msg): parse_vary([vals])
    seen = []
    with pytest.raises(ConfigError, match='lambda_tie=1 and train.lambda_tie=1.0 make the same run'):
        run_sweep(base, {'train.lambda_tie': [1, 1.0]}, runner=lambda c: seen.append(c))
    assert seen == []  # refused before any run
    assert [lab for lab, _ in sweep_configs(base, parse_vary(['filter.tau=0.2,0.3']))] == ['tau=0.2', 'tau=0.3']


def test_rewrite_loses_the_prompts_tag_escapes():
    orig = 'Wrap it: <answer>42</answer> and <text>hi</text>.'
    assert quote(orig) != orig and unquote(quote(orig)) == orig
    reply = json.dumps({'reasoning': 'r', 'rewrite': quote('Wrap it: <answer>43</answer> and <text>hi</text>.')})
    assert parse_rewrite(reply) == ('Wrap it: <answer>43</answer> and <text>hi</text>.', None)
    assert same_text(parse_rewrite(json.dumps({'rewrite': quote(orig)}))[0], orig)  # a copy is still no rewrite
    assert parse_rewrite('{"rewrite": "&lt;div&gt; &amp; &lt;/Text&gt;"}') == ('&lt;div&gt; &amp; </Text>', None)


def test_json_past_brackets_in_prose():
    attrs = [dict(name=n, description='measures ' + n, weight=0.2) for n in 'abcde']
    good = json.dumps({'attributes': [{**a, 'name': 'attr_' + a['name']} for a in attrs]})
    r = parse_attributes('Using the criteria from step [1] of the guide:\n' + good)
    assert r.names == ['attr_a', 'attr_b', 'attr_c', 'attr_d', 'attr_e']
    assert parse_attributes(good).names == r.names and parse_attributes('```json\n' + good + '\n```').names == r.names
    els = [{'description': f'element {k}', 'direction': '+'} for k in range(5)]
    full = parse_elements('See [1, 2]: ' + json.dumps({'elements': {n: els for n in r.names}}), r)
    assert parse_review('Items [3] fine. {"verdict": "ok"}', full).review == 'ok'
    assert parse_rewrite('keep items [1, 2]\n{"reasoning": "x", "rewrite": "New."}') == ('New.', None)
    assert parse_verdict_reply('see [1]\n{"verdict": "Fail", "reason": "longer"}') == ('fail', 'longer')
    assert extract_json('x {"a": 1} y {"b": 2}') == {'a': 1}  # no shape asked: the first, as before
    with pytest.raises(RubricParseError, match='exactly 5 attributes, got 1'): parse_attributes('[{"name": "x"}]')
    with pytest.raises(KeyError, match="'nope': not an attribute of this rubric .*attr_a, attr_b"): r['nope']
    assert r['attr_c'].name == 'attr_c'


def test_file_and_its_gz_copy_in_one_split_are_an_error(tmp_path):
    line = json.dumps({'prompt': 'p', 'chosen': 'a', 'rejected': 'b'}) + '\n'
    (tmp_path / 'train.jsonl').write_text(line)
    (tmp_path / 'train.jsonl.gz').write_bytes(gzip.compress(line.encode()))
    with pytest.raises(CromeDataError, match=r'train.jsonl: is also in split .train. compressed or not, as '
                                             r'train.jsonl.gz'):
        data_files(tmp_path)
    (tmp_path / 'train.jsonl').unlink()
    assert len(list(read_rows(tmp_path))) == 1  # the .gz alone is read, once
    (tmp_path / 'train2.jsonl').write_text(line)  # other stems: two files, both read
    assert [f.name for f, _ in data_files(tmp_path)] == ['train.jsonl.gz', 'train2.jsonl']
