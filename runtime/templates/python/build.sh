#!/bin/sh
# Builds dist/{{name}}.wasm with componentize-py {{py_version}} (installed into .venv on first use).
set -eu
cd "$(dirname "$0")"
if ! .venv/bin/componentize-py --version 2>/dev/null | grep -qx "componentize-py {{py_version}}"; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check componentize-py=={{py_version}}
fi
mkdir -p dist
PYTHONDONTWRITEBYTECODE=1 .venv/bin/componentize-py -d wit -w plugin componentize app -p . -o dist/.{{name}}.wasm.tmp
python3 ward_manifest.py dist/.{{name}}.wasm.tmp ward.toml
mv dist/.{{name}}.wasm.tmp dist/{{name}}.wasm
echo "built dist/{{name}}.wasm"
