"""Drives `ward serve --http` with the official MCP Python SDK (PyPI `mcp`)
over Streamable HTTP with `Authorization: Bearer TOKEN`, and prints one JSON
summary of what it saw on stdout. Run by tests/integration/py_client.rs with
the Python of a venv that `cargo xtask test` fills from a pinned
requirements file beside this script (mcp-1.txt, mcp-2.txt); not meant to be
run by hand, but it can be:

    WARD_PY_URL=http://127.0.0.1:PORT/mcp WARD_PY_TOKEN=JWT \\
      .tools/py-client/mcp-2/bin/python tests/py-client/client.py

(the token travels in the environment, not on the command line, where other
users of the machine could read it). It works with both majors of the SDK,
each the way its documentation connects with a bearer token:

- mcp 1.x: `streamablehttp_client(url, headers={"Authorization": ...})` and
  a `ClientSession`, `initialize()`: a legacy (2025-11-25) session.
- mcp 2.x (which has no `streamablehttp_client`): an `httpx2.AsyncClient`
  with the header, given to `streamable_http_client`, and `mcp.Client`,
  which probes `server/discover` and speaks the 2026-07-28 era.

It lists the tools, calls `hello_greet {"name": "Ada"}`, then calls
`stats_describe`, which the token has no scope for, and records what the SDK
raises. Every HTTP response the SDK's client received is recorded too
(method, the JSON-RPC method it answered, status, `WWW-Authenticate`), and
every warning the SDK logged, instead of being printed. The summary is
printed whatever happens; the exit status is 0 once it is.
"""

import importlib.metadata
import json
import logging
import os
import platform
import sys
import warnings as pywarnings
from datetime import timedelta

import anyio

try:
    BaseExceptionGroup
except NameError:  # Python 3.10: anyio's backport
    from exceptiongroup import BaseExceptionGroup

URL = os.environ["WARD_PY_URL"]
TOKEN = os.environ["WARD_PY_TOKEN"]
SDK = importlib.metadata.version("mcp")
MAJOR = int(SDK.split(".")[0])
HEADERS = {"Authorization": f"Bearer {TOKEN}"}

# The whole run, and each request: a stuck server fails the run, not the test's clock.
RUN_TIMEOUT = 120
REQUEST_TIMEOUT = 60
CLIENT_INFO = {"name": "ward-py-client-test", "version": "0"}

out = {
    "sdk": SDK,
    "python": platform.python_version(),
    "connected": False,
    "stage": "connect",
    "protocolVersion": None,
    "server": None,
    "tools": None,
    "greet": None,
    "forbidden": None,
    "error": None,
    "http": [],
    "warnings": [],
}


class Captured(logging.Handler):
    def emit(self, record):
        out["warnings"].append(f"{record.name}: {record.levelname}: {record.getMessage()}")


logging.basicConfig(level=logging.WARNING, handlers=[Captured()], force=True)
pywarnings.showwarning = lambda message, category, *rest, **kw: out["warnings"].append(
    f"{category.__name__}: {message}"
)


def describe(error):
    """An exception as JSON; an exception group as its leaves (anyio task
    groups wrap what a transport task raised)."""
    if isinstance(error, BaseExceptionGroup):
        leaves = []
        for inner in error.exceptions:
            leaf = describe(inner)
            leaves.extend(leaf.get("leaves", [leaf]))
        return {"type": type(error).__qualname__, "message": str(error), "leaves": leaves}
    described = {
        "type": f"{type(error).__module__}.{type(error).__qualname__}",
        "message": str(error),
    }
    data = getattr(error, "error", None)  # McpError / MCPError: the JSON-RPC error
    if data is not None and hasattr(data, "code"):
        described["code"] = data.code
        described["errorMessage"] = data.message
    return described


async def record(response):
    """httpx(2) response hook: what each answer to the SDK was."""
    request = response.request
    method = request.headers.get("mcp-method")
    if method is None and request.method == "POST":
        try:
            method = json.loads(request.content).get("method")
        except Exception:
            method = None
    out["http"].append(
        {
            "method": request.method,
            "rpc": method,
            "status": response.status_code,
            "challenge": response.headers.get("www-authenticate"),
        }
    )


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def texts(result):
    return "\n".join(c["text"] for c in result.get("content", []) if c.get("type") == "text")


async def list_all(client):
    names, cursor = [], None
    while True:
        page = dump(await client.list_tools(cursor=cursor))
        names += [tool["name"] for tool in page["tools"]]
        cursor = page.get("nextCursor")
        if not cursor:
            return names


async def exercise(client):
    """The calls, on a connected client (a 1.x ClientSession or a 2.x Client)."""
    out["connected"] = True
    out["stage"] = "tools/list"
    out["tools"] = await list_all(client)
    out["stage"] = "hello_greet"
    greet = dump(await client.call_tool("hello_greet", {"name": "Ada"}))
    out["greet"] = {"isError": greet.get("isError", False), "text": texts(greet)}
    # Last: in 1.x the refusal ends the connection.
    out["stage"] = "stats_describe"
    try:
        result = dump(await client.call_tool("stats_describe", {"numbers": [1, 2, 3]}))
    except Exception as error:
        out["forbidden"] = {"failed": True, "raised": describe(error)}
    else:
        out["forbidden"] = {"failed": result.get("isError", False), "result": result}
    out["stage"] = "close"


async def run_v1():
    from mcp import ClientSession, types
    from mcp.client.streamable_http import streamablehttp_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    def factory(headers=None, timeout=None, auth=None):
        client = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
        client.event_hooks["response"].append(record)
        return client

    # Deprecated in late 1.x, and what 1.x clients in the field call.
    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore", DeprecationWarning)
        transport = streamablehttp_client(
            URL, headers=HEADERS, timeout=REQUEST_TIMEOUT, httpx_client_factory=factory
        )
    async with transport as (read, write, _session_id):
        async with ClientSession(
            read,
            write,
            read_timeout_seconds=timedelta(seconds=REQUEST_TIMEOUT),
            client_info=types.Implementation(**CLIENT_INFO),
        ) as session:
            init = await session.initialize()
            out["protocolVersion"] = init.protocolVersion
            out["server"] = dump(init.serverInfo)
            await exercise(session)


async def run_v2():
    import httpx2
    from mcp import Client, types
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(
        headers=HEADERS,
        timeout=httpx2.Timeout(REQUEST_TIMEOUT),
        event_hooks={"response": [record]},
    )
    async with http:
        client = Client(
            streamable_http_client(URL, http_client=http),
            read_timeout_seconds=REQUEST_TIMEOUT,
            client_info=types.Implementation(**CLIENT_INFO),
        )
        async with client:
            out["protocolVersion"] = client.protocol_version
            out["server"] = dump(client.server_info) if client.server_info else None
            await exercise(client)


async def main():
    try:
        with anyio.fail_after(RUN_TIMEOUT):
            await (run_v1() if MAJOR == 1 else run_v2())
    except BaseException as error:  # noqa: BLE001 - everything goes in the summary
        if isinstance(error, KeyboardInterrupt):
            raise
        if out["stage"] == "stats_describe" and out["forbidden"] is None:
            # The refusal tore the connection down (mcp 1.x): that is its answer.
            out["forbidden"] = {"failed": True, "raised": describe(error), "endedConnection": True}
        else:
            out["error"] = {"stage": out["stage"], "raised": describe(error)}


anyio.run(main)
sys.stdout.write(json.dumps(out) + "\n")
