#!/usr/bin/env bash
# Unpacks the registry's grpcio-sys (gRPC C-core 1.56.2) and grpcio, applies
# patches/<crate>/*.patch (patches/*/README.md), and points cargo at them
# through a git-ignored .cargo/config.toml ([patch.crates-io]).
#
# The patched crates live outside the clone, in a folder named by the
# patches' hash: C-core's CMake cache records its source folder, so a path
# that is the same for every clone lets a shared target folder (.ci/run)
# reuse one C-core build across clones. A changed patch set gets a new folder.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
shopt -s nullglob
fail() { echo "vendor-grpcio: $*" >&2; exit 1; }
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
store="${LEARNING_MESSENGER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/learning-messenger}/vendor"

# The .crate from cargo's cache, or nothing (the cache may not exist yet).
find_crate() {
    local name=$1 version=$2
    [ -d "$cargo_home/registry/cache" ] || return 0
    find "$cargo_home/registry/cache" -name "$name-$version.crate" | head -n1
}

# vendor CRATE VERSION: prints the folder holding the patched CRATE.
vendor() {
    local name=$1 version=$2
    local patches=(patches/"$name"/*.patch)
    local hash
    hash="$(cat /dev/null "${patches[@]}" | sha256sum | cut -c1-16)"
    local dest="$store/$name-$version-$hash"
    [ -f "$dest/.complete" ] && { echo "$dest"; return 0; }

    local crate
    crate="$(find_crate "$name" "$version")"
    if [ -z "$crate" ]; then
        # Fetched through a throwaway manifest: this workspace cannot resolve
        # grpcio-sys's patch until the folder exists.
        local tmp
        tmp="$(mktemp -d)"
        printf '[package]\nname = "fetch-%s"\nversion = "0.0.0"\nedition = "2021"\n[lib]\npath = "lib.rs"\n[dependencies]\n%s = { version = "=%s", default-features = false }\n' \
            "$name" "$name" "$version" >"$tmp/Cargo.toml"
        touch "$tmp/lib.rs"
        cargo fetch --quiet --manifest-path "$tmp/Cargo.toml" >&2 || fail "cargo fetch of $name $version failed (is crates.io reachable?)"
        rm -rf "$tmp"
        crate="$(find_crate "$name" "$version")"
        [ -n "$crate" ] || fail "$name $version is not in $cargo_home/registry/cache after cargo fetch"
    fi

    echo "vendor-grpcio: unpacking $name $version into $dest and applying patches/$name" >&2
    mkdir -p "$store" || fail "cannot create $store"
    local fresh
    fresh="$(mktemp -d "$store/.$name.XXXXXX")"
    tar -xzf "$crate" -C "$fresh" --strip-components=1 || fail "cannot unpack $crate"
    local p
    for p in "${patches[@]}"; do
        patch -s -p1 -d "$fresh" <"$p" || fail "$p does not apply to $name $version"
    done
    touch "$fresh/.complete"
    # Another clone may have finished the same folder meanwhile: keep theirs.
    mv -T "$fresh" "$dest" 2>/dev/null || rm -rf "$fresh"
    echo "$dest"
}

sys="$(vendor grpcio-sys 0.13.0+1.56.2-patched)"
rs="$(vendor grpcio 0.13.0)"

mkdir -p .cargo
config="# Written by scripts/vendor-grpcio.sh (git-ignored): the patched crates.
[patch.crates-io]
grpcio-sys = { path = \"$sys\" }
grpcio = { path = \"$rs\" }"
[ -f .cargo/config.toml ] && [ "$(cat .cargo/config.toml)" = "$config" ] || printf '%s\n' "$config" >.cargo/config.toml
