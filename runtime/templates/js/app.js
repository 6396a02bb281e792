// {{name}}: a ward plugin. Build it with ./build.sh (-> dist/{{name}}.wasm).
import { tool, ToolError } from './ward_plugin.js';

// The world's exports must be exports of this module.
export { tools, resources, prompts, completions } from './ward_plugin.js';

tool({
  name: 'greet',
  description: 'Greets someone by name.',
  input: { name: { type: 'string', description: 'Who to greet.' } },
  annotations: { readOnly: true },
}, ({ name }) => {
  if (!name.trim()) throw new ToolError('name must not be empty');
  return `Hello, ${name}!`;
});
