"""README.md is generated from nbs/index.ipynb (scripts/readme.sh): every markdown and code cell of the
notebook must appear in it verbatim, and it must name exactly the two commands the CI and users run."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_in_sync_with_index():
    nb = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())
    readme = (ROOT / 'README.md').read_text()
    for cell in nb['cells']:
        src = ''.join(cell['source']).strip()
        assert src in readme, f'README.md is stale (run scripts/readme.sh); missing:\n{src[:200]}'


def test_readme_commands_exist():
    readme = (ROOT / 'README.md').read_text()
    for cmd in ('bash scripts/demo.sh', 'bash scripts/test.sh'):
        assert cmd in readme and (ROOT / cmd.split()[1]).exists()
    assert 'scripts/test.sh' in (ROOT / '.ci' / 'run').read_text()
