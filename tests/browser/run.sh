#!/usr/bin/env bash
# The browser test: starts a fresh development server (SQLite, demo data, a free port) from
# this checkout's debug binary and runs ide.mjs against it in headless Chromium, with every
# other host cut off. Installs Debian's `chromium` and playwright-core (npm, pinned by
# package-lock.json) when they are missing. The screenshot goes to the directory given as
# the first argument (default: $PUSHHAND_ARTIFACTS/browser, else
# /var/tmp/pushhand-ci-artifacts/browser), kept outside the clone as CI's artifact.
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
if [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
  echo "installing playwright-core"
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
cargo build --quiet --bin pushhand

data="$(mktemp -d)"
log="$data/server.log"
env -u DATABASE_URL -u REDIS_URL -u PUSHHAND_ENV -u JWT_SECRET \
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
PUSHHAND_URL="http://$addr" SCREENSHOTS="$out" node tests/browser/ide.mjs
