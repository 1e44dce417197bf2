#!/usr/bin/env bash
# Fail if `nbdev_clean` or `nbdev_export` would change anything: notebooks must be clean and the
# library must be exactly what the notebooks export. Works on uncommitted trees (hash compare).
set -euo pipefail
cd "$(dirname "$0")/.."
snap() { find nbs crome -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' -print0 | sort -z | xargs -0 sha256sum; }
before=$(snap)
nbdev_clean >/dev/null
nbdev_export
after=$(snap)
if [ "$before" != "$after" ]; then
  echo "ERROR: notebooks and library are out of sync (nbdev_clean/nbdev_export changed these files):" >&2
  diff <(echo "$before") <(echo "$after") | grep '^[<>]' | awk '{print $3}' | sort -u >&2
  echo "Run nbdev_clean && nbdev_export and commit the result." >&2
  exit 1
fi
echo "[sync] notebooks and crome/ are in sync"
