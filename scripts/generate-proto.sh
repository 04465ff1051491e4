#!/usr/bin/env bash
# Regenerates the protobuf-c code of proto/ into Sources/CCallgateProto (committed; do not edit it).
#   scripts/generate-proto.sh            write the generated files
#   scripts/generate-proto.sh --check    fail when the committed files differ from a fresh generation
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc-c >/dev/null || scripts/bootstrap.sh

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
protoc-c --proto_path=proto --c_out="$out" proto/callgate/v1/callgate.proto

target=Sources/CCallgateProto
mkdir -p "$out/tree/include/callgate/v1" "$out/tree/callgate/v1"
cp "$out/callgate/v1/callgate.pb-c.h" "$out/tree/include/callgate/v1/"
cp "$out/callgate/v1/callgate.pb-c.c" "$out/tree/callgate/v1/"

if [ "${1:-}" = "--check" ]; then
    for f in include/callgate/v1/callgate.pb-c.h callgate/v1/callgate.pb-c.c; do
        if ! diff -q "$out/tree/$f" "$target/$f" >/dev/null 2>&1; then
            echo "$target/$f is stale: run scripts/generate-proto.sh and commit the result" >&2
            exit 1
        fi
    done
    echo "generated protobuf-c code is up to date"
else
    mkdir -p "$target/include/callgate/v1" "$target/callgate/v1"
    cp "$out/tree/include/callgate/v1/callgate.pb-c.h" "$target/include/callgate/v1/"
    cp "$out/tree/callgate/v1/callgate.pb-c.c" "$target/callgate/v1/"
    echo "wrote $target"
fi
