#!/usr/bin/env bash
# End-to-end suite: the BFF against the independent OpenID Provider
# oidc-provider (npm), driven by Debian's chromium through playwright-core.
# Installs what it needs, builds the bff binary into a temp dir, runs
# `node --test` on e2e/*.test.mjs once per deployment shape (http, the BFF's
# own TLS, a TLS-terminating proxy); exits non-zero on any failure.
# Everything listens on 127.0.0.1 only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
started=$SECONDS

log() { printf '[e2e] %s\n' "$*" >&2; }

command -v node >/dev/null || { log "node is required (>= 20)"; exit 1; }
command -v npm >/dev/null || { log "npm is required"; exit 1; }
command -v go >/dev/null || { log "go is required"; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then log "node >= 20 required, found $(node -v)"; exit 1; fi

export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM_PATH" ]; then
  log "installing chromium (apt-get)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
[ -x "$CHROMIUM_PATH" ] || { log "chromium not found at $CHROMIUM_PATH"; exit 1; }

log "npm ci"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

tmp="$(mktemp -d "${TMPDIR:-/tmp}/bff-e2e.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log "building bff"
(cd "$repo" && go build -o "$tmp/bff" ./cmd/bff)
export BFF_BIN="$tmp/bff"

cd "$here"
status=0
# Every file runs in each deployment shape (harness.mjs): plain http, the
# BFF's own TLS listener, and behind a TLS-terminating proxy. The https
# shapes are the production ones: only there do browsers enforce the
# __Host- cookie rules. E2E_SHAPES="tls" runs one shape.
for shape in ${E2E_SHAPES:-http tls proxy}; do
  log "running tests, shape $shape"
  shape_started=$SECONDS
  # One file at a time: each starts its own OP, BFF and browser, and the
  # refresh test depends on timing.
  E2E_SHAPE="$shape" node --test --test-concurrency=1 --test-timeout=120000 --test-reporter=spec ./*.test.mjs || status=$?
  log "shape $shape took $((SECONDS - shape_started))s"
done
log "finished in $((SECONDS - started))s, exit $status"
exit "$status"
