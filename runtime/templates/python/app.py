"""{{name}}: a ward plugin. Build it with ./build.sh (-> dist/{{name}}.wasm)."""

# Tools are typed functions: the JSON Schema comes from the annotations, the
# description from the docstring (an "Args:" section describes the arguments).
# componentize-py bundles only modules imported while it builds: import at the
# top what your tools use.
from ward_plugin import Completions, Prompts, Resources, Tools, ToolError, tool

# componentize-py looks up these four export classes in this module.
__all__ = ["Tools", "Resources", "Prompts", "Completions"]


@tool(read_only=True)
def greet(name: str) -> str:
    """Greets someone by name.

    Args:
        name: Who to greet.
    """
    if not name.strip():
        raise ToolError("name must not be empty")
    return f"Hello, {name}!"
