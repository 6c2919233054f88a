"""What a parsed Corefile is: server blocks, directives, imports, and the one error the
parser raises (toolkit.corefile.parser builds these; everything else reads them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from toolkit.corefile.addresses import ZoneAddress
from toolkit.errors import InputFileError


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
        # The top-level directives (name, line) the parser read before this error (caddy
        # refuses an unknown one first: toolkit.corefile.loadcheck.syntax_refusal).
        self.directives_before: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, kw_only=True)
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
        """The nested directives called NAME (e.g. every ``fallthrough`` line)."""
        return [d for d in self.block if d.name == name]

    def has(self, name: str) -> bool:
        """Whether a nested directive called NAME is given."""
        return any(d.name == name for d in self.block)


@dataclass(frozen=True)
class Import:
    """One ``import`` line: a snippet or a file glob, and whether it could be spliced in."""

    pattern: str
    args: tuple[str, ...]
    line: int
    resolved: bool
    files: tuple[str, ...] = ()  # the files (ConfigMap keys) spliced in for a file glob


@dataclass(frozen=True, kw_only=True)
class ServerBlock:
    """One server block: its keys (as written and normalized) and its directives."""

    keys: tuple[str, ...]
    addresses: tuple[ZoneAddress, ...]
    line: int
    column: int
    directives: tuple[Directive, ...]
    imports: tuple[Import, ...] = ()
    end_line: int | None = None
    # The file the block came in from by ``import`` (e.g. coredns-custom:test.server); its
    # lines are then lines of that file.
    imported_from: str | None = None

    @property
    def zones(self) -> tuple[str, ...]:
        """The zones of its keys, each once, in key order."""
        return tuple(dict.fromkeys(a.zone for a in self.addresses))

    @property
    def ports(self) -> tuple[int, ...]:
        """The ports of its keys, each once."""
        return tuple(dict.fromkeys(a.port for a in self.addresses if a.port is not None))

    @property
    def plugins(self) -> tuple[str, ...]:
        """Its directive names in file order."""
        return tuple(d.name for d in self.directives)

    @property
    def label(self) -> str:
        """Its keys as written."""
        return " ".join(self.keys)

    def get(self, name: str) -> list[Directive]:
        """Its directives called NAME."""
        return [d for d in self.directives if d.name == name]

    def has(self, name: str) -> bool:
        """Whether a directive called NAME is given."""
        return any(d.name == name for d in self.directives)

    @property
    def bind(self) -> tuple[str, ...]:
        """The addresses its ``bind`` lines listen on (``except`` ones left out)."""
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


@dataclass(frozen=True, kw_only=True)
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
    # A ``*.override`` key: directives spliced into another Corefile's server block, not a
    # Corefile of its own (its one block is a synthetic wrapper, see parse_fragment).
    fragment: bool = False
    # Files spliced in for file-glob imports (resolved with ``files``), in import order.
    imported_files: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """How findings name it: the file, with [configmap:key] for a ConfigMap."""
        if self.configmap:
            if self.key is None:  # an empty ConfigMap
                return f"{self.source}[{self.configmap}]"
            return f"{self.source}[{self.configmap}:{self.key}]"
        return self.source

    def file_line(self, line: int | None) -> int | None:
        """The line of the file it was read from for Corefile line LINE (None: no mapping)."""
        if line is None or self.line_offset is None:
            return None
        return line + self.line_offset

    @property
    def imports(self) -> tuple[Import, ...]:
        """Every import line of its blocks."""
        return tuple(i for b in self.blocks for i in b.imports)

