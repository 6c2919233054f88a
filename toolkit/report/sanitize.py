"""One sanitiser for untrusted text on its way to a terminal or a Markdown ticket.

Query names come off the wire, names and paths from config files and argv, TXT/NSID/SOA text
from servers: any of them may carry bytes a terminal obeys. ESC starts CSI/OSC sequences
(retitle the window, rewrite the screen, OSC 52 writes the clipboard), BEL ends OSC, C1
controls (U+0080-U+009F) are 8-bit CSI/OSC on some terminals, CR returns to the start of the
line and a newline lets a crafted name forge a line such as ``verdict: ok``; the Unicode
line/paragraph separators and bidi controls ("Trojan Source", CVE-2021-42574) reorder or
split what the reader sees. All are shown escaped and visible (``\\x1b``, ``\\n``,
``\\u202e``), never obeyed.

Markdown adds its own syntax: in table cells ``|`` ends the cell and a backtick opens code,
``<`` can open HTML that ticket systems render; code spans take a fence longer than any
backtick run inside (CommonMark 6.1). JSON needs none of this: ``json.dumps`` escapes
control characters itself, so the JSON renderers are not touched.
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0, DEL, C1; U+2028/2029 (line/paragraph separators); bidi marks, embeddings, overrides
# and isolates (U+061C, U+200E/F, U+202A-E, U+2066-9); U+FEFF (zero-width no-break space).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069\ufeff]")
_MD_CELL = re.compile(r"[|`<\\]")
_MD_TEXT = re.compile(r"[<\\]")


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: object) -> str:
    """TEXT with every control, line break and bidi character escaped visibly."""
    s = text if isinstance(text, str) else str(text)
    return _UNSAFE.sub(_escape, s) if _UNSAFE.search(s) else s


def md_text(text: object) -> str:
    """Running Markdown text (list items, quotes): one line, no raw HTML."""
    s = for_terminal(text)
    return _MD_TEXT.sub(lambda m: "\\" + m.group(0), s)


def md_cell(text: object) -> str:
    """A Markdown table cell: also no ``|`` (ends the cell) nor backtick (opens code)."""
    s = for_terminal(text)
    return _MD_CELL.sub(lambda m: "\\" + m.group(0), s)


def md_code(text: object) -> str:
    """An inline code span holding TEXT literally, whatever backticks it contains."""
    s = for_terminal(text)
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or (s.startswith(" ") and s.endswith(" ")) else ""
    return f"{fence}{pad}{s}{pad}{fence}"
