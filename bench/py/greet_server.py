"""The baseline of ward-bench's `python` benchmark: the official MCP Python
SDK (`mcp`, PyPI) serving over stdio the same `greet` tool as
plugins/python-hello/app.py, with the same answer.

Run with the venv that `cargo xtask bench` installs (xtask/src/pyclient.rs):
    .tools/py-client/mcp-2/bin/python bench/py/greet_server.py
mcp 2.x calls FastMCP `MCPServer` (mcp.server.mcpserver); 1.x has FastMCP
(mcp.server.fastmcp). Either works.
"""

try:
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as Server

mcp = Server("python-greet", log_level="WARNING")


@mcp.tool()
def greet(name: str) -> str:
    """Greets someone by name.

    Args:
        name: Who to greet.
    """
    return f"Hello, {name}!"


if __name__ == "__main__":
    mcp.run()
