#!/usr/bin/env bash
# Unpacks the registry's grpcio-sys (gRPC C-core 1.56.2) and grpcio, applies
# patches/<crate>/*.patch (patches/*/README.md), and writes the git-ignored
# .cargo/config.toml that points cargo at them ([patch.crates-io]) and, when
# the PATH's CMake is not CMake 3, at the venv's, copied out of the clone
# ([env] CMAKE).
#
# The patched crates live outside the clone, at a path that is the same for
# every clone and every patch set: C-core's CMake cache records its source
# folder, so a shared target folder (.ci/run) reuses one C-core build across
# clones, and a changed patch set rewrites only the files it changes (the
# others keep their times), so C-core rebuilds only those. One patch set per
# machine at a time: each script's bootstrap brings the folder to its clone's.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
shopt -s nullglob
fail() { echo "vendor-grpcio: $*" >&2; exit 1; }
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
store="$LEARNING_MESSENGER_CACHE/vendor"

# find_crate NAME VERSION: the .crate in cargo's cache, or nothing (on a
# machine where cargo never fetched a crate, the cache does not exist).
find_crate() {
    [ -d "$cargo_home/registry/cache" ] || return 0
    find "$cargo_home/registry/cache" -name "$1-$2.crate" -print -quit
}

# vendor NAME VERSION: sets `dest` to the folder holding the patched crate.
vendor() {
    local name=$1 version=$2
    local patches=(patches/"$name"/*.patch)
    local hash
    hash="$(cat /dev/null "${patches[@]}" | sha256sum | cut -c1-16)"
    dest="$store/$name-$version"
    [ "$(cat "$dest/.patches" 2>/dev/null)" = "$hash" ] && return 0

    mkdir -p "$store" || fail "cannot create $store"
    exec 8>"$dest.lock"
    flock 8
    if [ "$(cat "$dest/.patches" 2>/dev/null)" = "$hash" ]; then
        exec 8>&-
        return 0
    fi
    local crate
    crate="$(find_crate "$name" "$version")"
    if [ -z "$crate" ]; then
        # Fetched through a throwaway manifest, from its own folder: this
        # workspace (and its .cargo/config.toml, which cargo reads from the
        # working folder) cannot resolve the patched crate until it exists.
        # Only the host's dependencies: others' (windows-sys...) are large.
        local tmp host fetched=0
        tmp="$(mktemp -d)"
        printf '[package]\nname = "fetch-%s"\nversion = "0.0.0"\nedition = "2021"\n[lib]\npath = "lib.rs"\n[dependencies]\n%s = { version = "=%s", default-features = false }\n' \
            "$name" "$name" "$version" >"$tmp/Cargo.toml"
        touch "$tmp/lib.rs"
        host="$(rustc -vV | sed -n 's/^host: //p')"
        (cd "$tmp" && cargo fetch --quiet --target "$host") || fetched=$?
        rm -rf "$tmp"
        ((fetched == 0)) || fail "cargo fetch of $name $version failed (is crates.io reachable?)"
        crate="$(find_crate "$name" "$version")"
        [ -n "$crate" ] || fail "$name $version is not in $cargo_home/registry/cache after cargo fetch"
    fi

    echo "vendor-grpcio: bringing $dest to patches/$name ($hash)" >&2
    local fresh
    fresh="$(mktemp -d "$store/.$name.XXXXXX")"
    tar -xzf "$crate" -C "$fresh" --strip-components=1 || fail "cannot unpack $crate"
    local p
    for p in "${patches[@]}"; do
        patch -s -p1 -d "$fresh" <"$p" || fail "$p does not apply to $name $version"
    done
    rm -f "$dest/.patches"
    if [ ! -d "$dest" ]; then
        chmod 755 "$fresh"
        mv -T "$fresh" "$dest"
        echo "$hash" >"$dest/.patches"
        exec 8>&-
        return 0
    fi
    # Only what differs is written, so the rest keeps its time and make
    # does not rebuild it; what the new set no longer has is removed. Written
    # now, not with the archive's times: a file back to the crate's text is
    # newer than its objects too.
    local changes line rest dir name rel
    changes="$(mktemp)"
    diff -rq -x .patches "$fresh" "$dest" >"$changes" || (($? == 1)) || fail "cannot compare $fresh with $dest"
    while IFS= read -r line; do
        case "$line" in
        "Files $fresh/"*" differ")
            rel="${line#"Files $fresh/"}"
            rel="${rel%%" and $dest/"*}"
            cp "$fresh/$rel" "$dest/$rel"
            ;;
        "Only in "*)
            rest="${line#"Only in "}"
            dir="${rest%%": "*}"
            name="${rest#*": "}"
            case "$dir" in
            "$fresh" | "$fresh/"*)
                rel="${dir#"$fresh"}"
                cp -R "$dir/$name" "$dest$rel/$name"
                ;;
            *) rm -rf "${dir:?}/$name" ;;
            esac
            ;;
        *) fail "cannot read diff's line: $line" ;;
        esac
    done <"$changes"
    rm -f "$changes"
    rm -rf "$fresh"
    echo "$hash" >"$dest/.patches"
    exec 8>&-
}

vendor grpcio-sys 0.13.0+1.56.2-patched
sys=$dest
vendor grpcio 0.13.0
rs=$dest

config="# Written by scripts/vendor-grpcio.sh (git-ignored): the patched crates.
[patch.crates-io]
grpcio-sys = { path = \"$sys\" }
grpcio = { path = \"$rs\" }"
# C-core's build (the cmake crate) takes CMAKE before the PATH's cmake. The
# venv's CMake 3 is copied out of the clone, for the reason above: a CMAKE
# that differs between clones would rebuild C-core in each.
if ! is_cmake_3 && is_cmake_3 "$ROOT/.venv/bin/cmake"; then
    data="$(.venv/bin/python3 -c 'import cmake; print(cmake.CMAKE_DATA)')"
    version="$("$data/bin/cmake" --version)"
    version="${version%%$'\n'*}"
    cmake_copy="$LEARNING_MESSENGER_CACHE/cmake-${version##* }"
    if [ ! -x "$cmake_copy/bin/cmake" ]; then
        mkdir -p "$LEARNING_MESSENGER_CACHE"
        fresh="$(mktemp -d "$cmake_copy.XXXXXX")"
        cp -a "$data/." "$fresh" || fail "cannot copy the venv's CMake to $cmake_copy"
        mv -T "$fresh" "$cmake_copy" 2>/dev/null || rm -rf "$fresh"
    fi
    config+="
# The PATH's cmake is not CMake 3, which gRPC C-core needs: the venv's, copied.
[env]
CMAKE = \"$cmake_copy/bin/cmake\""
fi
# The cmake crate wipes C-core's CMake folder when the compiler it is given
# differs from the path CMake cached (it passes `c++`, CMake caches
# /usr/bin/c++): full paths make a patch change rebuild incrementally.
# [env] does not override a CC or CXX the user set.
cc_path="$(command -v cc || true)"
cxx_path="$(command -v c++ || true)"
if [ -n "$cc_path" ] && [ -n "$cxx_path" ]; then
    [[ "$config" == *"[env]"* ]] || config+="
[env]"
    config+="
CC = \"$cc_path\"
CXX = \"$cxx_path\""
fi
mkdir -p .cargo
[ -f .cargo/config.toml ] && [ "$(cat .cargo/config.toml)" = "$config" ] || printf '%s\n' "$config" >.cargo/config.toml
