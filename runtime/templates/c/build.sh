#!/bin/sh
# Builds dist/{{name}}.wasm: C bindings for wit/ from wit-bindgen {{wit_bindgen_version}},
# compiled by clang with wasi-libc (WASI preview 1) and made a component by
# wasm-component-ld {{wcl_version}}. The two tools are installed with cargo into
# .tools/ on first use ($WARD_C_TOOLS may name another directory that has
# bin/wit-bindgen and bin/wasm-component-ld). clang, wasm-ld and wasi-libc
# come from your system (Debian: clang lld wasi-libc libclang-rt-dev-wasm32).
set -eu
cd "$(dirname "$0")"
tools="${WARD_C_TOOLS:-$PWD/.tools}"
need() {
  if ! "$tools/bin/$1" --version 2>/dev/null | grep -q "$2"; then
    cargo install --quiet --locked --root "$tools" "$3" --version "=$2" $4
  fi
}
need wit-bindgen {{wit_bindgen_version}} wit-bindgen-cli "--no-default-features --features c"
need wasm-component-ld {{wcl_version}} wasm-component-ld ""
for tool in clang wasm-ld python3; do
  command -v "$tool" >/dev/null || {
    echo "build.sh: $tool is missing (Debian: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32 python3)" >&2
    exit 1
  }
done
rm -rf build && mkdir -p build dist
"$tools/bin/wit-bindgen" c --world plugin --out-dir build wit >/dev/null
clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra \
  -I build -I . -o dist/.{{name}}.wasm.tmp \
  app.c ward.c build/plugin.c build/plugin_component_type.o \
  -fuse-ld="$tools/bin/wasm-component-ld" -Wl,--wasm-ld-path="$(command -v wasm-ld)"
python3 ward_manifest.py dist/.{{name}}.wasm.tmp ward.toml
mv dist/.{{name}}.wasm.tmp dist/{{name}}.wasm
echo "built dist/{{name}}.wasm"
