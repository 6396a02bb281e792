"""python-hello: an example ward plugin written in Python.

Build: cargo xtask plugins   (-> target/plugins/python-hello.wasm)
Try:   python3 -m ward_plugin plugins/python-hello/app.py greet '{"name": "Ada"}'
       (with PYTHONPATH=sdk-guest/python)
"""

import heapq  # noqa: F401  Counter.most_common imports it lazily; see below
import re
from collections import Counter
from typing import Optional

# componentize-py bundles the modules that are imported while it builds the
# component (it snapshots the interpreter after importing this file): a module
# that the standard library imports lazily, inside a function, must be imported
# here, or the call fails with ModuleNotFoundError at run time.

# The four export classes must be names of this module: componentize-py looks
# them up here.
from ward_plugin import (
    Completions, Prompts, Resources, Tools, ToolError, ask as ask_client, prompt, resource, sample_text, supports, tool,
)

__all__ = ["Tools", "Resources", "Prompts", "Completions"]


@tool(read_only=True, idempotent=True)
def greet(name: str) -> str:
    """Greets someone by name.

    Args:
        name: Who to greet.
    """
    return f"Hello, {name}!"


@tool(
    title="Text statistics",
    read_only=True,
    idempotent=True,
    output_schema={
        "type": "object",
        "properties": {
            "characters": {"type": "integer"},
            "words": {"type": "integer"},
            "lines": {"type": "integer"},
            "sentences": {"type": "integer"},
            "average_word_length": {"type": "number"},
            "most_common": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"word": {"type": "string"}, "count": {"type": "integer"}},
                    "required": ["word", "count"],
                },
            },
        },
        "required": ["characters", "words", "lines", "sentences", "average_word_length", "most_common"],
    },
)
def text_stats(text: str, top: int = 5, ignore_case: bool = True, min_length: Optional[int] = None) -> dict:
    """Counts the characters, words, lines and sentences of a text and finds its most common words.

    Args:
        text: The text to analyse.
        top: How many of the most common words to return.
        ignore_case: Count "The" and "the" as one word.
        min_length: Ignore words shorter than this.
    """
    if top < 0 or top > 100:
        raise ToolError("top must be between 0 and 100")
    words = re.findall(r"[^\W_]+(?:['’-][^\W_]+)*", text)
    keyed = [w.lower() if ignore_case else w for w in words]
    if min_length:
        keyed = [w for w in keyed if len(w) >= min_length]
    return {
        "characters": len(text),
        "words": len(words),
        "lines": len(text.splitlines()),
        "sentences": len([s for s in re.split(r"[.!?]+", text) if s.strip()]),
        "average_word_length": round(sum(map(len, words)) / len(words), 2) if words else 0.0,
        "most_common": [{"word": w, "count": c} for w, c in Counter(keyed).most_common(top)],
    }


@tool(open_world=True)
def ask(question: str) -> str:
    """Asks the client's model a question (MCP sampling) and returns its answer.

    Args:
        question: What to ask.
    """
    return f"The model says: {sample_text(question, 200)}"


@tool
def introduce() -> str:
    """Asks the user's name and, if the client has roots, where it works, in
    one round (MCP elicitation and roots), then says hello.
    """
    questions = [("name", "elicitation/create", {
        "message": "What is your name?",
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    })]
    if supports("roots/list"):
        questions.append(("roots", "roots/list", {}))
    answers = ask_client(questions)
    for answer in answers:
        if isinstance(answer, ToolError):
            raise answer
    name = (answers[0].get("content") or {}).get("name", "stranger")
    roots = [root["uri"] for root in answers[1]["roots"]] if len(answers) > 1 else []
    return f"Hello {name}, working in {', '.join(roots) or 'no roots'}"


@resource("python-hello://about", name="about", description="What this plugin is.")
def about() -> str:
    return "python-hello: a ward plugin written in Python and built with componentize-py."


@prompt
def greeting_card(name: str, occasion: str = "birthday") -> str:
    """Asks the model to write a short greeting card.

    Args:
        name: Who the card is for.
        occasion: What it celebrates.
    """
    return f"Write a short, warm {occasion} card for {name}."
