#!/usr/bin/env bash
# Bounded load test of dsv4 serve (tests/e2e/node/load_test.mjs): 64 concurrent streaming clients, 256
# requests, zero errors, every stream well formed, KV pages and resident memory back to baseline. Needs only
# node (>= 18, for fetch); skips (77) without it or without the dsv4 binary.
# Usage: e2e_server_load.sh BUILD_DIR REPO_ROOT   (env DSV4_LOAD_CLIENTS, DSV4_LOAD_REQUESTS, DSV4_LOAD_MAX_TOKENS)
set -euo pipefail
build=$(cd "$1" && pwd)
repo=$(cd "$2" && pwd)
[ -x "$build/dsv4" ] || { echo "skip: $build/dsv4 not built"; exit 77; }
command -v node >/dev/null || { echo "skip: node not installed"; exit 77; }
DSV4_BUILD="$build" DSV4_REPO="$repo" timeout 500 node "$repo/tests/e2e/node/load_test.mjs"
