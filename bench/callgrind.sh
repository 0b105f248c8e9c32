#!/bin/bash
# Callgrind of the catalog reads on SQLite, demo data: instructions per request of S0
# ({ __typename }), S3-raw (a product's detail), S3-member (the same, a signed-in
# push-hand's), S3-as-listing (below) and S1 (a page of 50), each phase N identical
# requests after 3 of warm-up, the response cache off. Instruction counts do not depend on the machine's load.
#
#   cargo build --release --bin pushhand
#   bench/callgrind.sh target/release/pushhand /tmp/cg        # N=10 by default
#   callgrind_annotate --inclusive=yes /tmp/cg/cg.<pid>.2 | head -60   # S3-raw's phase
#
# Each request opens its own connection (curl), as S0's does, so subtract S0 for the work
# of the request itself.
set -euo pipefail
BIN=$(realpath "$1"); OUT=$2; N=${N:-10}; PORT=${PORT:-18732}
rm -rf "$OUT"; mkdir -p "$OUT/data"
export DATABASE_URL="sqlite://$OUT/data/db.sqlite?mode=rwc" BIND_ADDR=127.0.0.1:$PORT \
  JWT_SECRET=bench-secret-bench-secret-bench-secret-0123 PUSHHAND_DATA_DIR=$OUT/data \
  PUSHHAND_JOB_INTERVAL_SECONDS=3600 PUSHHAND_RESPONSE_CACHE=false RUST_LOG=warn \
  PUSHHAND_SEED_DEMO=false
"$BIN" migrate >/dev/null
"$BIN" seed >/dev/null
"$BIN" create-user --email ph@cg.example --password cg-password-1 --role PUSH_HAND >/dev/null
TOKEN=
q() { curl -s -H 'content-type: application/json' ${TOKEN:+-H "authorization: Bearer $TOKEN"} \
  --data "$1" "http://127.0.0.1:$PORT/graphql"; }
wait_up() {
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.5; done
  echo "the server did not start" >&2; exit 1
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# Sign in and find the product natively (argon2 under valgrind would take minutes).
"$BIN" serve >"$OUT/native.log" 2>&1 & P=$!; wait_up
MEMBER=$(q '{"query":"mutation { login(input: {email: \"ph@cg.example\", password: \"cg-password-1\"}) { token } }"}' | field '["data"]["login"]["token"]')
PRODUCT=$(q '{"query":"{ products(first: 1) { nodes { id } } }"}' | field '["data"]["products"]["nodes"][0]["id"]')
kill $P; wait $P || true
# The bench's documents (bench/src/main.rs).
S3='query($id: ID!) { product(id: $id) { id name nameEn description minPrice maxPrice salesCount brand { name merchant { name } } category { nameZh parent { nameZh } } skus { id name price stock } images { url alt } tags curation { passed badges stages { stage result } } } }'
S3M='query($id: ID!) { product(id: $id) { id name nameEn description minPrice maxPrice salesCount rebateRate teamRebateRate estimatedEarning brand { name merchant { name } } category { nameZh parent { nameZh } } skus { id name price stock } images { url alt } tags curation { passed badges stages { stage result } } } }'
S1='{ products(first: 50) { edges { node { id name minPrice brand { name } category { nameZh } skus { id price stock } curation { passed badges } } } pageInfo { hasNextPage endCursor } } }'
body() { python3 -c 'import json,sys; print(json.dumps({"query":sys.argv[1],"variables":{"id":sys.argv[2]}}))' "$1" "$PRODUCT"; }
valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.%p" "$BIN" serve >"$OUT/valgrind.log" 2>&1 & VP=$!
wait_up
phase() { # name, body, token
  TOKEN=$3
  for _ in 1 2 3; do q "$2" >/dev/null; done
  callgrind_control -z $VP >/dev/null
  for _ in $(seq "$N"); do q "$2" >"$OUT/answer.$1.json"; done
  callgrind_control -d "$1" $VP >/dev/null
}
phase S0 '{"query":"{ __typename }"}' ""
phase S3-raw "$(body "$S3")" ""
phase S3-member "$(body "$S3M")" "$MEMBER"
# The detail's selection through the listing, which reads SKUs, images and tags by the
# loaders, a statement each: the 4 statements a detail cost before #32.
S3L='{ products(first: 1) { nodes { id name nameEn description minPrice maxPrice salesCount brand { name merchant { name } } category { nameZh parent { nameZh } } skus { id name price stock } images { url alt } tags curation { passed badges stages { stage result } } } } }'
phase S3-as-listing "$(python3 -c 'import json,sys; print(json.dumps({"query":sys.argv[1]}))' "$S3L")" ""
phase S1 "$(python3 -c 'import json,sys; print(json.dumps({"query":sys.argv[1]}))' "$S1")" ""
kill $VP; wait $VP || true
for f in "$OUT"/cg.*.[0-9]*; do
  name=$(sed -n 's/^desc: Trigger: \(Client Request: \|dump \)//p' "$f")
  total=$(sed -n 's/^\(summary\|totals\): //p' "$f" | head -1)
  echo "$name: $((total / N)) instructions a request ($f)"
done | tee "$OUT/summary.txt"
