"""Write ward plugins in Python: decorated, typed functions become MCP tools.

A plugin is one module (``app.py``) that defines its tools and re-exports the
four export classes of the ``ward:plugin/plugin`` world::

    from ward_plugin import tool, Tools, Resources, Prompts, Completions

    @tool
    def greet(name: str) -> str:
        \"\"\"Greets someone by name.\"\"\"
        return f"Hello, {name}!"

Build it into a WebAssembly component with componentize-py against ``wit/``
(``cargo xtask plugins`` does it for ``plugins/python-*``)::

    componentize-py -d wit -w plugin componentize app \\
        -p plugins/my-plugin -p sdk-guest/python -o my-plugin.wasm

The input JSON Schema of a tool comes from its signature: ``str``, ``int``,
``float``, ``bool``, ``list[T]``, ``dict``, ``Optional[T]`` / ``T | None``,
``Literal[...]`` and default values; the docstring's first paragraph is the
description and a Google-style ``Args:`` section describes the parameters.

What a tool returns becomes its result: a ``str`` is one text content; a
``dict`` is JSON text plus ``structuredContent``; a ``list``, number or bool is
JSON text; a :class:`Result` (or a list of :func:`text`/:func:`image`/...
contents) is used as is. Raising :class:`ToolError` (or any exception) gives an
``isError`` result that the model reads; raising :class:`InvalidParams` or
:class:`NotFound` gives a protocol error.

This module is pure Python: it imports the generated bindings (``wit_world``)
only inside the component, so ``python3 -m ward_plugin app.py`` can list and
call the tools on the host for a quick try.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import types as _pytypes
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

__all__ = [
    "tool", "resource", "prompt",
    "ToolError", "InvalidParams", "NotFound",
    "Result", "text", "image", "audio", "resource_link", "embedded",
    "log", "progress", "cancelled", "resource_updated",
    "create_message", "elicit", "sample_text", "list_roots", "supports", "ask", "lists_changed",
    "schema_for", "list_tools", "call_tool",
    "Tools", "Resources", "Prompts", "Completions",
]

_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

class ToolError(Exception):
    """The tool ran but failed: the model sees the message (MCP ``isError``)."""


class InvalidParams(Exception):
    """The arguments are missing, mistyped or out of range."""


class NotFound(Exception):
    """The tool, prompt or resource does not exist."""


# --------------------------------------------------------------------------
# Content (plain Python values; converted to bindings at the boundary)
# --------------------------------------------------------------------------

@dataclass
class _Content:
    kind: str  # text | image | audio | resource_link | resource
    value: Any


def text(s: str) -> _Content:
    """A text content."""
    return _Content("text", str(s))


def image(data: bytes, mime_type: str = "image/png") -> _Content:
    """An image content (raw bytes; ward base64-encodes them)."""
    return _Content("image", (bytes(data), mime_type))


def audio(data: bytes, mime_type: str = "audio/wav") -> _Content:
    """An audio content."""
    return _Content("audio", (bytes(data), mime_type))


def resource_link(uri: str, name: str, *, title: Optional[str] = None,
                  description: Optional[str] = None,
                  mime_type: Optional[str] = None,
                  size: Optional[int] = None) -> _Content:
    """A link to a resource the client may read later."""
    return _Content("resource_link", dict(uri=uri, name=name, title=title,
                                          description=description,
                                          mime_type=mime_type, size=size))


def embedded(uri: str, body: str | bytes, mime_type: Optional[str] = None) -> _Content:
    """An embedded resource (text or bytes)."""
    return _Content("resource", (uri, mime_type, body))


@dataclass
class Result:
    """A full tool result, for when the plain return conventions are not enough."""
    content: list = field(default_factory=list)
    structured: Any = None
    is_error: bool = False


# --------------------------------------------------------------------------
# JSON Schema from type annotations
# --------------------------------------------------------------------------

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Union or (hasattr(_pytypes, "UnionType") and origin is _pytypes.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) < len(typing.get_args(tp)):
            inner = args[0] if len(args) == 1 else typing.Union[tuple(args)]
            return True, inner
    return False, tp


def schema_for(tp: Any) -> dict:
    """The JSON Schema of one Python type annotation."""
    if tp is inspect.Parameter.empty or tp is Any or tp is None:
        return {}
    optional, inner = _is_optional(tp)
    if optional:
        return {"anyOf": [schema_for(inner), {"type": "null"}]}
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        s = schema_for(args[0])
        for extra in args[1:]:
            if isinstance(extra, str):
                s["description"] = extra
        return s
    if origin is typing.Literal:
        vals = list(args)
        s: dict = {"enum": vals}
        kinds = {_SCALARS.get(type(v)) for v in vals}
        if len(kinds) == 1 and None not in kinds:
            s["type"] = kinds.pop()
        return s
    if tp in (list, tuple, set, frozenset) or origin in (list, tuple, set, frozenset, typing.Sequence):
        s = {"type": "array"}
        if origin is tuple and args and args[-1] is not Ellipsis:
            s["prefixItems"] = [schema_for(a) for a in args]
            s["minItems"] = s["maxItems"] = len(args)
        elif args:
            s["items"] = schema_for(args[0])
        return s
    if tp is dict or origin is dict:
        s = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            s["additionalProperties"] = schema_for(args[1])
        return s
    if origin is typing.Union or (hasattr(_pytypes, "UnionType") and origin is _pytypes.UnionType):
        return {"anyOf": [schema_for(a) for a in args]}
    raise TypeError(f"ward_plugin: no JSON Schema for annotation {tp!r}")


def _parse_docstring(doc: Optional[str]) -> tuple[str, dict]:
    """(description, {param: description}) from a docstring with an optional Args: section."""
    doc = inspect.cleandoc(doc or "")
    params: dict = {}
    m = re.search(r"^(Args|Arguments|Parameters):\s*$", doc, re.M)
    body = doc
    if m:
        body = doc[:m.start()]
        current = None
        for line in doc[m.end():].splitlines():
            if line and not line[0].isspace():
                break  # next section
            pm = re.match(r"^\s{2,}(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$", line)
            if pm:
                current = pm.group(1)
                params[current] = pm.group(2).strip()
            elif current and line.strip():
                params[current] += " " + line.strip()
    description = body.strip().split("\n\n")[0].replace("\n", " ").strip()
    return description, params


def _signature_schema(fn: Callable, param_docs: dict) -> tuple[dict, list]:
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        hints = {}
    props: dict = {}
    required: list = []
    names: list = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        names.append(p.name)
        s = schema_for(hints.get(p.name, p.annotation))
        if p.name in param_docs:
            s["description"] = param_docs[p.name]
        if p.default is not p.empty:
            if p.default is None or isinstance(p.default, (str, int, float, bool, list, dict)):
                s["default"] = p.default
        else:
            optional, _ = _is_optional(hints.get(p.name, p.annotation))
            if not optional:
                required.append(p.name)
        props[p.name] = s
    schema: dict = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema, names


# --------------------------------------------------------------------------
# Registries
# --------------------------------------------------------------------------

@dataclass
class _Tool:
    name: str
    fn: Callable
    title: Optional[str]
    description: str
    input_schema: dict
    output_schema: Optional[dict]
    annotations: Optional[dict]
    params: list
    takes_kwargs: bool


@dataclass
class _Resource:
    uri: str
    fn: Callable
    name: str
    title: Optional[str]
    description: Optional[str]
    mime_type: Optional[str]
    pattern: Optional[re.Pattern]


@dataclass
class _Prompt:
    name: str
    fn: Callable
    title: Optional[str]
    description: Optional[str]
    arguments: list  # (name, description, required)


_TOOLS: dict = {}
_RESOURCES: list = []
_PROMPTS: dict = {}


def tool(fn: Optional[Callable] = None, *, name: Optional[str] = None,
         title: Optional[str] = None, description: Optional[str] = None,
         output_schema: Optional[dict] = None, read_only: Optional[bool] = None,
         destructive: Optional[bool] = None, idempotent: Optional[bool] = None,
         open_world: Optional[bool] = None):
    """Declares a tool. Usable bare (``@tool``) or with options (``@tool(read_only=True)``)."""

    def register(f: Callable) -> Callable:
        tname = name or f.__name__
        if not _NAME_RE.match(tname):
            raise ValueError(f"ward_plugin: tool name {tname!r} must match {_NAME_RE.pattern}")
        doc, param_docs = _parse_docstring(f.__doc__)
        schema, params = _signature_schema(f, param_docs)
        ann = dict(read_only=read_only, destructive=destructive,
                   idempotent=idempotent, open_world=open_world)
        takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(f).parameters.values())
        _TOOLS[tname] = _Tool(tname, f, title, description or doc or tname, schema,
                              output_schema,
                              ann if any(v is not None for v in ann.values()) else None,
                              params, takes_kwargs)
        return f

    return register(fn) if fn is not None else register


def resource(uri: str, *, name: Optional[str] = None, title: Optional[str] = None,
             description: Optional[str] = None, mime_type: Optional[str] = "text/plain"):
    """Declares a resource. A URI with ``{var}`` parts is a template whose
    variables are passed to the function as keyword arguments. The function
    returns ``str`` (text) or ``bytes`` (a blob)."""

    def register(f: Callable) -> Callable:
        doc, _ = _parse_docstring(f.__doc__)
        pattern = None
        if "{" in uri:
            parts = re.split(r"\{(\w+)\}", uri)
            rx = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)"
                         for i, p in enumerate(parts))
            pattern = re.compile("^" + rx + "$")
        _RESOURCES.append(_Resource(uri, f, name or f.__name__, title,
                                    description or doc or None, mime_type, pattern))
        return f

    return register


def prompt(fn: Optional[Callable] = None, *, name: Optional[str] = None,
           title: Optional[str] = None, description: Optional[str] = None):
    """Declares a prompt. Its (string) parameters are the prompt's arguments;
    those without a default are required. It returns a ``str`` (one user
    message) or a list of ``(role, str | content)`` pairs."""

    def register(f: Callable) -> Callable:
        doc, param_docs = _parse_docstring(f.__doc__)
        args = [(p.name, param_docs.get(p.name), p.default is p.empty)
                for p in inspect.signature(f).parameters.values()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        _PROMPTS[name or f.__name__] = _Prompt(name or f.__name__, f, title,
                                               description or doc or None, args)
        return f

    return register(fn) if fn is not None else register


# --------------------------------------------------------------------------
# Plain-Python dispatch (used by the component exports and by local tries)
# --------------------------------------------------------------------------

_HINTS = {"read_only": "readOnlyHint", "destructive": "destructiveHint",
          "idempotent": "idempotentHint", "open_world": "openWorldHint"}


def list_tools() -> list:
    """The declared tools as MCP-shaped dicts."""
    out = []
    for t in _TOOLS.values():
        d = {"name": t.name, "description": t.description, "inputSchema": t.input_schema}
        if t.title:
            d["title"] = t.title
        if t.output_schema:
            d["outputSchema"] = t.output_schema
        if t.annotations:
            d["annotations"] = {_HINTS[k]: v for k, v in t.annotations.items() if v is not None}
        out.append(d)
    return out


def _to_result(value: Any) -> Result:
    if isinstance(value, Result):
        return value
    if isinstance(value, _Content):
        return Result([value])
    if isinstance(value, str):
        return Result([text(value)])
    if value is None:
        return Result([])
    if isinstance(value, dict):
        return Result([text(json.dumps(value, ensure_ascii=False))], structured=value)
    if isinstance(value, list) and value and all(isinstance(c, _Content) for c in value):
        return Result(list(value))
    return Result([text(json.dumps(value, ensure_ascii=False))])


def call_tool(name: str, arguments: Any) -> Result:
    """Calls a tool with a JSON string or a dict of arguments; returns a :class:`Result`.

    Raises :class:`NotFound` or :class:`InvalidParams`; any other exception
    becomes an ``is_error`` result.
    """
    t = _TOOLS.get(name)
    if t is None:
        raise NotFound(f"no tool named {name!r}")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError as e:
            raise InvalidParams(f"arguments are not JSON: {e}") from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise InvalidParams("arguments must be a JSON object")
    kwargs = arguments if t.takes_kwargs else {k: v for k, v in arguments.items() if k in t.params}
    missing = [p for p in t.input_schema.get("required", []) if p not in kwargs]
    if missing:
        raise InvalidParams(f"missing argument(s): {', '.join(missing)}")
    try:
        return _to_result(t.fn(**kwargs))
    except (InvalidParams, NotFound):
        raise
    except ToolError as e:
        return Result([text(str(e))], is_error=True)
    except Exception as e:  # a bug in the tool: report it to the model, keep serving
        return Result([text(f"{type(e).__name__}: {e}")], is_error=True)


def _find_resource(uri: str) -> tuple[_Resource, dict]:
    for r in _RESOURCES:
        if r.pattern is None and r.uri == uri:
            return r, {}
    for r in _RESOURCES:
        if r.pattern is not None:
            m = r.pattern.match(uri)
            if m:
                return r, m.groupdict()
    raise NotFound(f"no resource {uri!r}")


# --------------------------------------------------------------------------
# Host imports (no-ops outside the component)
# --------------------------------------------------------------------------

def _host():
    try:
        from wit_world.imports import host  # type: ignore
        return host
    except ImportError:
        return None


def log(level: str, message: str) -> None:
    """Logs to ward's log and to the client. ``level``: debug, info, notice,
    warning, error, critical, alert, emergency."""
    h = _host()
    if h is None:
        print(f"[{level}] {message}", file=sys.stderr)
    else:
        h.log(h.LogLevel[level.upper()], str(message))


def progress(value: float, total: Optional[float] = None, message: Optional[str] = None) -> None:
    """Reports progress on the current request."""
    h = _host()
    if h is not None:
        h.progress(float(value), None if total is None else float(total), message)


def cancelled() -> bool:
    """True once the client has cancelled the current request."""
    h = _host()
    return bool(h.cancelled()) if h is not None else False


def resource_updated(uri: str) -> None:
    """Tells subscribed clients that a resource changed."""
    h = _host()
    if h is not None:
        h.resource_updated(uri)


def lists_changed() -> None:
    """Says that this plugin's tools, resources or prompts changed (lists that
    depend on a granted file, say): when the call ends, ward lists the plugin
    again and tells clients what changed."""
    h = _host()
    if h is not None:
        h.lists_changed()


# --------------------------------------------------------------------------
# Requests to the client (sampling, elicitation)
# --------------------------------------------------------------------------

# componentize-py bundles only the modules imported while it builds the
# component, and nothing else imports this binding: import it now.
try:
    from wit_world.imports import client as _client  # type: ignore
except ImportError:  # running outside a component (python3 -m ward_plugin)
    _client = None


def _ask(method: str, params: dict) -> dict:
    client = _client
    if client is None:
        raise ToolError(f"{method}: there is no client outside ward")
    from componentize_py_types import Err  # type: ignore
    try:
        answer = getattr(client, method)(json.dumps(params))
    except Err as e:
        # The error variant's payload is ward's message.
        raise ToolError(str(getattr(e.value, "value", e.value))) from None
    return json.loads(answer)


def create_message(params: dict) -> dict:
    """Asks the client's model for a message (``sampling/createMessage``).
    ``params`` and the result are the MCP JSON. Raises ``ToolError`` when the
    client cannot or will not answer."""
    return _ask("create_message", params)


def elicit(params: dict) -> dict:
    """Asks the user for input (``elicitation/create``): ``{"message": ...,
    "requestedSchema": {...}}``; the result has ``action`` and ``content``."""
    return _ask("elicit", params)


def list_roots() -> dict:
    """Asks the client for its roots (``roots/list``): ``{"roots": [{"uri":
    "file:///...", "name": ...}]}``."""
    client = _client
    if client is None:
        raise ToolError("roots/list: there is no client outside ward")
    from componentize_py_types import Err  # type: ignore
    try:
        return json.loads(client.list_roots())
    except Err as e:
        raise ToolError(str(getattr(e.value, "value", e.value))) from None


def supports(method: str) -> bool:
    """Whether the client declared the capability ``method``
    (``sampling/createMessage``, ``elicitation/create``, ``roots/list``)
    needs. On MCP 2026-07-28, asking without it fails the whole request."""
    return _client is not None and bool(_client.supports(method))


def ask(requests: list) -> list:
    """Asks several questions in one round (on MCP 2026-07-28, one
    input-required result): ``[(key, method, params), ...]`` with keys of
    the plugin's choosing, unique within the call. Returns the answers in
    order: each the result dict, or a ``ToolError`` (not raised) for a
    question that failed."""
    client = _client
    if client is None:
        raise ToolError("there is no client outside ward")
    from componentize_py_types import Ok  # type: ignore
    asked = [{"key": key, "method": method, "params": params} for key, method, params in requests]
    answers = []
    for answer in client.ask(json.dumps(asked)):
        if isinstance(answer, Ok):
            answers.append(json.loads(answer.value))
        else:
            answers.append(ToolError(str(getattr(answer.value, "value", answer.value))))
    return answers


def sample_text(prompt: str, max_tokens: int = 200) -> str:
    """Asks the client's model one question and returns the text it answers."""
    result = create_message({
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
        "maxTokens": max_tokens,
    })
    content = result.get("content") or {}
    return content.get("text") if isinstance(content, dict) and "text" in content else json.dumps(content)


# --------------------------------------------------------------------------
# Component exports (componentize-py finds these classes in the app module)
# --------------------------------------------------------------------------

def _err(e: Exception):
    from componentize_py_types import Err  # type: ignore
    from wit_world.imports import types as T  # type: ignore
    if isinstance(e, NotFound):
        return Err(T.Error_NotFound(str(e)))
    if isinstance(e, InvalidParams):
        return Err(T.Error_InvalidParams(str(e)))
    return Err(T.Error_Failed(f"{type(e).__name__}: {e}" if not isinstance(e, ToolError) else str(e)))


def _content(c: Any):
    from wit_world.imports import types as T  # type: ignore
    if not isinstance(c, _Content):
        c = text(c if isinstance(c, str) else json.dumps(c, ensure_ascii=False))
    if c.kind == "text":
        return T.Content_Text(c.value)
    if c.kind == "image":
        return T.Content_Image(T.Media(c.value[0], c.value[1]))
    if c.kind == "audio":
        return T.Content_Audio(T.Media(c.value[0], c.value[1]))
    if c.kind == "resource_link":
        return T.Content_ResourceLink(T.ResourceLink(**c.value))
    uri, mime, body = c.value
    return T.Content_Resource(T.ResourceContents(uri, mime, _body(body)))


def _body(body: Any):
    from wit_world.imports import types as T  # type: ignore
    if isinstance(body, (bytes, bytearray)):
        return T.ResourceBody_Blob(bytes(body))
    return T.ResourceBody_Text(str(body))


class Tools:
    """Export of ``ward:plugin/tools``: serves the ``@tool`` functions."""

    def list_tools(self):
        from wit_world.exports import tools as W  # type: ignore
        out = []
        for t in _TOOLS.values():
            ann = W.Annotations(**t.annotations) if t.annotations else None
            out.append(W.Tool(t.name, t.title, t.description, json.dumps(t.input_schema),
                              json.dumps(t.output_schema) if t.output_schema else None, ann))
        return out

    def call_tool(self, name: str, arguments: str):
        from wit_world.exports import tools as W  # type: ignore
        try:
            r = call_tool(name, arguments)
        except (NotFound, InvalidParams) as e:
            raise _err(e)
        structured = None if r.structured is None else json.dumps(r.structured, ensure_ascii=False)
        return W.ToolResult([_content(c) for c in r.content], structured, bool(r.is_error))


class Resources:
    """Export of ``ward:plugin/resources``: serves the ``@resource`` functions."""

    def list_resources(self):
        from wit_world.exports import resources as W  # type: ignore
        return [W.Resource(r.uri, r.name, r.title, r.description, r.mime_type, None)
                for r in _RESOURCES if r.pattern is None]

    def list_resource_templates(self):
        from wit_world.exports import resources as W  # type: ignore
        return [W.ResourceTemplate(r.uri, r.name, r.title, r.description, r.mime_type)
                for r in _RESOURCES if r.pattern is not None]

    def read_resource(self, uri: str):
        from wit_world.imports import types as T  # type: ignore
        try:
            r, params = _find_resource(uri)
            body = r.fn(**params)
        except Exception as e:
            raise _err(e)
        if isinstance(body, list):
            return [T.ResourceContents(uri, r.mime_type, _body(b)) for b in body]
        mime = r.mime_type if not isinstance(body, (bytes, bytearray)) or r.mime_type != "text/plain" \
            else "application/octet-stream"
        return [T.ResourceContents(uri, mime, _body(body))]


class Prompts:
    """Export of ``ward:plugin/prompts``: serves the ``@prompt`` functions."""

    def list_prompts(self):
        from wit_world.exports import prompts as W  # type: ignore
        return [W.Prompt(p.name, p.title, p.description,
                         [W.PromptArgument(n, None, d, req) for (n, d, req) in p.arguments])
                for p in _PROMPTS.values()]

    def get_prompt(self, name: str, arguments):
        from wit_world.exports import prompts as W  # type: ignore
        p = _PROMPTS.get(name)
        try:
            if p is None:
                raise NotFound(f"no prompt named {name!r}")
            known = {n for (n, _, _) in p.arguments}
            out = p.fn(**{k: v for (k, v) in arguments if k in known})
        except Exception as e:
            raise _err(e)
        if isinstance(out, str):
            out = [("user", out)]
        messages = [W.PromptMessage(W.Role.ASSISTANT if role == "assistant" else W.Role.USER,
                                    _content(c)) for (role, c) in out]
        return W.PromptResult(p.description, messages)


class Completions:
    """Export of ``ward:plugin/completions``: no suggestions by default."""

    def complete(self, target, argument: str, value: str, context):
        from wit_world.exports import completions as W  # type: ignore
        return W.Completion([], 0, False)


# --------------------------------------------------------------------------
# Local try: python3 -m ward_plugin path/to/app.py [TOOL [JSON]]
# --------------------------------------------------------------------------

def _main(argv: list) -> int:
    if not argv:
        print("usage: python3 -m ward_plugin APP.py [TOOL [JSON-ARGS]]", file=sys.stderr)
        return 2
    import importlib.util
    import os
    path = argv[0]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    # The app imports `ward_plugin`; make it this very module, not a second copy.
    sys.modules["ward_plugin"] = sys.modules[__name__]
    spec = importlib.util.spec_from_file_location("app", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore
    if len(argv) == 1:
        print(json.dumps(list_tools(), indent=2))
        return 0
    r = call_tool(argv[1], argv[2] if len(argv) > 2 else "{}")
    print(json.dumps({
        "content": [c.value if c.kind == "text" else {c.kind: repr(c.value)[:80]} for c in r.content],
        "structured": r.structured, "isError": r.is_error}, indent=2, ensure_ascii=False))
    return 1 if r.is_error else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
