#!/usr/bin/env bash
# Builds llama-server, llama-quantize and llama-bench from the llama.cpp source vendored in the
# llama-cpp-python sdist (PyPI is reachable where GitHub may not be), into a per-machine cache keyed by
# that version, so set-up and CI build once per machine. Prints the bin directory on its last line.
set -euo pipefail
version="${LLAMA_CPP_PY_VERSION:-0.3.36}"
cache="${BV_CACHE_DIR:-$HOME/.cache/beyond-vibes}/llama.cpp/$version"
bin="$cache/bin"
if [ -x "$bin/llama-server" ] && [ -x "$bin/llama-quantize" ] && [ -x "$bin/llama-bench" ]; then
  echo "llama.cpp $version: cached in $bin" >&2
  echo "$bin"; exit 0
fi
mkdir -p "$cache/src"
sdist="$cache/src/llama_cpp_python-$version.tar.gz"
if [ ! -f "$sdist" ]; then
  echo "llama.cpp $version: fetching source (llama-cpp-python sdist, ~77 MB)" >&2
  python3 -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$cache/src" >&2
fi
work="$cache/work"
rm -rf "$work" && mkdir -p "$work"
tar -xzf "$sdist" -C "$work"
srcdir="$work/llama_cpp_python-$version/vendor/llama.cpp"
jobs="${LLAMA_CPP_BUILD_JOBS:-$(nproc)}"
echo "llama.cpp $version: building llama-server, llama-quantize, llama-bench with $jobs jobs (~8 min on 2 cores)" >&2
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$srcdir" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_CURL=OFF >"$cache/cmake-configure.log" 2>&1 || { tail -30 "$cache/cmake-configure.log" >&2; exit 1; }
# Ninja prints [n/N] per step, make prints [ NN%]: that is the progress users see. The build's own exit
# status decides success (a progress filter that matched nothing must not fail the build).
set +o pipefail
cmake --build "$work/build" --target llama-server llama-quantize llama-bench -j "$jobs" 2>&1 \
  | tee "$cache/cmake-build.log" | grep --line-buffered -oE '^\[ *[0-9]+(/[0-9]+|%)\]' \
  | while IFS= read -r step; do printf '\r  %s' "$step" >&2; done  # a shell loop: mawk would buffer
echo >&2
status=${PIPESTATUS[0]}
set -o pipefail
[ "$status" -eq 0 ] || { tail -30 "$cache/cmake-build.log" >&2; exit 1; }
mkdir -p "$bin.tmp"
cp "$work/build/bin/llama-server" "$work/build/bin/llama-quantize" "$work/build/bin/llama-bench" "$bin.tmp/"
rm -rf "$bin" && mv "$bin.tmp" "$bin"
rm -rf "$work"
echo "llama.cpp $version: built into $bin" >&2
echo "$bin"
