"""A pure Corefile parser: server blocks, directives, snippets and imports.

Follows the Caddyfile grammar CoreDNS uses (coredns/caddy):
- tokens are separated by whitespace; a newline ends a directive line; ``#`` outside quotes
  starts a comment up to the end of the line; a token that starts with ``"`` is quoted up to the
  next unescaped ``"`` (``\\"`` is the only escape) and may span lines (toolkit.corefile.tokens);
- a server block is one or more addresses (separated by whitespace or commas, a trailing comma
  continues on the next line) followed by ``{`` ... ``}``; a Corefile with a single block may
  omit the braces;
- ``(name) { ... }`` defines a snippet, ``import name`` splices it in (one argument only: CoreDNS's
  caddy has no snippet arguments, ``{args[N]}`` stays as written); an import of something
  that is not a snippet defined before it is a file glob, which a pure parser cannot read:
  it is recorded as unresolved, unless the caller hands the
  files in (``files``: pattern -> [(name, text)], e.g. the keys of AKS's or k3s's
  ``coredns-custom`` ConfigMap for ``import custom/*.server``); their tokens are spliced in at the
  import, as caddy's ``doImport`` does with the files a glob matches (in sorted order);
- ``{$VAR}`` / ``{%VAR%}`` are environment placeholders: replaced from ``env`` when given,
  otherwise kept verbatim and recorded.

Nothing here recurses: the parser walks the token stream with explicit stacks and bounds the
nesting depth (MAX_DEPTH) and the import expansion (MAX_IMPORTED_TOKENS) with a CorefileError, the
only exception this module raises on any input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from toolkit.corefile.addresses import normalize_address
from toolkit.corefile.document import Corefile, CorefileError, Directive, Import, ServerBlock
from toolkit.corefile.tokens import Token, tokenize
from toolkit.errors import InputFileError

__all__ = ["FRAGMENT_PREFIX", "MAX_DEPTH", "MAX_IMPORTED_TOKENS", "Corefile", "CorefileError",
           "Directive", "ServerBlock", "normalize_address", "parse_corefile", "parse_fragment"]

MAX_DEPTH = 64
MAX_IMPORTED_TOKENS = 200_000
MAX_SNIPPET_EXPANSIONS = 10_000  # coredns/caddy caddyfile/parse.go maxSnippetExpansions

# What {$VAR} substitution may add to one Corefile: the ConfigMap input cap (4 MiB). CoreDNS
# has none (coredns/caddy caddyfile/parse.go replaceEnvReferences: strings.Replace per token,
# bounded only by the process environment: 128 KiB per variable, MAX_ARG_STRLEN), so a 32 KB
# file of placeholders and one --env value of 100 KB would be 800 MB here; past the cap the
# Corefile is refused (exit 3) rather than grown.
MAX_ENV_EXPANSION = 4 << 20

_ENV_RE = re.compile(r'\{\$([^{}$%\s]+)\}|\{%([^{}$%\s]+)%\}')


@dataclass(slots=True)
class _Frame:
    """A list of tokens (the Corefile's, or a snippet's being spliced in) and how far it is read."""

    tokens: list[Token]
    pos: int = 0


class _Stream:
    """Tokens with import splicing: a stack of frames, never recursion."""

    def __init__(self, tokens: list[Token]) -> None:
        self.frames: list[_Frame] = [_Frame(tokens)]
        self.imported = 0
        # The token read last: caddy names its line when the input ends too early (its
        # Dispenser's Line() is the current token's, caddyfile/dispenser.go EOFErr/SyntaxErr).
        self.last: Token | None = None

    def peek(self) -> Token | None:
        while self.frames:
            top = self.frames[-1]
            if top.pos < len(top.tokens):
                return top.tokens[top.pos]
            self.frames.pop()
        return None

    def next(self) -> Token | None:
        tok = self.peek()
        if tok is not None:
            self.frames[-1].pos += 1
            self.last = tok
        return tok

    def push(self, tokens: list[Token]) -> None:
        self.imported += len(tokens)
        if tokens:
            self.frames.append(_Frame(tokens))


@dataclass(slots=True)
class _Open:
    """A directive being read: its name, the token it starts at (line, column, the snippet it
    came through), its arguments so far and its nested directives. Mutable while its lines
    are read; ``freeze`` makes the Directive."""

    name: str
    start: Token
    args: list[str] = field(default_factory=list)
    children: list[Directive] = field(default_factory=list)
    has_block: bool = False

    def freeze(self) -> Directive:
        t = self.start
        return Directive(name=self.name, args=tuple(self.args), line=t.line, column=t.column,
                         block=tuple(self.children), has_block=self.has_block,
                         imported_from=t.chain[-1] if t.chain else None, import_line=t.import_line)


class _Parser:
    """One parse of one Corefile text: the token stream, the snippets defined so far, the
    placeholders met and the files spliced in."""

    def __init__(self, text: str, env: Mapping[str, str] | None, source: str,
                 line_offset: int | None,
                 files: Mapping[str, Sequence[tuple[str, str]]] | None = None) -> None:
        self.files = files or {}
        self.spliced_files: list[str] = []
        self.source = source
        self.line_offset = line_offset
        self.env = env
        self.placeholders: dict[str, None] = {}
        self.stream = _Stream(tokenize(text, source=source, line_offset=line_offset))
        self.snippets: dict[str, list[Token]] = {}
        self.expansions = 0
        self.env_bytes = 0   # bytes {$VAR} substitution added so far (MAX_ENV_EXPANSION)
        # The top-level directives of server blocks read so far (name, line): caddy checks
        # each name against the build's directives as it reaches it (parse.go directive()),
        # so an unknown one before a syntax error is what CoreDNS reports.
        self.seen: list[tuple[str, int]] = []

    def error(self, message: str, tok: Token | None) -> CorefileError:
        line = tok.line if tok else 1
        col = tok.column if tok else 1
        if tok is not None and tok.chain:
            message += f" (in snippet {tok.chain[-1]!r} imported at line {tok.import_line})"
            line = tok.line
        fl = None if self.line_offset is None else line + self.line_offset
        exc = CorefileError(message, line, col, source=self.source, file_line=fl)
        exc.directives_before = tuple(self.seen)
        return exc

    def eof_error(self, message: str, opened: Token, caddy: str) -> CorefileError:
        """The input ended inside a block opened at OPENED: caddy reports it at the last
        token it read (caddyfile/parse.go: directive() EOFErr "Unexpected EOF" for a
        directive's block; closeCurlyBrace/snippetTokens SyntaxErr("}") for a server block
        or snippet), so the line named is that token's."""
        last = self.stream.last or opened
        where = f" (opened at line {opened.line})" if last.line != opened.line else ""
        return self.error(f"{message}{where}; CoreDNS says: {caddy}", last)

    def subst(self, text: str) -> str:
        if "{" not in text:
            return text

        def repl(m: re.Match[str]) -> str:
            var: str = m.group(1) or m.group(2)
            if self.env is not None and var in self.env:
                value = str(self.env[var])
                self.env_bytes += len(value)
                if self.env_bytes > MAX_ENV_EXPANSION:
                    raise InputFileError(
                        self.source, f"{{$VAR}} substitution adds more than "
                        f"{MAX_ENV_EXPANSION >> 20} MiB to this Corefile ({m.group(0)} at the "
                        "limit): refused, as an input over the size cap is",
                        hint="give shorter --env values, or fewer placeholders")
                return value
            self.placeholders[m.group(0)] = None
            return m.group(0)

        return _ENV_RE.sub(repl, text)

    def line_args(self) -> list[Token]:
        out: list[Token] = []
        while True:
            t = self.stream.peek()
            if t is None or t.first_on_line:
                return out
            self.stream.next()
            out.append(t)

    def do_import(self, tok: Token) -> Import:
        """``import PATTERN``: a snippet defined before it, else a file glob. coredns/caddy's
        doImport takes exactly one argument ("Import takes only one argument (glob pattern
        or file)": CoreDNS has no snippet arguments; ``{args[N]}`` in a snippet stays as
        written) and caps snippet expansions at 10,000 (caddyfile/parse.go)."""
        args = self.line_args()
        if not args:
            raise self.error("Wrong argument count or unexpected line ending after 'import'", tok)
        pattern = self.subst(args[0].text)
        if not pattern:
            raise self.error("Import requires a non-empty filepath", tok)
        if len(args) > 1:
            raise self.error("Import takes only one argument (glob pattern or file)", args[1])
        body = self.snippets.get(pattern)
        if body is None and pattern in self.files:
            return self.import_files(tok, pattern, ())
        if body is None:
            return Import(pattern=pattern, args=(), line=tok.line, resolved=False)
        if pattern in tok.chain:
            raise self.error(f"import cycle: snippet {pattern!r} imports itself", tok)
        self.expansions += 1
        if self.expansions > MAX_SNIPPET_EXPANSIONS:
            raise self.error(f"maximum snippet import depth ({MAX_SNIPPET_EXPANSIONS}) exceeded", tok)
        if self.stream.imported + len(body) > MAX_IMPORTED_TOKENS:
            raise self.error(f"imports expand to more than {MAX_IMPORTED_TOKENS} tokens", tok)
        chain = tok.chain + (pattern,)
        import_line = tok.import_line if tok.chain else tok.line
        spliced = [Token(text=t.text, line=t.line, column=t.column, quoted=t.quoted,
                         first_on_line=t.first_on_line, chain=chain, import_line=import_line)
                   for t in body]
        self.stream.push(spliced)
        return Import(pattern=pattern, args=(), line=tok.line, resolved=True)

    def import_files(self, tok: Token, pattern: str, rest: tuple[str, ...]) -> Import:
        """Splice the files a glob import matches, in sorted order (caddy's doImport uses
        filepath.Glob, which sorts); their lines stay their own, the chain names the file."""
        matched = sorted(self.files[pattern], key=lambda f: f[0])
        import_line = tok.import_line if tok.chain else tok.line
        spliced: list[Token] = []
        for name, text in matched:
            if name in tok.chain:
                raise self.error(f"import cycle: {name} imports itself", tok)
            for t in tokenize(text, source=self.source, line_offset=None):
                spliced.append(Token(text=t.text, line=t.line, column=t.column, quoted=t.quoted,
                                     first_on_line=t.first_on_line, chain=tok.chain + (name,),
                                     import_line=import_line))
            self.spliced_files.append(name)
        if self.stream.imported + len(spliced) > MAX_IMPORTED_TOKENS:
            raise self.error(f"imports expand to more than {MAX_IMPORTED_TOKENS} tokens", tok)
        # Each file starts on a line of its own, whatever the previous file ended with.
        self.stream.push(spliced)
        return Import(pattern=pattern, args=rest, line=tok.line, resolved=True,
                      files=tuple(n for n, _ in matched))

    def parse(self) -> tuple[list[ServerBlock], list[str]]:
        blocks: list[ServerBlock] = []
        while True:
            tok = self.stream.peek()
            if tok is None:
                break
            if tok.text == "import" and not tok.quoted:
                self.stream.next()
                self.do_import(tok)
                continue
            keys, first = self.addresses()
            nxt = self.stream.peek()
            if len(keys) == 1 and keys[0].startswith("(") and keys[0].endswith(")") and len(keys[0]) > 2:
                name = keys[0][1:-1]
                if nxt is None or nxt.text != "{":
                    raise self.error(f"snippet ({name}) needs a block in braces", nxt or first)
                if name in self.snippets:
                    raise self.error(f"snippet ({name}) is defined twice", first)
                self.stream.next()
                self.snippets[name] = self.snippet_tokens(nxt)
                continue
            blocks.append(self.server_block(keys, first))
        return blocks, list(self.snippets)

    def addresses(self) -> tuple[list[str], Token]:
        keys: list[str] = []
        first = self.stream.peek()
        assert first is not None
        expecting = False
        tok: Token | None = first
        while True:
            tok = self.stream.peek()
            if tok is None:
                if expecting:
                    raise self.error("expected another address after the trailing comma", first)
                break
            if tok is not first and tok.first_on_line and not expecting:
                break
            if tok.text == "{" and not tok.quoted:
                if expecting:
                    raise self.error("expected another address but found '{' - extra comma?", tok)
                break
            if tok.text == "}" and not tok.quoted:
                raise self.error("unexpected '}' where a server block address was expected", tok)
            self.stream.next()
            for part in self.subst(tok.text).split(","):
                if part:
                    keys.append(part)
            expecting = tok.text.endswith(",")
        if not keys:
            raise self.error("server block without an address (zone) before '{'", first)
        return keys, first

    def snippet_tokens(self, open_tok: Token) -> list[Token]:
        depth = 1
        body: list[Token] = []
        while True:
            t = self.stream.next()
            if t is None:
                last = self.stream.last or open_tok
                raise self.eof_error("snippet block is not closed: missing '}'", open_tok,
                                     f"Syntax error: Unexpected token '{last.text}', expecting '}}'")
            if not t.quoted:
                if t.text == "{":
                    depth += 1
                    if depth > MAX_DEPTH:
                        raise self.error(f"blocks nested deeper than {MAX_DEPTH} levels", t)
                elif t.text == "}":
                    depth -= 1
                    if depth == 0:
                        return body
            body.append(t)

    def server_block(self, keys: list[str], first: Token) -> ServerBlock:
        addresses = [a for k in keys for a in normalize_address(k)]
        nxt = self.stream.peek()
        braced = nxt is not None and nxt.text == "{" and not nxt.quoted
        if braced:
            self.stream.next()
        top, imports, end_line = self.block_body(braced, first)
        return ServerBlock(keys=tuple(keys), addresses=tuple(addresses), line=first.line,
                           column=first.column, directives=tuple(top), imports=tuple(imports),
                           end_line=end_line, imported_from=first.chain[-1] if first.chain else None)

    def block_body(self, braced: bool, first: Token) -> tuple[list[Directive], list[Import], int | None]:
        """The directives and imports of a server block, and the line of its closing '}'.

        ``stack``: the open directives that own a '{' (innermost last); ``current``: the one
        whose line is being read. Kept in locals: this loop sees every token."""
        top: list[Directive] = []
        imports: list[Import] = []
        stack: list[_Open] = []
        current: _Open | None = None
        started = not braced  # a token read after the block's '{'
        while True:
            tok = self.stream.next()
            if tok is None:
                if stack:
                    raise self.eof_error(f"block of '{stack[-1].name}' is not closed: missing '}}'",
                                         stack[-1].start, "Unexpected EOF")
                if braced:
                    last = self.stream.last or first
                    raise self.eof_error("server block is not closed: missing '}'", first,
                                         f"Syntax error: Unexpected token '{last.text}', "
                                         "expecting '}'")
                break
            bare = not tok.quoted
            if bare and tok.text == "}" and not stack and not tok.first_on_line and started:
                # caddy's directive() reads a directive's tokens up to the end of its line: a
                # '}' on that line outside its blocks is an error (caddyfile/parse.go)
                raise self.error("Unexpected '}' because no matching opening brace (a server "
                                 "block's '}' must start a line of its own)", tok)
            if bare and tok.text == "}":
                if current is not None:
                    (stack[-1].children if stack else top).append(current.freeze())
                    current = None
                if stack:
                    done = stack.pop()
                    (stack[-1].children if stack else top).append(done.freeze())
                    continue
                if braced:
                    return top, imports, tok.line
                raise self.error("unexpected '}' without a matching '{'", tok)
            started = True
            if bare and tok.text == "{":
                stack.append(self.open_brace(current, len(stack), tok))
                current = None
            elif current is None or tok.first_on_line:
                if current is not None:
                    (stack[-1].children if stack else top).append(current.freeze())
                    current = None
                if not stack and bare and tok.text == "import":
                    imports.append(self.do_import(tok))
                elif not bare and tok.text == "":
                    raise self.error("empty directive name", tok)
                else:
                    current = _Open(self.subst(tok.text), tok)
                    if not stack:
                        self.seen.append((current.name, tok.line))
            else:
                current.args.append(self.subst(tok.text))
        if current is not None:
            top.append(current.freeze())
        return top, imports, None

    def open_brace(self, current: _Open | None, depth: int, tok: Token) -> _Open:
        """A '{' at DEPTH opens the block of the directive on its line (CURRENT)."""
        if current is None:
            raise self.error("'{' must follow a directive on the same line", tok)
        if depth + 1 >= MAX_DEPTH:
            raise self.error(f"blocks nested deeper than {MAX_DEPTH} levels", tok)
        current.has_block = True
        return current


def parse_corefile(text: str | bytes, *, env: Mapping[str, str] | None = None, source: str = "<corefile>",
                   configmap: str | None = None, key: str | None = None,
                   line_offset: int | None = 0,
                   files: Mapping[str, Sequence[tuple[str, str]]] | None = None) -> Corefile:
    """Parse a Corefile. Raises CorefileError (and nothing else) on any malformed input.

    ``env`` replaces ``{$VAR}`` placeholders (unset ones stay verbatim, listed in
    ``env_placeholders``); ``source``/``configmap``/``key``/``line_offset`` say where the text
    came from (see toolkit.corefile.source).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorefileError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", 1, 1,
                                source=source) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    p = _Parser(text, env, source, line_offset, files)
    blocks, snippets = p.parse()
    return Corefile(blocks=tuple(blocks), snippets=tuple(snippets),
                    env_placeholders=tuple(p.placeholders), source=source, configmap=configmap,
                    key=key, line_offset=line_offset, text=text,
                    imported_files=tuple(p.spliced_files))


FRAGMENT_PREFIX = ". { "


def parse_fragment(text: str | bytes, *, env: Mapping[str, str] | None = None, source: str = "<corefile>",
                   configmap: str | None = None, key: str | None = None,
                   line_offset: int | None = 0) -> Corefile:
    """Parse a ``*.override`` file: directives that ``import`` splices into a server block.

    It is checked as the body of a synthetic ``.`` block opened on its first line, so every
    line number stays the file's own. Raises CorefileError like parse_corefile."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    cf = parse_corefile(FRAGMENT_PREFIX + text + "\n}\n", env=env, source=source,
                        configmap=configmap, key=key, line_offset=line_offset)
    return Corefile(blocks=cf.blocks, snippets=cf.snippets, env_placeholders=cf.env_placeholders,
                    source=source, configmap=configmap, key=key, line_offset=line_offset,
                    text=text, fragment=True)
