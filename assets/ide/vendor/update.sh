#!/usr/bin/env bash
# Fetches the IDE's third-party files named in VERSIONS from the npm registry (`npm pack`),
# checks their SHA-256 sums and copies them here. To move to new versions: edit VERSIONS
# (names, versions, sums), run this, update the names in ../index.html and src/http/ide.rs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
grep -v '^#' "$here/VERSIONS" | while read -r file package path sum; do
    [ -n "$file" ] || continue
    dir="$work/$package"
    if [ ! -d "$dir" ]; then
        mkdir -p "$dir"
        (cd "$dir" && npm pack --silent "$package" >/dev/null && tar xzf ./*.tgz)
    fi
    if [ "$sum" != "-" ]; then
        echo "$sum  $dir/package/$path" | sha256sum --check --quiet
    fi
    cp "$dir/package/$path" "$here/$file"
    echo "$file <- $package/$path"
done
