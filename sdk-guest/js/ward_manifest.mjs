// Embeds a ward plugin manifest (ward.toml) into a built component.
//
//     node ward_manifest.mjs COMPONENT.wasm [ward.toml]
//
// The manifest says what the plugin requests (directories, environment
// variables, hosts, limits, each with a reason) and who made it; `ward inspect`
// shows it beside what the operator granted. It goes into the component as a
// custom section named `ward:manifest` holding the file's text, appended at the
// end of the binary (custom sections are valid anywhere). The component is
// rewritten atomically. Without a ward.toml nothing is done: a plugin without a
// manifest requests nothing. ward checks the file when it reads the component
// (`ward inspect`); the format is in ward's docs/manifest.md.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const SECTION = 'ward:manifest';

function leb128(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return Buffer.from(out);
}

/** The bytes of one custom section. */
export function customSection(name, data) {
  const encoded = Buffer.from(name, 'utf8');
  const body = Buffer.concat([leb128(encoded.length), encoded, data]);
  return Buffer.concat([Buffer.from([0]), leb128(body.length), body]);
}

/** Appends `manifest` to `component`; false when there is no manifest file. */
export function embed(component, manifest) {
  if (!existsSync(manifest)) return false;
  const text = readFileSync(manifest);
  const wasm = readFileSync(component);
  if (wasm.subarray(0, 4).toString('latin1') !== '\0asm') {
    throw new Error(`${component}: not a WebAssembly file`);
  }
  const tmp = `${component}.manifest.tmp`;
  writeFileSync(tmp, Buffer.concat([wasm, customSection(SECTION, text)]));
  renameSync(tmp, component);
  return true;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [component, manifest = 'ward.toml'] = process.argv.slice(2);
  if (!component) {
    console.error('usage: node ward_manifest.mjs COMPONENT.wasm [ward.toml]');
    process.exit(2);
  }
  if (embed(component, manifest)) console.error(`embedded ${manifest} into ${component}`);
}
