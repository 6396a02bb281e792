#!/bin/sh
# Builds dist/{{name}}.wasm (needs `rustup target add wasm32-wasip2`).
set -eu
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2
mkdir -p dist
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{lib_name}}.wasm" dist/.{{name}}.wasm.tmp
mv dist/.{{name}}.wasm.tmp dist/{{name}}.wasm
echo "built dist/{{name}}.wasm"
