#!/usr/bin/env bash
# Unpacks the registry's grpcio-sys (gRPC C-core 1.56.2) and grpcio into
# vendor/ and applies patches/<crate>/*.patch: C-core's defences against
# HTTP/2 floods and zip bombs, and grpcio's hook for unimplemented calls
# (patches/grpcio-sys/README.md, patches/grpcio/README.md). Cargo.toml's
# [patch.crates-io] points there. Idempotent: files whose content is
# unchanged keep their mtime, so cmake rebuilds only what a patch touched.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
shopt -s nullglob
cargo_home="${CARGO_HOME:-$HOME/.cargo}"

# vendor CRATE VERSION: vendor/CRATE from the registry's CRATE-VERSION.crate.
vendor() {
    local name=$1 version=$2 dest="vendor/$1"
    local patches=(patches/"$name"/*.patch)
    local stamp="$dest/.patches"
    local want="$version $(cat /dev/null "${patches[@]}" | sha256sum | cut -c1-16)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    # The .crate from cargo's cache; fetched through a throwaway manifest,
    # since this workspace cannot resolve until vendor/ exists.
    find_crate() { find "$cargo_home/registry/cache" -name "$name-$version.crate" 2>/dev/null | head -n1; }
    local crate
    crate="$(find_crate)"
    if [ -z "$crate" ]; then
        local tmp
        tmp="$(mktemp -d)"
        printf '[package]\nname = "fetch-%s"\nversion = "0.0.0"\nedition = "2021"\n[lib]\npath = "lib.rs"\n[dependencies]\n%s = { version = "=%s", default-features = false }\n' \
            "$name" "$name" "$version" >"$tmp/Cargo.toml"
        touch "$tmp/lib.rs"
        cargo fetch --quiet --manifest-path "$tmp/Cargo.toml"
        rm -rf "$tmp"
        crate="$(find_crate)"
        [ -n "$crate" ] || { echo "vendor-grpcio: $name $version not in $cargo_home/registry/cache" >&2; exit 1; }
    fi

    echo "vendor-grpcio: unpacking $name $version and applying patches/$name"
    mkdir -p vendor
    local fresh
    fresh="$(mktemp -d "vendor/.$name.XXXXXX")"
    tar -xzf "$crate" -C "$fresh" --strip-components=1
    local p
    for p in "${patches[@]}"; do
        patch -s -p1 -d "$fresh" <"$p"
    done
    if [ ! -d "$dest" ]; then
        mv "$fresh" "$dest"
    else
        # Copy only what differs, so unchanged sources keep their mtime.
        (cd "$fresh" && find . -type f) | while read -r f; do
            cmp -s "$fresh/$f" "$dest/$f" || { mkdir -p "$(dirname "$dest/$f")"; cp "$fresh/$f" "$dest/$f"; }
        done
        (cd "$dest" && find . -type f ! -name .patches) | while read -r f; do
            [ -e "$fresh/$f" ] || rm -f "$dest/$f"
        done
        rm -rf "$fresh"
    fi
    echo "$want" >"$stamp"
}

vendor grpcio-sys 0.13.0+1.56.2-patched
vendor grpcio 0.13.0
