#!/usr/bin/env bash
# Unpacks the registry's grpcio-sys (gRPC C-core 1.56.2) into vendor/grpcio-sys
# and applies patches/grpcio-sys/*.patch: the backport of C-core's defence
# against HTTP/2 floods (docs/http2-floods.md). Cargo.toml's [patch.crates-io]
# points there. Idempotent: files whose content is unchanged keep their mtime,
# so cmake rebuilds only what a patch touched.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VERSION="0.13.0+1.56.2-patched"
DEST=vendor/grpcio-sys
stamp="$DEST/.patches"
shopt -s nullglob
patches=(patches/grpcio-sys/*.patch)
want="$VERSION $(cat /dev/null "${patches[@]}" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

# The .crate from cargo's cache; fetched through a throwaway manifest, since
# this workspace cannot resolve until vendor/grpcio-sys exists.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
find_crate() { find "$cargo_home/registry/cache" -name "grpcio-sys-$VERSION.crate" 2>/dev/null | head -n1; }
crate="$(find_crate)"
if [ -z "$crate" ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    printf '[package]\nname = "fetch-grpcio-sys"\nversion = "0.0.0"\nedition = "2021"\n[lib]\npath = "lib.rs"\n[dependencies]\ngrpcio-sys = { version = "=%s", default-features = false }\n' \
        "$VERSION" >"$tmp/Cargo.toml"
    touch "$tmp/lib.rs"
    cargo fetch --quiet --manifest-path "$tmp/Cargo.toml"
    crate="$(find_crate)"
    [ -n "$crate" ] || { echo "vendor-grpcio-sys: grpcio-sys $VERSION not in $cargo_home/registry/cache" >&2; exit 1; }
fi

echo "vendor-grpcio-sys: unpacking grpcio-sys $VERSION and applying patches/grpcio-sys"
mkdir -p vendor
fresh="$(mktemp -d vendor/.grpcio-sys.XXXXXX)"
tar -xzf "$crate" -C "$fresh" --strip-components=1
for p in "${patches[@]}"; do
    patch -s -p1 -d "$fresh" <"$p"
done
if [ ! -d "$DEST" ]; then
    mv "$fresh" "$DEST"
else
    # Copy only what differs, so unchanged sources keep their mtime.
    (cd "$fresh" && find . -type f) | while read -r f; do
        cmp -s "$fresh/$f" "$DEST/$f" || { mkdir -p "$(dirname "$DEST/$f")"; cp "$fresh/$f" "$DEST/$f"; }
    done
    (cd "$DEST" && find . -type f ! -name .patches) | while read -r f; do
        [ -e "$fresh/$f" ] || rm -f "$DEST/$f"
    done
    rm -rf "$fresh"
fi
echo "$want" >"$stamp"
