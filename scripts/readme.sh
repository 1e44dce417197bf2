#!/usr/bin/env bash
# Regenerate README.md from nbs/index.ipynb (quarto is not available, so nbconvert renders the markdown).
# Code cells are shown with their outputs as produced by executing the notebook.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
# The tour reads the public data sets: set CROME_DATA to their folder (`crome data get` fetches them). A failed
# execution is an error, never a README without outputs.
if ! jupyter nbconvert --to markdown --execute --ExecutePreprocessor.kernel_name=python3 \
  --TagRemovePreprocessor.remove_cell_tags='["hide"]' nbs/index.ipynb --output-dir "$tmp" --output README \
  >"$tmp/log" 2>&1; then
  tail -n 30 "$tmp/log" >&2; echo "README.md NOT regenerated: executing nbs/index.ipynb failed (above)" >&2; exit 1
fi
# outputs name the data folder `$CROME_DATA`, never this machine's path to it; directive lines are dropped
python - "$tmp/README.md" <<'PY'
import os, sys
from pathlib import Path
d = Path(os.environ.get('CROME_DATA') or Path.home() / '.cache' / 'crome' / 'data')
p = Path(sys.argv[1]); text = p.read_text()
for s in sorted({str(d).rstrip('/'), str(d.resolve())}, key=len, reverse=True): text = text.replace(s, '$CROME_DATA')
import re  # nbdev directives (`#| data`: a cell that reads the public sets) are for the test runner, not readers
text = re.sub(r'(```python\n)(?:#\|[^\n]*\n)+', r'\1', text)
p.write_text(text)
PY
cp "$tmp/README.md" README.md
echo "README.md regenerated from nbs/index.ipynb"
