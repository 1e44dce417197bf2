"""README.md is generated from nbs/index.ipynb (scripts/readme.sh): every markdown and code cell of the
notebook must appear in it verbatim, and it must name exactly the two commands the CI and users run."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_in_sync_with_index():
    nb = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())
    readme = (ROOT / 'README.md').read_text()
    for cell in nb['cells']:
        src = '\n'.join(ln for ln in ''.join(cell['source']).splitlines() if not ln.startswith('#|')).strip()
        assert src in readme, f'README.md is stale (run scripts/readme.sh); missing:\n{src[:200]}'


def test_readme_commands_exist():
    readme = (ROOT / 'README.md').read_text()
    for cmd in ('bash scripts/demo.sh', 'bash scripts/test.sh'):
        assert cmd in readme and (ROOT / cmd.split()[1]).exists()
    assert 'scripts/test.sh' in (ROOT / '.ci' / 'run').read_text()


def test_run_notebooks_makes_outputs_small_and_stable(monkeypatch, tmp_path):
    import sys, nbformat
    sys.path.insert(0, str(ROOT / 'scripts'))
    import run_notebooks as R
    monkeypatch.setenv('CROME_DATA', str(tmp_path))
    nb = nbformat.v4.new_notebook()
    c = nbformat.v4.new_code_cell('x')
    c.outputs = [nbformat.v4.new_output('stream', name='stderr', text='fit: 100%|####| 3/3 [00:00<00:00, 9.1it/s]'),
                 nbformat.v4.new_output('stream', name='stdout', text=f'read {tmp_path}/gsm8k/train.jsonl\n' + 'x\n' * 99),
                 nbformat.v4.new_output('display_data', data={'application/vnd.plotly.v1+json': {'data': [], 'layout': {}},
                                                              'text/html': '<script src="https://cdn.plot.ly/x.js">'})]
    nb.cells = [c]
    figs = R.clean_outputs(nb, max_lines=10)
    outs = nb.cells[0].outputs
    assert len(outs) == 2 and outs[0].text.startswith('read $CROME_DATA/gsm8k/train.jsonl') and '... (91 more lines)' in outs[0].text
    assert len(figs) == 1 and 'text/html' not in outs[1].data


def test_api_reference_lists_public_names():
    import sys
    sys.path.insert(0, str(ROOT / 'scripts'))
    import build_docs
    page = build_docs.api_html('<nav></nav>')
    for name in ('load_pairs', 'fetch_data', 'PairBrowser', 'build_report', 'vulnerabilities', 'shift_figure'):
        assert f'<b>{name}</b>' in page, name
    assert 'href="01_data.html"' in page and 'could not import' not in page


def test_manual_install_brings_the_test_toolchain():
    "Review: the README's `pip install -c constraints.txt -e .[dev,llm]` left out nbdev, which the tests need."
    import configparser, shlex
    cfg = configparser.ConfigParser(); cfg.read(ROOT / 'settings.ini')
    dev = shlex.split(cfg['DEFAULT']['dev_requirements'])
    pins = [ln.strip() for ln in (ROOT / 'constraints.txt').read_text().splitlines() if ln.strip() and ln[0] != '#']
    assert [p for p in pins if not p.startswith('torch')] == ['nbdev==2.4.14', 'fastcore<1.13', 'execnb<0.2']
    assert all(p in dev for p in pins if not p.startswith('torch')), dev  # the dev extra carries the same pins
    assert 'pip install -c constraints.txt -e ".[dev,llm]"' in (ROOT / 'README.md').read_text()
    assert '-e ".[dev,llm,trl]"\n' in (ROOT / 'scripts' / 'setup_env.sh').read_text()  # no second copy of the pins


def test_docs_and_library_name_no_file_outside_the_project():
    "Review: prose and the library cited METHOD.md, FINDINGS.md and ../shared, which a user's clone does not have."
    import re
    outside = re.compile(r'\b(?:METHOD|FINDINGS|DESIGN|ENVIRONMENT)\.md\b|\.\./shared\b|/work/')
    files = [*sorted((ROOT / 'crome').glob('*.py')), *sorted((ROOT / 'nbs').glob('*.ipynb')), ROOT / 'README.md']
    bad = [f'{p.relative_to(ROOT)}:{i}: {ln.strip()[:80]}' for p in files
           for i, ln in enumerate(p.read_text().splitlines(), 1) if outside.search(ln)]
    assert not bad, 'point at the project (e.g. nbs/00a_method.ipynb) or state the fact inline:\n' + '\n'.join(bad)


def test_results_cell_runs_from_the_repository_root_and_from_nbs(monkeypatch):
    "Review: the README's results snippet opened '../benchmarks/...', which fails where a reader runs it (the root)."
    nb = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())
    src = next(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code' and 'RESULTS.md' in ''.join(c['source']))
    *body, last = src.strip().splitlines()
    want = (ROOT / 'benchmarks' / 'results' / 'RESULTS.md').read_text()
    for cwd in (ROOT, ROOT / 'nbs'):
        monkeypatch.chdir(cwd); ns = {}
        exec('\n'.join([*body, f'_out = {last}']), ns)
        assert ns['_out'].data == want, cwd


def test_backbone_section_names_real_entry_points():
    "The README's 'Bring your own backbone' names a config key, a module flag and two constructors that exist."
    import inspect
    from crome.config import TrainSettings
    from crome.frozen import FrozenRewardModel
    from crome.model import RewardModel
    from crome.train import _main  # main wraps it with one-line errors
    from crome.train_config import TrainConfig
    readme = (ROOT / 'README.md').read_text()
    for s in ('train: {backbone: ', 'python -m crome.train pairs.jsonl --recipe crome --model',
              "FrozenRewardModel(backbone='", "RewardModel.from_pretrained('", 'crome train --data'):
        assert s in readme, s
    assert {'backbone', 'max_length'} <= set(TrainSettings.model_fields) and 'model' in TrainConfig.__dataclass_fields__
    assert 'backbone' in inspect.signature(FrozenRewardModel).parameters
    assert 'path' in inspect.signature(RewardModel.from_pretrained).parameters and "'model'" in inspect.getsource(_main)
