#!/usr/bin/env bash
# Copy host Python interpreters into the agent toolchain: scripts/toolchain-pythons.sh TOOLCHAIN_DIR VERSION...
# For each X.Y: an interpreter uv finds (uv-managed or on PATH, downloads off), else a pyenv version X.Y.*. One under
# /usr is visible inside the sandbox as it is and only linked; any other is copied whole (its test suite left out)
# to TOOLCHAIN/pythons/X.Y with its library path made relative (patchelf), so it runs from /opt/bv/toolchain as any
# user; TOOLCHAIN/pythons/bin/pythonX.Y runs each (the sandbox's PATH has that folder). Prints one line per
# version; exit 0 even when a version has no source (the note says so).
set -uo pipefail
tc="$1"; shift
patchelf="$tc/bin/patchelf"
for v in "$@"; do
  exe="$(UV_PYTHON_DOWNLOADS=never uv python find --no-project --system "$v" 2>/dev/null || true)"
  case "$exe" in */shims/*) exe="";; esac   # a pyenv shim only works in its owner's shell
  if [ -z "$exe" ] || ! "$exe" -c 'import sys; assert sys.version_info[:2] == tuple(map(int, sys.argv[1].split(".")))' "$v" 2>/dev/null; then
    exe="$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -V | tail -1)"
  fi
  if [ -z "$exe" ]; then
    echo "python$v: none on this machine (uv python find, pyenv); tasks that require it stop as harness errors"
    continue
  fi
  prefix="$("$exe" -c 'import sys; print(sys.base_prefix)')"
  if [[ "$prefix" == /usr || "$prefix" == /usr/* ]]; then
    mkdir -p "$tc/pythons/bin"
    ln -sf "$("$exe" -c 'import os, sys; print(os.path.realpath(sys.executable))')" "$tc/pythons/bin/python$v"
    echo "python$v: linked $exe (visible in the sandbox under /usr)"
    continue
  fi
  dest="$tc/pythons/$v"
  mkdir -p "$tc/pythons/bin" && rm -rf "$dest"
  cp -a "$prefix" "$dest" && rm -rf "$dest/lib/python$v/test" "$dest/lib/python$v/idlelib/idle_test"
  real="$dest/bin/$(basename "$(readlink -f "$exe")")"
  "$patchelf" --set-rpath '$ORIGIN/../lib' "$real"
  find "$dest/lib" -name '*.so*' -type f -exec "$patchelf" --remove-rpath {} \; 2>/dev/null
  chmod -R a+rX "$dest"
  # pythons/bin/pythonX.Y execs the copy: not a link in the venv's bin/ (beside a pyvenv.cfg the interpreter takes the
  # venv's home), and not a link at all (a venv made from a link records the link's folder as its home, which has no
  # standard library; exec'd, the interpreter reports its real path).
  printf '#!/bin/sh\nexec "$(dirname "$(readlink -f "$0")")/../%s/bin/%s" "$@"\n' "$v" "$(basename "$real")" \
    > "$tc/pythons/bin/python$v" && chmod 0755 "$tc/pythons/bin/python$v"
  "$tc/pythons/bin/python$v" -c 'import ssl, sqlite3, venv' \
    || { echo "python$v: the copy of $prefix does not run"; rm -rf "$dest" "$tc/pythons/bin/python$v"; exit 1; }
  echo "python$v: copied from $prefix"
done
