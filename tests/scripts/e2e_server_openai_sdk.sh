#!/usr/bin/env bash
# dsv4 serve driven by the official OpenAI Node SDK (tests/e2e/node/openai_sdk.test.mjs, node:test). The SDK
# (pinned in tests/e2e/node/package.json) is installed into BUILD_DIR/node-e2e once; skips (77) when node/npm
# are missing, the registry is unreachable, or dsv4 is not built.
# Usage: e2e_server_openai_sdk.sh BUILD_DIR REPO_ROOT
set -euo pipefail
build=$(cd "$1" && pwd)
repo=$(cd "$2" && pwd)
[ -x "$build/dsv4" ] || { echo "skip: $build/dsv4 not built"; exit 77; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "skip: node/npm not installed"; exit 77; }
dir="$build/node-e2e"
mkdir -p "$dir"
cp "$repo"/tests/e2e/node/*.mjs "$repo/tests/e2e/node/package.json" "$dir/"
if ! cmp -s "$repo/tests/e2e/node/package.json" "$dir/.installed" || [ ! -d "$dir/node_modules/openai" ]; then
  if ! (cd "$dir" && npm install --no-audit --no-fund --silent >/dev/null 2>&1); then
    echo "skip: npm install failed (no registry access?)"; exit 77
  fi
  cp "$repo/tests/e2e/node/package.json" "$dir/.installed"
fi
cd "$dir"
DSV4_BUILD="$build" DSV4_REPO="$repo" node --test --test-concurrency=1 openai_sdk.test.mjs scripted_tools.test.mjs
