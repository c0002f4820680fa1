"""Upstream error text made fit for clients: no stack traces, no server file paths.

Servers such as llama-cpp-python put `str(exception)` (and some their whole traceback) in the
message of a 500; relayed as is, it shows clients the upstream's installation paths and code.
`clean(text)` keeps what the message says and drops how the server failed:

    clean('Traceback (most recent call last):\\n  File "/usr/lib/python3/x.py", line 3, in f\\n'
          '    raise ValueError("bad")\\nValueError: bad')              -> 'ValueError: bad'
    clean("No such file: /home/ci/models/llama.gguf")                   -> 'No such file: <path>'

Only paths under well-known roots (or inside site-packages / node_modules) are replaced, so the
URL paths and model ids an API message names ("/v1/chat/completions", "acme/chat") stay.
"""

from __future__ import annotations

import re

# The lines of a stack trace, in the languages upstream servers are written in.
_TRACE_LINES = (
    re.compile(r"^\s*Traceback \(most recent call last\):\s*$"),
    re.compile(r"^\s*During handling of the above exception, another exception occurred:\s*$"),
    re.compile(r"^\s*The above exception was the direct cause of the following exception:\s*$"),
    re.compile(r'^\s*File "[^"]*", line \d+'),  # Python frames
    re.compile(r"^\s+at .+[(:]\S*:\d+(:\d+)?\)?\s*$"),  # JavaScript and Java frames
    re.compile(r"^\s*goroutine \d+ \[[^\]]+\]:\s*$"),  # Go
    re.compile(r"^\s+\S+\.(go|rs|c|cc|cpp|h):\d+"),
    re.compile(r"^\s*\^+\s*$|^\s*[~^]{3,}\s*$"),  # Python 3.11's underlines
)
_PYTHON_FRAME = re.compile(r'^\s*File "[^"]*", line \d+')
_ROOTS = (
    "home|usr|opt|var|tmp|app|srv|root|etc|lib|lib64|mnt|data|workspace|workspaces|Users|private|nix|run|code|"
    "src|build|proc|sys|models|content"
)
_PATH = re.compile(
    rf"(?<![\w:/.-])(?:/(?:{_ROOTS})(?:/[^\s'\"()<>,;:]+)+|(?:/[^\s'\"()<>,;:]+)*/(?:site-packages|dist-packages|"
    rf"node_modules)(?:/[^\s'\"()<>,;:]+)*)/?"
)
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\[^\s'\"()<>,;]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def _without_traces(text: str) -> str:
    kept: list[str] = []
    skip_code_line = False
    for line in text.splitlines():
        if skip_code_line and line.startswith((" ", "\t")) and not _PYTHON_FRAME.match(line):
            skip_code_line = False  # the source line printed under a Python frame
            continue
        skip_code_line = bool(_PYTHON_FRAME.match(line))
        if any(pattern.match(line) for pattern in _TRACE_LINES):
            continue
        kept.append(line)
    return "\n".join(kept)


def clean(text: str) -> str:
    """`text` without stack traces or file paths (see the module's docstring)."""
    text = _without_traces(text)
    text = _PATH.sub("<path>", text)
    text = _WINDOWS_PATH.sub("<path>", text)
    return _BLANK_LINES.sub("\n\n", text).strip()
