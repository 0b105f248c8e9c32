#!/usr/bin/env bash
# The browser tests: starts a fresh development server (SQLite, demo data, a free port) from
# this checkout's debug binary, with PUSHHAND_CORS_ORIGINS naming one other origin
# (http://localhost:<a free port>), and runs in headless Chromium, with every other host cut
# off: ide.mjs (the IDE the binary serves) and origins.mjs (an Apollo Client storefront on
# that origin, and a page on an origin not allowed). Installs Debian's `chromium` and the npm
# packages (playwright-core, Apollo Client, graphql-ws, esbuild: pinned by package-lock.json)
# when they are missing or the lock changed. The screenshots go to the directory given as the
# first argument (default: $PUSHHAND_ARTIFACTS/browser, else
# /var/tmp/pushhand-ci-artifacts/browser), kept outside the clone as CI's artifacts.
#
#   bash tests/browser/run.sh [screenshot-dir]     # what .ci/run calls
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-${PUSHHAND_ARTIFACTS:-/var/tmp/pushhand-ci-artifacts}/browser}"
target="${CARGO_TARGET_DIR:-target}"

if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# Installed again whenever package-lock.json differs from the one installed.
if ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.installed-lock.json; then
  echo "installing the npm packages (package-lock.json)"
  (cd tests/browser && npm ci --no-audit --no-fund --silent &&
    cp package-lock.json node_modules/.installed-lock.json)
fi
cargo build --quiet --bin pushhand

# A free port for the storefront's origin (chosen now: the server's CORS list names it).
pages_port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
  console.log(s.address().port); s.close(); })')"

data="$(mktemp -d)"
log="$data/server.log"
env -u DATABASE_URL -u REDIS_URL -u PUSHHAND_ENV -u JWT_SECRET -u OTEL_EXPORTER_OTLP_ENDPOINT \
  PUSHHAND_CORS_ORIGINS="http://localhost:$pages_port" \
  "$target/debug/pushhand" --data-dir "$data" --bind-addr 127.0.0.1:0 >"$log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT

addr=""
for _ in $(seq 1 240); do
  addr="$(grep -o 'GraphiQL at http://[0-9.:]*' "$log" | head -n1 | sed 's|.*http://||')" || true
  [ -n "$addr" ] && break
  if ! kill -0 "$server" 2>/dev/null; then
    cat "$log"
    echo "the server exited"
    exit 1
  fi
  sleep 0.5
done
if [ -z "$addr" ]; then
  cat "$log"
  echo "the server did not start"
  exit 1
fi
started=$(date +%s)
PUSHHAND_URL="http://$addr" SCREENSHOTS="$out" node tests/browser/ide.mjs
PUSHHAND_URL="http://$addr" PAGES_PORT="$pages_port" SCREENSHOTS="$out" node tests/browser/origins.mjs
echo "browser tests ran in $(( $(date +%s) - started ))s"
