#!/usr/bin/env bash
# Checks the SPA in CI: installs its locked dependencies (npm ci), type-checks
# it, runs the helpers' tests (test/), builds it into a temporary directory and compares that with the
# committed static/dist, which the binary embeds. A change to the sources
# without a rebuilt, committed dist fails here (and in the Go test
# static.TestCommittedBuildMatchesSources, which needs no npm).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
command -v npm >/dev/null || { echo "npm is required (Node >= 20.19)" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
npx tsc --noEmit
node build-stamp.mjs --check
tmp="$(mktemp -d "${TMPDIR:-/tmp}/bff-spa.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# The helpers' contract tests run in Node against a real HTTP server.
npx tsc src/bff.ts --outDir "$tmp/helpers" --target ES2022 --module ES2022 --moduleResolution bundler \
  --lib ES2022,DOM,DOM.Iterable --strict --skipLibCheck
BFF_HELPERS="$tmp/helpers/bff.js" node --test --test-reporter=dot test/
npx vite build --logLevel warn --outDir "$tmp/dist" --emptyOutDir
cp dist/source-hash.txt "$tmp/dist/"
if ! diff -r "$tmp/dist" dist >/dev/null; then
  echo "static/dist differs from a fresh build of static/src:" >&2
  diff -r "$tmp/dist" dist | head -20 >&2 || true
  echo "run \`npm run build\` in static/ and commit dist/" >&2
  exit 1
fi
echo "static/dist is the build of its sources"
