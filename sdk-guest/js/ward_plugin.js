// Write ward plugins in JavaScript: a tool is a name, a description, an input
// schema and a function.
//
//   import { tool } from './ward_plugin.js';
//   export { tools, resources, prompts, completions } from './ward_plugin.js';
//
//   tool({
//     name: 'greet',
//     description: 'Greets someone by name.',
//     input: { name: { type: 'string', description: 'Who to greet.' } },
//   }, ({ name }) => `Hello, ${name}!`);
//
// Build it into a WebAssembly component with componentize-js against `wit/`
// (world `plugin`); `cargo xtask plugins` does it for `plugins/js-*`, copying
// this file next to the plugin's `app.js` first:
//
//   componentize-js --wit wit --world-name plugin -o js-hello.wasm app.js
//
// Input schemas: `input` maps each argument to a JSON Schema, or to a type
// name as shorthand ('string', 'integer', 'number', 'boolean', 'array',
// 'object'; a trailing '?' makes it optional, e.g. 'integer?'). An argument
// is required unless it is marked optional (`optional: true`) or has a
// `default`. `input` may also be a whole object schema ({ type: 'object', ... }).
//
// Results: a string is one text content; a plain object is JSON text plus
// `structuredContent`; an array of contents (text(), image(), ...) or a
// `result({...})` is used as is; other values are JSON text. Throwing a
// ToolError (or any Error) gives an `isError` result the model reads;
// throwing InvalidParams or NotFound gives a protocol error. Handlers may be
// async.
//
// The WIT mapping (componentize-js / jco): records are objects with
// camelCase fields, `option<T>` is `T | undefined`, variants are
// `{ tag: 'kebab-name', val }`, enums are kebab-case strings, and a
// `result<T, E>` export returns T or throws E.

import {
  log as hostLog,
  progress as hostProgress,
  cancelled as hostCancelled,
  resourceUpdated as hostResourceUpdated,
  listsChanged as hostListsChanged,
} from 'ward:plugin/host@0.1.1';
import {
  createMessage as clientCreateMessage,
  elicit as clientElicit,
  listRoots as clientListRoots,
  ask as clientAsk,
  supports as clientSupports,
} from 'ward:plugin/client@0.1.1';

const NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;

// ---------------------------------------------------------------- errors

/** The tool ran but failed: the model reads the message (MCP `isError`). */
export class ToolError extends Error {}
/** The arguments are missing, mistyped or out of range. */
export class InvalidParams extends Error {}
/** The tool, prompt or resource does not exist. */
export class NotFound extends Error {}

// --------------------------------------------------------------- content

/** A text content. */
export const text = (s) => ({ tag: 'text', val: String(s) });
/** An image content from raw bytes (a Uint8Array). */
export const image = (data, mimeType = 'image/png') =>
  ({ tag: 'image', val: { data: toBytes(data), mimeType } });
/** An audio content from raw bytes. */
export const audio = (data, mimeType = 'audio/wav') =>
  ({ tag: 'audio', val: { data: toBytes(data), mimeType } });
/** A link to a resource the client may read later. */
export const resourceLink = (uri, name, { title, description, mimeType, size } = {}) =>
  ({ tag: 'resource-link', val: { uri, name, title, description, mimeType, size: size === undefined ? undefined : BigInt(size) } });
/** An embedded resource: text (a string) or bytes (a Uint8Array). */
export const embedded = (uri, body, mimeType) => ({ tag: 'resource', val: { uri, mimeType, body: bodyOf(body) } });

/** A full tool result: `{ content, structured, isError }`. */
export class Result {
  constructor({ content = [], structured, isError = false } = {}) {
    this.content = content;
    this.structured = structured;
    this.isError = isError;
  }
}
export const result = (fields) => new Result(fields);

function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return new TextEncoder().encode(data);
  return new Uint8Array(data);
}

function bodyOf(body) {
  return typeof body === 'string' ? { tag: 'text', val: body } : { tag: 'blob', val: toBytes(body) };
}

const isContent = (c) => c && typeof c === 'object' && typeof c.tag === 'string' && 'val' in c;

// ---------------------------------------------------------------- schema

const SHORTHAND = new Set(['string', 'integer', 'number', 'boolean', 'array', 'object', 'null']);

/** Turns the `input` of a tool into an object JSON Schema. */
export function inputSchema(input) {
  if (input === undefined || input === null) return { type: 'object', properties: {} };
  if (input.type === 'object' && (input.properties || input.additionalProperties !== undefined)) return input;
  const properties = {};
  const required = [];
  for (const [name, spec] of Object.entries(input)) {
    let s;
    let optional = false;
    if (typeof spec === 'string') {
      optional = spec.endsWith('?');
      const t = optional ? spec.slice(0, -1) : spec;
      if (!SHORTHAND.has(t)) throw new Error(`ward_plugin: unknown type '${t}' for argument '${name}'`);
      s = { type: t };
    } else {
      const { optional: opt, ...rest } = spec;
      optional = Boolean(opt) || 'default' in rest;
      s = rest;
    }
    properties[name] = s;
    if (!optional) required.push(name);
  }
  const schema = { type: 'object', properties };
  if (required.length) schema.required = required;
  return schema;
}

// -------------------------------------------------------------- registries

const TOOLS = new Map();
const RESOURCES = [];
const PROMPTS = new Map();

/**
 * Declares a tool.
 *
 *   tool({ name, description, input, title?, output?, annotations? }, handler)
 *   tool(name, description, input, handler)
 *
 * `annotations`: { readOnly, destructive, idempotent, openWorld } (booleans).
 * `output`: a JSON Schema for the structured result.
 * The handler gets the arguments object and may be async.
 */
export function tool(def, ...rest) {
  let handler;
  if (typeof def === 'string') {
    const [description, input, fn] = rest;
    def = { name: def, description, input };
    handler = fn;
  } else {
    [handler] = rest;
  }
  if (!NAME_RE.test(def.name || '')) throw new Error(`ward_plugin: tool name '${def.name}' must match ${NAME_RE}`);
  if (typeof handler !== 'function') throw new Error(`ward_plugin: tool '${def.name}' needs a handler function`);
  TOOLS.set(def.name, {
    name: def.name,
    title: def.title,
    description: def.description || def.name,
    inputSchema: inputSchema(def.input),
    outputSchema: def.output,
    annotations: def.annotations,
    handler,
  });
  return handler;
}

/**
 * Declares a resource. A URI with `{var}` parts is a template: the handler
 * gets the variables as an object. It returns a string (text) or a
 * Uint8Array (a blob).
 *
 *   resource({ uri, name, title?, description?, mimeType? }, handler)
 */
export function resource(def, handler) {
  let pattern;
  if (def.uri.includes('{')) {
    const esc = (s) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
    const parts = def.uri.split(/\{(\w+)\}/);
    pattern = new RegExp('^' + parts.map((p, i) => (i % 2 ? `(?<${p}>[^/]+)` : esc(p))).join('') + '$');
  }
  RESOURCES.push({ mimeType: 'text/plain', ...def, name: def.name || def.uri, pattern, handler });
  return handler;
}

/**
 * Declares a prompt. `arguments` lists { name, description?, required? }
 * (required by default). The handler gets the arguments as an object and
 * returns a string (one user message) or a list of [role, string | content].
 *
 *   prompt({ name, title?, description?, arguments? }, handler)
 */
export function prompt(def, handler) {
  PROMPTS.set(def.name, { arguments: [], ...def, handler });
  return handler;
}

// ------------------------------------------------------------- host calls

/** Logs to ward's log and to the client ('debug' ... 'emergency'). */
export const log = (level, message) => hostLog(level, String(message));
/** Reports progress on the current request. */
export const progress = (value, total, message) => hostProgress(value, total ?? undefined, message ?? undefined);
/** True once the client has cancelled the current request. */
export const cancelled = () => hostCancelled();
/** Tells subscribed clients that a resource changed. */
export const resourceUpdated = (uri) => hostResourceUpdated(uri);
/**
 * Says that this plugin's tools, resources or prompts changed (lists that depend
 * on a granted file, say): when the call ends, ward lists the plugin again.
 */
export const listsChanged = () => hostListsChanged();

// ------------------------------------------------- requests to the client

// The same code works in both eras of MCP: on 2026-07-28 ward replays the
// plugin (the call stops at the first unanswered question and runs again
// from the start with the client's answers), so ask the same questions in
// the same order on every run.

function errorText(error) {
  // ward's message is the error variant's payload.
  const message = error?.val ?? error;
  return typeof message === 'string' ? message : JSON.stringify(message);
}

function request(send, ...params) {
  try {
    return JSON.parse(send(...params.map((p) => JSON.stringify(p))));
  } catch (e) {
    // A `result` import throws its error variant.
    throw new ToolError(errorText(e?.payload ?? e?.message ?? String(e)));
  }
}

/** Asks the client's model for a message (`sampling/createMessage`); MCP JSON in and out. */
export const createMessage = (params) => request(clientCreateMessage, params);
/** Asks the user for input (`elicitation/create`): `{ message, requestedSchema }`. */
export const elicit = (params) => request(clientElicit, params);
/** Asks the client for its roots (`roots/list`): `{ roots: [{ uri, name }] }`. */
export const listRoots = () => request(clientListRoots);
/**
 * Whether the client declared the capability `method` (`sampling/createMessage`,
 * `elicitation/create`, `roots/list`) needs; on 2026-07-28, asking without it
 * fails the whole request.
 */
export const supports = (method) => clientSupports(method);
/**
 * Asks several questions in one round: `[{ key, method, params }]`, keys of the
 * plugin's choosing, unique within the call. Returns the answers in order, each
 * the result object or a `ToolError` (not thrown).
 */
export function ask(requests) {
  const asked = requests.map(({ key, method, params }) => ({ key, method, params: params ?? {} }));
  return clientAsk(JSON.stringify(asked)).map((answer) =>
    answer.tag === 'ok' ? JSON.parse(answer.val) : new ToolError(errorText(answer.val)),
  );
}
/** Asks the client's model one question and returns the text it answers. */
export function sampleText(prompt, maxTokens = 200) {
  const result = createMessage({
    messages: [{ role: 'user', content: { type: 'text', text: prompt } }],
    maxTokens,
  });
  return typeof result?.content?.text === 'string' ? result.content.text : JSON.stringify(result?.content);
}

// ---------------------------------------------------------------- exports

function wireError(e) {
  if (e instanceof NotFound) return { tag: 'not-found', val: e.message };
  if (e instanceof InvalidParams) return { tag: 'invalid-params', val: e.message };
  return { tag: 'failed', val: e instanceof Error ? e.message : String(e) };
}

function toResult(value) {
  if (value instanceof Result) {
    return {
      content: value.content.map((c) => (isContent(c) ? c : text(typeof c === 'string' ? c : JSON.stringify(c)))),
      structured: value.structured === undefined ? undefined : JSON.stringify(value.structured),
      isError: Boolean(value.isError),
    };
  }
  if (typeof value === 'string') return { content: [text(value)], structured: undefined, isError: false };
  if (value === undefined || value === null) return { content: [], structured: undefined, isError: false };
  if (isContent(value)) return { content: [value], structured: undefined, isError: false };
  if (Array.isArray(value) && value.length && value.every(isContent)) return { content: value, structured: undefined, isError: false };
  if (typeof value === 'object' && !Array.isArray(value)) {
    const json = JSON.stringify(value);
    return { content: [text(json)], structured: json, isError: false };
  }
  return { content: [text(JSON.stringify(value))], structured: undefined, isError: false };
}

function failure(e) {
  if (e instanceof NotFound || e instanceof InvalidParams) throw wireError(e);
  const msg = e instanceof ToolError ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { content: [text(msg)], structured: undefined, isError: true };
}

/** The `ward:plugin/tools` export. */
export const tools = {
  listTools() {
    return [...TOOLS.values()].map((t) => ({
      name: t.name,
      title: t.title,
      description: t.description,
      inputSchema: JSON.stringify(t.inputSchema),
      outputSchema: t.outputSchema === undefined ? undefined : JSON.stringify(t.outputSchema),
      annotations: t.annotations && {
        readOnly: t.annotations.readOnly,
        destructive: t.annotations.destructive,
        idempotent: t.annotations.idempotent,
        openWorld: t.annotations.openWorld,
      },
    }));
  },
  callTool(name, argumentsJson) {
    const t = TOOLS.get(name);
    if (!t) throw wireError(new NotFound(`no tool named '${name}'`));
    let args;
    try {
      args = argumentsJson && argumentsJson.trim() ? JSON.parse(argumentsJson) : {};
    } catch (e) {
      throw wireError(new InvalidParams(`arguments are not JSON: ${e.message}`));
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw wireError(new InvalidParams('arguments must be a JSON object'));
    }
    for (const req of t.inputSchema.required || []) {
      if (!(req in args)) throw wireError(new InvalidParams(`missing argument: ${req}`));
    }
    let out;
    try {
      out = t.handler(args);
    } catch (e) {
      return failure(e);
    }
    if (out && typeof out.then === 'function') return out.then(toResult, failure);
    return toResult(out);
  },
};

function findResource(uri) {
  for (const r of RESOURCES) if (!r.pattern && r.uri === uri) return [r, {}];
  for (const r of RESOURCES) {
    const m = r.pattern && r.pattern.exec(uri);
    if (m) return [r, { ...m.groups }];
  }
  throw new NotFound(`no resource '${uri}'`);
}

/** The `ward:plugin/resources` export. */
export const resources = {
  listResources() {
    return RESOURCES.filter((r) => !r.pattern).map((r) => ({
      uri: r.uri, name: r.name, title: r.title, description: r.description, mimeType: r.mimeType, size: undefined,
    }));
  },
  listResourceTemplates() {
    return RESOURCES.filter((r) => r.pattern).map((r) => ({
      uriTemplate: r.uri, name: r.name, title: r.title, description: r.description, mimeType: r.mimeType,
    }));
  },
  readResource(uri) {
    try {
      const [r, vars] = findResource(uri);
      const body = r.handler(vars);
      const bodies = Array.isArray(body) ? body : [body];
      return bodies.map((b) => ({
        uri,
        mimeType: typeof b === 'string' ? r.mimeType : (r.mimeType === 'text/plain' ? 'application/octet-stream' : r.mimeType),
        body: bodyOf(b),
      }));
    } catch (e) {
      throw wireError(e);
    }
  },
};

/** The `ward:plugin/prompts` export. */
export const prompts = {
  listPrompts() {
    return [...PROMPTS.values()].map((p) => ({
      name: p.name,
      title: p.title,
      description: p.description,
      arguments: p.arguments.map((a) => ({
        name: a.name, title: a.title, description: a.description, required: a.required !== false,
      })),
    }));
  },
  getPrompt(name, argPairs) {
    try {
      const p = PROMPTS.get(name);
      if (!p) throw new NotFound(`no prompt named '${name}'`);
      let out = p.handler(Object.fromEntries(argPairs));
      if (typeof out === 'string') out = [['user', out]];
      return {
        description: p.description,
        messages: out.map(([role, c]) => ({
          role: role === 'assistant' ? 'assistant' : 'user',
          content: isContent(c) ? c : text(c),
        })),
      };
    } catch (e) {
      throw wireError(e);
    }
  },
};

/** The `ward:plugin/completions` export: no suggestions by default. */
export const completions = {
  complete(_target, _argument, _value, _context) {
    return { values: [], total: 0, hasMore: false };
  },
};
