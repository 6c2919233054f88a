"""The one sanitiser policy for untrusted text on its way to a person: terminal lines, rich
tables, Markdown tickets, the runbooks' lines (``python -m toolkit.report.sanitize``).

Query names come off the wire, names and paths from config files and argv, TXT/NSID/SOA text
from servers, ConfigMap names from the cluster: any of them may carry characters a terminal
obeys or a reader cannot see. Shown escaped and visible (``\\x1b``, ``\\n``, ``\\u200b``),
never obeyed and never invisible:

- C0 controls, DEL and C1 controls: ESC starts CSI/OSC sequences (retitle the window, clear
  the screen, OSC 52 writes the clipboard), BEL ends OSC, U+0080-U+009F are 8-bit CSI/OSC on
  some terminals, CR returns to the start of the line and a newline lets a crafted name forge
  a line such as ``verdict: ok``;
- the line and paragraph separators and the bidi controls ("Trojan Source",
  CVE-2021-42574: U+061C, U+200E/F, U+202A-E, U+2066-9), which reorder or split what the
  reader sees;
- every character that renders as nothing or as a plain space: zero-width ones (U+200B-D,
  U+2060-4, U+FEFF), the other format characters (Unicode category Cf: soft hyphen, Arabic
  number signs, tags U+E0000-E007F...), the default-ignorable fillers and variation selectors
  (U+034F, U+115F/60, U+17B4/5, U+180B-F, U+3164, U+FE00-F, U+FFA0, U+E0100-E01EF), the
  spaces other than U+0020 (U+00A0, U+2000-200A, U+202F, U+205F, U+3000...), the braille blank
  U+2800; so that ``corp\\u200b.example`` never looks exactly like ``corp.example``;
- surrogates (bytes that were not UTF-8, shown as the byte: ``\\xff``), private-use characters
  (an icon font can draw them as anything) and the noncharacters.

Markdown (for tickets; rendered by GitHub, GitLab, Jira): data never becomes live syntax.
Every word that is not plain prose (letters and digits, with inner ``-``, ``'`` or ``/``),
such as a name, an address, a path or anything carrying ``*_[]<>&!`|~#:\\``, is put in a
code span, where CommonMark reads nothing: no emphasis, link, image, autolink, raw HTML, entity
(``&#x202e;``, ``&ZeroWidthSpace;``) or emoji code (``:white_check_mark:``). Code spans take a
fence longer than any backtick run inside (CommonMark 6.1); in table cells ``|`` is written
``\\|`` even inside code spans (GFM tables split cells before inline parsing).

The rich (table) renderer passes data as ``rich.text.Text`` with emoji codes off: no rich
markup (``[bold]``, ``[link=...]``) and no ``:emoji:`` from data (toolkit.report.human).

JSON needs none of this: ``json.dumps`` escapes control characters itself, and runbooks need
the exact bytes, so the JSON renderers are not touched.
"""

from __future__ import annotations

import re
import sys

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# The characters escaped in every human output (see the module docstring for each group).
UNSAFE_CLASS = (
    "\x00-\x1f\x7f-\xa0\xad"                  # C0, DEL, C1, no-break space, soft hyphen
    "\u034f"                                   # combining grapheme joiner
    "\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"  # Arabic format characters, ALM
    "\u115f\u1160\u1680\u17b4\u17b5\u180b-\u180f"        # fillers, ogham space, Mongolian FVS
    "\u2000-\u200f"                            # spaces, ZWSP, ZWNJ, ZWJ, LRM, RLM
    "\u2028-\u202f"                            # LS, PS, bidi embeddings/overrides, NNBSP
    "\u205f-\u206f"                            # MMSP, word joiner, invisible operators, isolates
    "\u2800\u3000\u3164"                       # braille blank, ideographic space, Hangul filler
    "\ud800-\udfff"                            # surrogates (bytes that were not UTF-8)
    "\ue000-\uf8ff"                            # private use
    "\ufdd0-\ufdef\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\ufffe\uffff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff"                    # tags, variation selectors supplement
    "\U000f0000-\U0010ffff"                    # supplementary private use
)
_UNSAFE = re.compile(f"[{UNSAFE_CLASS}]")

# Markdown: a word that may stay plain text (ASCII letters and digits, inner - ' /).
# Also inert: a decimal number or range ("91.7", "0.1-1": no autolink, no list marker inside a
# word) and a "(s)" plural ("resend(s)": a parenthesis is live only after a link's "]").
_PLAIN = re.compile(r"[A-Za-z0-9]+(?:[-'/][A-Za-z0-9]+)*|\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?"
                    r"|[A-Za-z]+\(s")
_LEAD = "(\"'"
_TRAIL = ".,;:!?)\"'"
_BACKTICKS = re.compile(r"`+")
# Punctuation that means nothing inline, away from the start of a block (" - ", "(", "=").
_INERT = frozenset(".,;:?!()\"'-=+/%")


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:              # surrogateescape: the byte that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def for_terminal(text: object) -> str:
    """TEXT with every control, line break, bidi, invisible and look-alike-space character
    escaped visibly (one line, nothing a terminal obeys, nothing a reader cannot see)."""
    s = text if isinstance(text, str) else str(text)
    return _UNSAFE.sub(_escape, s) if _UNSAFE.search(s) else s


def md_code(text: object) -> str:
    """An inline code span holding TEXT literally, whatever backticks it contains."""
    return _code(for_terminal(text))


def _code(s: str) -> str:
    longest = max((len(run) for run in _BACKTICKS.findall(s)), default=0)
    fence = "`" * (longest + 1)
    # CommonMark strips one space on each side when both are there: pad when the content
    # starts or ends with a backtick, or starts and ends with a space.
    pad = " " if s.startswith("`") or s.endswith("`") or (s.startswith(" ") and s.endswith(" ")) else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _word(token: str, first: bool) -> str:
    """One space-free token of running text: plain prose stays, anything else is a code
    span; the punctuation around it stays outside (escaped at the start of the text, where
    ``1.`` or ``-`` would open a list)."""
    if not first and all(ch in _INERT for ch in token):
        return token                          # " - ", "(", "=": punctuation only
    core = token.lstrip(_LEAD)
    lead = token[:len(token) - len(core)]
    stripped = core.rstrip(_TRAIL)
    trail = core[len(stripped):]
    if stripped.endswith("(s") and not trail.startswith(")"):
        stripped, trail = core, ""            # an open "(s" is not the plural: a code span
    if not stripped:
        return _code(token)
    body = stripped if _PLAIN.fullmatch(stripped) else _code(stripped)
    if first:                                 # "1." or "1)" would open an ordered list
        trail = "".join("\\" + ch if ch in ".)" else ch for ch in trail)
    return lead + body + trail


# A code span the text itself writes (our own prose: "check it with `podtriage corefile
# check`"): kept as one span. Data that writes one is inert there too.
_SPAN = re.compile(r"`([^`]+)`")


def md_text(text: object) -> str:
    """Running Markdown text (list items, quotes, headings): one line, data in code spans,
    no live Markdown or HTML."""
    s = for_terminal(text)
    out: list[str] = []
    first = True
    pos = 0
    for m in _SPAN.finditer(s):
        first = _words(s[pos:m.start()], out, first)
        _emit(out, _code(m.group(1)))
        first = False
        pos = m.end()
    _words(s[pos:], out, first)
    return "".join(out)


def _emit(out: list[str], piece: str) -> None:
    """Append PIECE; a space between two backtick fences that would touch (their runs would
    merge and change where a code span ends)."""
    if out and piece.startswith("`") and out[-1].endswith("`"):
        out.append(" ")
    out.append(piece)


def _words(s: str, out: list[str], first: bool) -> bool:
    """Append the Markdown of the plain stretch S (between code spans); returns whether the
    start of the text is still ahead."""
    for i, part in enumerate(s.split(" ")):
        if i:
            out.append(" ")
        if part:
            _emit(out, _word(part, first))
            first = False
    return first


def md_cell(text: object) -> str:
    """A Markdown table cell: as ``md_text``, and no ``|`` that could end the cell."""
    s = md_text(text)
    # GFM splits rows at unescaped pipes before inline parsing, code spans included; a data
    # backslash right before a pipe would escape our escape, so it is shown as \x5c.
    return s.replace("\\|", "\\x5c|").replace("|", "\\|")


def sanitize_lines(lines: list[str] | None = None, *, markdown: bool = False) -> int:
    """``python -m toolkit.report.sanitize [--markdown]``: stdin to stdout, line by line,
    through ``for_terminal`` (or ``md_text``): how the runbooks print text that came from
    podtriage's JSON or from the cluster. Returns the exit status."""
    fix = md_text if markdown else for_terminal
    stream = sys.stdin if lines is None else lines
    try:
        for line in stream:
            sys.stdout.write(fix(line.rstrip("\n")) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        return 141
    except OSError:
        return 3
    return 0


if __name__ == "__main__":
    # Undecodable stdin bytes become surrogates, shown as \xNN.
    sys.stdin.reconfigure(errors="surrogateescape")  # type: ignore[union-attr]
    sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    sys.exit(sanitize_lines(markdown="--markdown" in sys.argv[1:]))
