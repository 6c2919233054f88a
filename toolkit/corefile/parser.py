"""A pure Corefile parser: tokenizer, server blocks, directives, snippets and imports.

Follows the Caddyfile grammar CoreDNS uses (coredns/caddy):
- tokens are separated by whitespace; a newline ends a directive line; ``#`` outside quotes
  starts a comment up to the end of the line; a token that starts with ``"`` is quoted up to the
  next unescaped ``"`` (``\\"`` is the only escape) and may span lines;
- a server block is one or more addresses (separated by whitespace or commas, a trailing comma
  continues on the next line) followed by ``{`` ... ``}``; a Corefile with a single block may
  omit the braces;
- ``(name) { ... }`` defines a snippet, ``import name [args]`` splices it in (``{args[N]}`` are
  replaced); an import of something that is not a snippet defined before it is a file glob,
  which a pure parser cannot read: it is recorded as unresolved;
- ``{$VAR}`` / ``{%VAR%}`` are environment placeholders: replaced from ``env`` when given,
  otherwise kept verbatim and recorded.

Nothing here recurses: the parser walks the token stream with explicit stacks and bounds the
nesting depth (MAX_DEPTH) and the import expansion (MAX_IMPORTED_TOKENS) with a CorefileError, the
only exception this module raises on any input.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from toolkit.errors import InputFileError

MAX_DEPTH = 64
MAX_IMPORTED_TOKENS = 200_000

DEFAULT_PORTS = {"dns": 53, "tls": 853, "quic": 853, "grpc": 443, "https": 443, "https3": 443}
_MAX_REVERSE_ZONES = 256


class CorefileError(InputFileError):
    """The Corefile cannot be parsed. Carries the line and column within the Corefile and,
    when the Corefile came from a file that maps line for line (a YAML block scalar), the
    line in that file."""

    def __init__(self, message: str, line: int, column: int, *, source: str = "<corefile>",
                 file_line: int | None = None, hint: str | None = None) -> None:
        where = f"Corefile line {line}, column {column}"
        if file_line is not None and file_line != line:
            where += f" (file line {file_line})"
        super().__init__(source, f"{where}: {message}",
                         hint=hint or "fix the Corefile syntax; CoreDNS would refuse to load it too")
        self.detail = message
        self.line = line
        self.column = column
        self.file_line = file_line
        self.source = source


@dataclass(frozen=True)
class Token:
    text: str
    line: int
    column: int
    quoted: bool = False
    first_on_line: bool = False
    # Snippet names this token was imported through (outermost first).
    chain: tuple[str, ...] = ()
    import_line: int | None = None


@dataclass(frozen=True)
class Directive:
    """One directive line: ``name args... [{ nested directives }]``. ``line`` is the line in
    the Corefile text; ``imported_from`` names the snippet when it came in by ``import``
    (then ``import_line`` is the line of that import)."""

    name: str
    args: tuple[str, ...]
    line: int
    column: int
    block: tuple[Directive, ...] = ()
    has_block: bool = False
    imported_from: str | None = None
    import_line: int | None = None

    def sub(self, name: str) -> list[Directive]:
        return [d for d in self.block if d.name == name]

    def has(self, name: str) -> bool:
        return any(d.name == name for d in self.block)


@dataclass(frozen=True)
class ZoneAddress:
    """One server block key, normalized the way CoreDNS does: transport, zone FQDN, port."""

    key: str
    transport: str
    zone: str
    port: int | None
    network: str | None = None  # the CIDR when the key was reverse notation
    problem: str | None = None

    @property
    def label(self) -> str:
        scheme = "" if self.transport == "dns" else f"{self.transport}://"
        port = "" if self.port is None else f":{self.port}"
        return f"{scheme}{self.zone}{port}"


@dataclass(frozen=True)
class Import:
    pattern: str
    args: tuple[str, ...]
    line: int
    resolved: bool


@dataclass(frozen=True)
class ServerBlock:
    keys: tuple[str, ...]
    addresses: tuple[ZoneAddress, ...]
    line: int
    column: int
    directives: tuple[Directive, ...]
    imports: tuple[Import, ...] = ()
    end_line: int | None = None

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.zone for a in self.addresses))

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(a.port for a in self.addresses if a.port is not None))

    @property
    def plugins(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.directives)

    @property
    def label(self) -> str:
        return " ".join(self.keys)

    def get(self, name: str) -> list[Directive]:
        return [d for d in self.directives if d.name == name]

    def has(self, name: str) -> bool:
        return any(d.name == name for d in self.directives)

    @property
    def bind(self) -> tuple[str, ...]:
        out: list[str] = []
        for d in self.get("bind"):
            skip = False
            for a in d.args:
                if a == "except":
                    skip = True
                    continue
                if not skip:
                    out.append(a)
        return tuple(out)


@dataclass(frozen=True)
class Corefile:
    """A parsed Corefile and where it came from.

    ``line_offset`` maps Corefile lines to lines of the file it was read from (file line =
    Corefile line + line_offset); None when there is no line-for-line mapping (JSON strings,
    folded YAML scalars).
    """

    blocks: tuple[ServerBlock, ...]
    snippets: tuple[str, ...] = ()
    env_placeholders: tuple[str, ...] = ()
    source: str = "<corefile>"
    configmap: str | None = None
    key: str | None = None
    line_offset: int | None = 0
    text: str = field(default="", repr=False, compare=False)

    @property
    def name(self) -> str:
        if self.configmap:
            return f"{self.source}[{self.configmap}:{self.key}]"
        return self.source

    def file_line(self, line: int | None) -> int | None:
        if line is None or self.line_offset is None:
            return None
        return line + self.line_offset

    @property
    def imports(self) -> tuple[Import, ...]:
        return tuple(i for b in self.blocks for i in b.imports)


# --- tokenizer -------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r'(?P<c>\#[^\n]*)'
    r'|(?P<q>"[^"\\]*(?:\\.[^"\\]*)*")'
    r'|(?P<u>")'
    r'|(?P<b>[^\s#"][^\s#]*)',
    re.DOTALL,
)
_UNESCAPE_RE = re.compile(r'\\(.)', re.DOTALL)
_ENV_RE = re.compile(r'\{\$([^{}$%\s]+)\}|\{%([^{}$%\s]+)%\}')
_ARGS_RE = re.compile(r'\{args\[(\d+)\]\}')


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
        tokens.append(Token(value, line, column, quoted, line != last_line))
        # a quoted token may span lines: the next token is on a new line only after its end
        last_line = line + (m.group().count("\n") if quoted else 0)
    return tokens


# --- addresses -------------------------------------------------------------------------------

_SCHEMES = ("dns", "tls", "quic", "grpc", "https", "https3")


def _reverse_zones(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    step = 8 if net.version == 4 else 4
    boundary = -(-net.prefixlen // step) * step  # round up to the next octet/nibble boundary
    if boundary == net.prefixlen or boundary - net.prefixlen > 8:
        subnets = [net]
    else:
        subnets = list(net.subnets(new_prefix=boundary))
    if len(subnets) > _MAX_REVERSE_ZONES:
        subnets = [net]
    out = []
    for sub in subnets:
        labels = sub.network_address.reverse_pointer.split(".")
        if sub.version == 4:
            keep = sub.prefixlen // 8
            zone = ".".join(labels[4 - keep:]) if keep else "in-addr.arpa"
        else:
            keep = sub.prefixlen // 4
            zone = ".".join(labels[32 - keep:]) if keep else "ip6.arpa"
        out.append(zone.lower() + ".")
    return out


def normalize_address(key: str) -> list[ZoneAddress]:
    """A server block key as CoreDNS reads it: [scheme://]zone-or-CIDR[:port].

    Never raises: what CoreDNS would reject is kept with ``problem`` set (lint reports it).
    """
    raw = key
    transport = "dns"
    problem = None
    if "://" in key:
        scheme, _, key = key.partition("://")
        scheme = scheme.lower()
        if scheme in _SCHEMES:
            transport = scheme
        else:
            problem = f"unknown scheme {scheme}://"
            transport = scheme
    host, port_s = key, ""
    if key.startswith("["):
        end = key.find("]")
        if end != -1:
            host = key[1:end]
            rest = key[end + 1:]
            port_s = rest[1:] if rest.startswith(":") else ""
    elif key.count(":") == 1:
        host, _, port_s = key.partition(":")
    port: int | None = DEFAULT_PORTS.get(transport, 53)
    if port_s:
        if port_s.isascii() and port_s.isdigit() and int(port_s) <= 65535:
            port = int(port_s)
        elif port_s.startswith("{$") or port_s.startswith("{%"):
            port = None
            problem = problem or f"port is an environment placeholder ({port_s})"
        else:
            port = None
            problem = problem or f"invalid port {port_s!r}"
    if "/" in host:
        try:
            net = ipaddress.ip_network(host, strict=False)
        except ValueError:
            return [ZoneAddress(raw, transport, host.lower().rstrip(".") + ".", port, None,
                                problem or f"{host!r} is neither a zone nor a CIDR")]
        return [ZoneAddress(raw, transport, z, port, str(net), problem) for z in _reverse_zones(net)]
    zone = host.lower()
    if zone in ("", "."):
        zone = "."
    elif not zone.endswith("."):
        zone += "."
    if zone.startswith(".") and zone != ".":
        problem = problem or f"zone {host!r} starts with a dot"
    return [ZoneAddress(raw, transport, zone, port, None, problem)]


# --- parser ----------------------------------------------------------------------------------


class _Stream:
    """Tokens with import splicing: a stack of frames, never recursion."""

    def __init__(self, tokens: list[Token]) -> None:
        self.frames: list[list] = [[tokens, 0]]
        self.imported = 0

    def peek(self) -> Token | None:
        while self.frames:
            toks, i = self.frames[-1]
            if i < len(toks):
                return toks[i]
            self.frames.pop()
        return None

    def next(self) -> Token | None:
        tok = self.peek()
        if tok is not None:
            self.frames[-1][1] += 1
        return tok

    def push(self, tokens: list[Token]) -> None:
        self.imported += len(tokens)
        if tokens:
            self.frames.append([tokens, 0])


@dataclass
class _Open:
    name: str
    args: list[str]
    line: int
    column: int
    imported_from: str | None
    import_line: int | None
    children: list[Directive] = field(default_factory=list)
    has_block: bool = False

    def freeze(self) -> Directive:
        return Directive(self.name, tuple(self.args), self.line, self.column, tuple(self.children),
                         self.has_block, self.imported_from, self.import_line)


class _Parser:
    def __init__(self, text: str, env: Mapping[str, str] | None, source: str,
                 line_offset: int | None) -> None:
        self.source = source
        self.line_offset = line_offset
        self.env = env
        self.placeholders: dict[str, None] = {}
        self.stream = _Stream(tokenize(text, source=source, line_offset=line_offset))
        self.snippets: dict[str, list[Token]] = {}

    def error(self, message: str, tok: Token | None) -> CorefileError:
        line = tok.line if tok else 1
        col = tok.column if tok else 1
        if tok is not None and tok.chain:
            message += f" (in snippet {tok.chain[-1]!r} imported at line {tok.import_line})"
            line = tok.line
        fl = None if self.line_offset is None else line + self.line_offset
        return CorefileError(message, line, col, source=self.source, file_line=fl)

    def subst(self, text: str) -> str:
        if "{" not in text:
            return text

        def repl(m: re.Match) -> str:
            var = m.group(1) or m.group(2)
            if self.env is not None and var in self.env:
                return str(self.env[var])
            self.placeholders[m.group(0)] = None
            return m.group(0)

        return _ENV_RE.sub(repl, text)

    def line_args(self) -> list[Token]:
        out = []
        while True:
            t = self.stream.peek()
            if t is None or t.first_on_line:
                return out
            out.append(self.stream.next())

    def do_import(self, tok: Token) -> Import:
        args = self.line_args()
        if not args:
            raise self.error("import needs a snippet name or a file pattern", tok)
        pattern = self.subst(args[0].text)
        rest = tuple(self.subst(a.text) for a in args[1:])
        body = self.snippets.get(pattern)
        if body is None:
            return Import(pattern, rest, tok.line, False)
        if pattern in tok.chain:
            raise self.error(f"import cycle: snippet {pattern!r} imports itself", tok)
        if self.stream.imported + len(body) > MAX_IMPORTED_TOKENS:
            raise self.error(f"imports expand to more than {MAX_IMPORTED_TOKENS} tokens", tok)
        chain = tok.chain + (pattern,)
        import_line = tok.import_line if tok.chain else tok.line
        spliced = []
        for t in body:
            text = t.text
            if rest and "{args[" in text:
                text = _ARGS_RE.sub(lambda m: rest[int(m.group(1))] if int(m.group(1)) < len(rest)
                                    else "", text)
            spliced.append(Token(text, t.line, t.column, t.quoted, t.first_on_line, chain, import_line))
        self.stream.push(spliced)
        return Import(pattern, rest, tok.line, True)

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
        tok = first
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
                raise self.error("snippet block is not closed: missing '}'", open_tok)
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
        addresses: list[ZoneAddress] = []
        for k in keys:
            addresses.extend(normalize_address(k))
        nxt = self.stream.peek()
        braced = nxt is not None and nxt.text == "{" and not nxt.quoted
        if braced:
            self.stream.next()
        imports: list[Import] = []
        top: list[Directive] = []
        stack: list[_Open] = []       # open directives that own a '{'
        current: _Open | None = None  # the directive whose line we are on
        end_line = None
        while True:
            tok = self.stream.next()
            if tok is None:
                if stack:
                    raise self.error(f"block of '{stack[-1].name}' is not closed: missing '}}'",
                                     Token("", stack[-1].line, stack[-1].column))
                if braced:
                    raise self.error("server block is not closed: missing '}'", first)
                break
            bare = not tok.quoted
            if bare and tok.text == "}":
                if current is not None:
                    (stack[-1].children if stack else top).append(current.freeze())
                    current = None
                if stack:
                    done = stack.pop()
                    (stack[-1].children if stack else top).append(done.freeze())
                    continue
                if braced:
                    end_line = tok.line
                    break
                raise self.error("unexpected '}' without a matching '{'", tok)
            if bare and tok.text == "{":
                if current is None:
                    raise self.error("'{' must follow a directive on the same line", tok)
                if len(stack) + 1 >= MAX_DEPTH:
                    raise self.error(f"blocks nested deeper than {MAX_DEPTH} levels", tok)
                current.has_block = True
                stack.append(current)
                current = None
                continue
            if current is None or tok.first_on_line:
                if current is not None:
                    (stack[-1].children if stack else top).append(current.freeze())
                    current = None
                if not stack and bare and tok.text == "import":
                    imports.append(self.do_import(tok))
                    continue
                if not bare and tok.text == "":
                    raise self.error("empty directive name", tok)
                current = _Open(self.subst(tok.text), [], tok.line, tok.column,
                                tok.chain[-1] if tok.chain else None, tok.import_line)
                continue
            current.args.append(self.subst(tok.text))
        if current is not None:
            top.append(current.freeze())
        return ServerBlock(tuple(keys), tuple(addresses), first.line, first.column, tuple(top),
                           tuple(imports), end_line)


def parse_corefile(text: str, *, env: Mapping[str, str] | None = None, source: str = "<corefile>",
                   configmap: str | None = None, key: str | None = None,
                   line_offset: int | None = 0) -> Corefile:
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
    p = _Parser(text, env, source, line_offset)
    blocks, snippets = p.parse()
    return Corefile(tuple(blocks), tuple(snippets), tuple(p.placeholders), source, configmap, key,
                    line_offset, text)
