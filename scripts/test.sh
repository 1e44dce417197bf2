#!/usr/bin/env bash
# The whole test suite from a fresh clone: set up .venv, check notebooks and library are in sync,
# then pytest (plain tests in tests/ plus every notebook through a parametrized test).
# Pass extra pytest arguments through, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
source .venv/bin/activate
export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE TOKENIZERS_PARALLELISM=false
bash scripts/check_sync.sh
ruff check crome  # the linter (ruff.toml): undefined names, syntax errors; line length is in tests/test_structure.py
set +e
python -m pytest "$@"
rc=$?
set -e
# pytest exit 5 = no tests collected: that is a failure here, not a pass
[ $rc -eq 5 ] && { echo "no tests were collected" >&2; exit 1; }
exit $rc
