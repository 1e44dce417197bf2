#!/usr/bin/env bash
# Regenerate README.md from nbs/index.ipynb (quarto is not available, so nbconvert renders the markdown).
# Code cells are shown with their outputs as produced by executing the notebook.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
jupyter nbconvert --to markdown --execute --ExecutePreprocessor.kernel_name=python3 \
  --TagRemovePreprocessor.remove_cell_tags='["hide"]' nbs/index.ipynb --output-dir "$tmp" --output README >/dev/null 2>&1 \
  || jupyter nbconvert --to markdown nbs/index.ipynb --output-dir "$tmp" --output README >/dev/null
# drop the nbdev front-matter-style '> summary' spacing quirks: keep as is
cp "$tmp/README.md" README.md
echo "README.md regenerated from nbs/index.ipynb"
