#!/bin/sh
# Builds dist/{{name}}.wasm with componentize-js {{js_version}} (installed into node_modules on first use).
set -eu
cd "$(dirname "$0")"
if [ ! -f node_modules/@bytecodealliance/componentize-js/src/cli.js ]; then
  npm install --no-audit --no-fund --loglevel=error
fi
mkdir -p dist
node node_modules/@bytecodealliance/componentize-js/src/cli.js app.js --wit wit --world-name plugin -o dist/.{{name}}.wasm.tmp
node ward_manifest.mjs dist/.{{name}}.wasm.tmp ward.toml
mv dist/.{{name}}.wasm.tmp dist/{{name}}.wasm
echo "built dist/{{name}}.wasm"
