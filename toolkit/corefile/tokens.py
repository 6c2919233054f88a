"""The Corefile tokenizer (coredns/caddy's lexer): words, quoted strings, comments, lines."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from toolkit.corefile.document import CorefileError


@dataclass(frozen=True, kw_only=True)
class Token:
    """One word of the Corefile with where it stands (and the snippets it came through)."""

    text: str
    line: int
    column: int
    quoted: bool = False
    first_on_line: bool = False
    # Snippet names this token was imported through (outermost first).
    chain: tuple[str, ...] = ()
    import_line: int | None = None


_TOKEN_RE = re.compile(
    r'(?P<c>\#[^\n]*)'
    r'|(?P<q>"[^"\\]*(?:\\.[^"\\]*)*")'
    r'|(?P<u>")'
    r'|(?P<b>[^\s#"][^\s#]*)',
    re.DOTALL,
)
_UNESCAPE_RE = re.compile(r'\\(.)', re.DOTALL)


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body
    return _UNESCAPE_RE.sub(lambda m: '"' if m.group(1) == '"' else m.group(0), body)


def tokenize(text: str, *, source: str = "<corefile>", line_offset: int | None = 0) -> list[Token]:
    """Split TEXT into tokens with 1-based line and column. Raises CorefileError only."""
    if not isinstance(text, str):
        raise CorefileError("Corefile text is not a string", 1, 1, source=source)
    newlines = [i for i, ch in enumerate(text) if ch == "\n"] if "\n" in text else []
    tokens: list[Token] = []
    last_line = 0
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        if kind == "c":
            continue
        start = m.start()
        line_idx = bisect.bisect_left(newlines, start)
        line = line_idx + 1
        column = start - (newlines[line_idx - 1] + 1 if line_idx else 0) + 1
        if kind == "u":
            raise CorefileError("unterminated quoted string", line, column, source=source,
                                file_line=None if line_offset is None else line + line_offset)
        if kind == "q":
            value = _unescape(m.group()[1:-1])
            quoted = True
        else:
            value = m.group()
            quoted = False
        tokens.append(Token(text=value, line=line, column=column, quoted=quoted, first_on_line=line != last_line))
        # a quoted token may span lines: the next token is on a new line only after its end
        last_line = line + (m.group().count("\n") if quoted else 0)
    return tokens

