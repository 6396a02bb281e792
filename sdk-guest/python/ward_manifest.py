"""Embeds a ward plugin manifest (ward.toml) into a built component.

    python3 ward_manifest.py COMPONENT.wasm [ward.toml]

The manifest says what the plugin requests (directories, environment
variables, hosts, limits, each with a reason) and who made it; `ward inspect`
shows it beside what the operator granted. It goes into the component as a
custom section named `ward:manifest` holding the file's text, appended at
the end of the binary (custom sections are valid anywhere). The component is
rewritten atomically, with a `producers` section saying the language is
Python. Without a ward.toml nothing is done: a plugin without a manifest
requests nothing. The format is in ward's docs/manifest.md.
Only the standard library is used, so this runs wherever the build does.
"""

import os
import sys
import tomllib

SECTION = "ward:manifest"


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string(s: str) -> bytes:
    encoded = s.encode()
    return _leb128(len(encoded)) + encoded


def custom_section(name: str, data: bytes) -> bytes:
    """The bytes of one custom section."""
    encoded = name.encode()
    body = _leb128(len(encoded)) + encoded + data
    return b"\x00" + _leb128(len(body)) + body


def embed(component: str, manifest: str) -> bool:
    """Appends `manifest` to `component`; False when there is no manifest file."""
    if not os.path.isfile(manifest):
        return False
    with open(manifest, "rb") as f:
        text = f.read()
    # Catch TOML mistakes at build time; ward checks the keys and values.
    tomllib.loads(text.decode("utf-8"))
    with open(component, "rb") as f:
        wasm = f.read()
    if not wasm.startswith(b"\x00asm"):
        raise SystemExit(f"{component}: not a WebAssembly file")
    # componentize-py does not say the component's language; a top-level
    # producers section does (ward inspect, wasm-tools metadata show).
    producers = b"\x01" + _string("language") + b"\x01" + _string("Python") + _string("")
    tmp = f"{component}.manifest.tmp"
    with open(tmp, "wb") as f:
        f.write(wasm + custom_section("producers", producers) + custom_section(SECTION, text))
    os.replace(tmp, component)
    return True


def main(argv: list) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    component = argv[1]
    manifest = argv[2] if len(argv) == 3 else "ward.toml"
    try:
        if embed(component, manifest):
            print(f"embedded {manifest} into {component}", file=sys.stderr)
    except tomllib.TOMLDecodeError as e:
        print(f"{manifest}: invalid TOML: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
