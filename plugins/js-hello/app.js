// js-hello: an example ward plugin written in JavaScript.
//
// Build: cargo xtask plugins   (-> target/plugins/js-hello.wasm)
// `ward_plugin.js` is sdk-guest/js/ward_plugin.js: the build copies it next
// to this file before running componentize-js.
import { tool, prompt, resource, sampleText, ask, supports, ToolError } from './ward_plugin.js';

// The world's exports must be exports of this module.
export { tools, resources, prompts, completions } from './ward_plugin.js';

tool({
  name: 'greet',
  description: 'Greets someone by name.',
  input: { name: { type: 'string', description: 'Who to greet.' } },
  annotations: { readOnly: true, idempotent: true },
}, ({ name }) => `Hello, ${name}!`);

tool({
  name: 'ask',
  description: "Asks the client's model a question (MCP sampling) and returns its answer.",
  input: { question: { type: 'string', description: 'What to ask.' } },
  annotations: { openWorld: true },
}, ({ question }) => `The model says: ${sampleText(question, 200)}`);

tool({
  name: 'introduce',
  description: "Asks the user's name and, if the client has roots, where it works, in one round (MCP elicitation and roots), then says hello.",
  input: {},
}, () => {
  const questions = [{
    key: 'name',
    method: 'elicitation/create',
    params: {
      message: 'What is your name?',
      requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
    },
  }];
  if (supports('roots/list')) questions.push({ key: 'roots', method: 'roots/list', params: {} });
  const answers = ask(questions);
  const failed = answers.find((a) => a instanceof Error);
  if (failed) throw failed;
  const name = answers[0].content?.name ?? 'stranger';
  const roots = answers.length > 1 ? answers[1].roots.map((r) => r.uri) : [];
  return `Hello ${name}, working in ${roots.join(', ') || 'no roots'}`;
});

// The JS engine in componentize-js has no Intl/ICU (no String.prototype.normalize),
// so fold the common Latin accents by table: "Crème brûlée" -> "creme brulee".
const FOLD = {
  a: 'àáâãäåāăą', c: 'çćĉċč', d: 'ďđ', e: 'èéêëēĕėęě', g: 'ĝğġģ', h: 'ĥħ', i: 'ìíîïĩīĭįı',
  j: 'ĵ', k: 'ķ', l: 'ĺļľŀł', n: 'ñńņňŉ', o: 'òóôõöøōŏő', r: 'ŕŗř', s: 'śŝşšș', t: 'ţťŧț',
  u: 'ùúûüũūŭůűų', w: 'ŵ', y: 'ýÿŷ', z: 'źżž', ae: 'æ', oe: 'œ', ss: 'ß', th: 'þ',
};
const FOLD_MAP = new Map(Object.entries(FOLD).flatMap(([to, from]) => [...from].map((c) => [c, to])));
const deaccent = (s) => [...s].map((c) => FOLD_MAP.get(c) ?? c).join('');

tool({
  name: 'slugify',
  title: 'Slugify',
  description: 'Turns a title into a URL slug: lowercase ASCII words joined by a separator.',
  input: {
    text: { type: 'string', description: 'The text to slugify.' },
    separator: { type: 'string', default: '-', description: 'What joins the words.' },
    max_length: { type: 'integer', minimum: 1, optional: true, description: 'Cut the slug to at most this many characters (at a word boundary).' },
  },
  output: {
    type: 'object',
    properties: { slug: { type: 'string' }, words: { type: 'integer' } },
    required: ['slug', 'words'],
  },
  annotations: { readOnly: true, idempotent: true },
}, ({ text, separator = '-', max_length }) => {
  const words = deaccent(text.toLowerCase())
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  if (words.length === 0) throw new ToolError('the text has no letters or digits to make a slug from');
  let slug = words.join(separator);
  if (max_length !== undefined && slug.length > max_length) {
    const cut = slug.slice(0, max_length + separator.length);
    const at = cut.lastIndexOf(separator);
    slug = at > 0 ? cut.slice(0, at) : slug.slice(0, max_length);
  }
  return { slug, words: slug.split(separator).filter(Boolean).length };
});

resource({
  uri: 'js-hello://about',
  name: 'about',
  description: 'What this plugin is.',
}, () => 'js-hello: a ward plugin written in JavaScript and built with componentize-js.');

prompt({
  name: 'tagline',
  description: 'Asks the model for a tagline for a product.',
  arguments: [{ name: 'product', description: 'The product to write a tagline for.' }],
}, ({ product }) => `Write a five-word tagline for ${product}.`);
