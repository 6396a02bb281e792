// Smoke test of the tools, run on the host (Node >= 20.6): node test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

const run = (...args) => JSON.parse(execFileSync(process.execPath, ['try.mjs', 'app.js', ...args], { encoding: 'utf8' }));

test('lists greet', () => {
  const tools = run();
  assert.ok(tools.some((t) => t.name === 'greet'));
});

test('greets by name', () => {
  const r = run('greet', '{"name": "Ada"}');
  assert.equal(r.isError, false);
  assert.match(r.content[0].val, /Ada/);
});
