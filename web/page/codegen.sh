#!/usr/bin/env bash
# Regenerates the page's generated code from proto/messenger.proto, then its
# bundle: protobuf-es's messages and service (web/page/gen/, made by buf with
# protoc-gen-es; buf compiles the .proto itself, so no protoc) and what the
# gateway serves (web/page/dist/app.js, esbuild, minified). Both tools come
# from web/node_modules (scripts/bootstrap.sh runs npm ci). Run it after a
# change to proto/ or web/page/src/ and commit the results; `codegen.sh OUT`
# writes gen/ and dist/ under OUT instead (the freshness test compares).
set -euo pipefail
web="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(realpath -m "${1:-$web/page}")"
bin="$web/node_modules/.bin"
for tool in buf protoc-gen-es esbuild; do
    [ -x "$bin/$tool" ] || { echo "codegen: $bin/$tool missing: run scripts/bootstrap.sh (npm ci in web/)" >&2; exit 1; }
done
cd "$web/.."
PATH="$bin:$PATH" buf generate proto --path proto/messenger.proto \
    --template web/page/buf.gen.yaml --output "$out" ||
    { echo "codegen: buf generate failed" >&2; exit 1; }
# The bundle is built from OUT's gen/ (a copy of src/ beside it), with the
# packages found in web/node_modules wherever OUT is.
if [ "$out" != "$web/page" ]; then
    rm -rf "$out/src" && cp -r web/page/src "$out/src"
    # The page's modules are ES modules (web/package.json's "type"), which
    # decides how esbuild imports a CommonJS package: the same here.
    printf '{ "type": "module" }\n' > "$out/package.json"
fi
NODE_PATH="$web/node_modules" "$bin/esbuild" "$out/src/app.js" --bundle --minify --format=esm \
    --target=es2022 --legal-comments=none --log-level=warning --outfile="$out/dist/app.js" ||
    { echo "codegen: esbuild failed" >&2; exit 1; }
if [ "$out" != "$web/page" ]; then
    rm -rf "$out/src" "$out/package.json"
fi
