// Try a JS plugin on the host, without building it: lists its tools, or calls one.
//
//   node sdk-guest/js/try.mjs plugins/js-hello/app.js
//   node sdk-guest/js/try.mjs plugins/js-hello/app.js greet '{"name": "Ada"}'
//
// Needs Node >= 20.6. `./ward_plugin.js` resolves to this directory's helper,
// the host interface `ward:plugin/host` to a stub that logs to stderr, and
// `ward:plugin/client` to one that refuses (there is no MCP client here).
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { resolve as resolvePath } from 'node:path';

const helper = new URL('./ward_plugin.js', import.meta.url).href;
const stub = 'data:text/javascript,' + encodeURIComponent(`
  export const log = (level, message) => console.error('[' + level + '] ' + message);
  export const progress = (p, total, message) => console.error('progress', p, total ?? '', message ?? '');
  export const cancelled = () => false;
  export const resourceUpdated = (uri) => console.error('resource updated', uri);`);
const noClient = 'data:text/javascript,' + encodeURIComponent(`
  const refuse = () => { throw { payload: { tag: 'failed', val: 'there is no MCP client outside ward' } }; };
  export const createMessage = refuse;
  export const elicit = refuse;`);
const hooks = `
  export async function resolve(specifier, context, next) {
    if (specifier.startsWith('ward:plugin/host')) return { url: ${JSON.stringify(stub)}, shortCircuit: true };
    if (specifier.startsWith('ward:plugin/client')) return { url: ${JSON.stringify(noClient)}, shortCircuit: true };
    if (specifier === './ward_plugin.js') return { url: ${JSON.stringify(helper)}, shortCircuit: true };
    return next(specifier, context);
  }`;
register('data:text/javascript,' + encodeURIComponent(hooks));

const [app, name, args = '{}'] = process.argv.slice(2);
if (!app) {
  console.error('usage: node try.mjs APP.js [TOOL [JSON-ARGS]]');
  process.exit(2);
}
await import(pathToFileURL(resolvePath(app)).href);
const { tools } = await import(helper);
const bigint = (_, v) => (typeof v === 'bigint' ? Number(v) : v);
if (!name) {
  const list = tools.listTools().map((t) => ({ ...t, inputSchema: JSON.parse(t.inputSchema) }));
  console.log(JSON.stringify(list, bigint, 2));
} else {
  try {
    const r = await tools.callTool(name, args);
    console.log(JSON.stringify({ ...r, structured: r.structured && JSON.parse(r.structured) }, bigint, 2));
    process.exitCode = r.isError ? 1 : 0;
  } catch (e) {
    console.log(JSON.stringify({ error: e }, bigint, 2));
    process.exitCode = 1;
  }
}
