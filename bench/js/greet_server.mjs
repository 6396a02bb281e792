// The baseline of ward-bench's `python` benchmark for js-hello: the official
// TypeScript MCP SDK (`@modelcontextprotocol/sdk`, npm) serving over stdio the
// same `greet` tool as plugins/js-hello/app.js, with the same answer.
//
// Usage: node bench/js/greet_server.mjs NODE_MODULES
// where NODE_MODULES holds @modelcontextprotocol/sdk and zod, e.g.
// .tools/ts-client/node_modules (installed by xtask/src/tsclient.rs). The
// SDK is imported by path, so this script needs no package.json of its own.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = path.resolve(process.argv[2] ?? '.tools/ts-client/node_modules');
const load = (p) => import(pathToFileURL(path.join(modules, p)).href);
const { McpServer } = await load('@modelcontextprotocol/sdk/dist/esm/server/mcp.js');
const { StdioServerTransport } = await load('@modelcontextprotocol/sdk/dist/esm/server/stdio.js');
const { z } = await load('zod/index.js');

const server = new McpServer({ name: 'js-greet', version: '0.0.0' });
server.registerTool(
  'greet',
  {
    description: 'Greets someone by name.',
    inputSchema: { name: z.string().describe('Who to greet.') },
    annotations: { readOnlyHint: true, idempotentHint: true },
  },
  async ({ name }) => ({ content: [{ type: 'text', text: `Hello, ${name}!` }] }),
);
await server.connect(new StdioServerTransport());
