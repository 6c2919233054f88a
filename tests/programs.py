"""Which external programs does this repository start, and which does ``scripts/setup`` install?

``scripts/programs.tsv`` is the one list of programs that the tests, the lab, the image build,
the benchmarks and the demo run; ``scripts/setup`` installs its packages. This module reads it
and scans the code for the programs it starts, so that a test (tests/unit/test_setup_programs.py)
fails when a program is used without being installed on a fresh machine (issue: a fresh Debian
passes the tests).

What counts as "starting a program":

* Python: a call whose argument list starts with a string literal ``["prog", ...]`` or
  ``("prog", ...)`` passed to a runner (``subprocess.run``/``Popen``/``check_output``/...,
  and the project's own helpers ``_run``, ``sh``, ``exec``, ``run``), ``sh("prog", ...)``
  style varargs, ``lab.exec(NS, "prog", ...)``, and ``shutil.which("prog")``. Wrappers are
  looked through: ``ip netns exec NS prog``, ``timeout N prog``, ``env VAR=x prog``,
  ``nsenter ... -- prog``, ``bash -c "shell line"``.
* Shell (``scripts/*`` with a shell shebang, ``*.sh``): the first word of every simple
  command, after assignments and the same wrappers; heredoc bodies, functions defined in the
  file, builtins, variables and relative paths (the project's own scripts) are not programs.
"""
from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS_TSV = ROOT / "scripts" / "programs.tsv"

# Trees scanned (issue 19: tests/, scripts/, toolkit/; image/ holds build helpers too).
SCANNED = ("tests", "scripts", "toolkit", "image")

RUNNERS = {"ex", "run", "Popen", "check_output", "check_call", "call", "_run", "sh", "exec",
           "execvp", "execv", "execvpe", "spawnvp", "create_subprocess_exec"}
# Runners whose first positional argument is not the program (lab.exec(NS, prog, ...)).
NS_FIRST = {"exec", "ex"}

SHELL_BUILTINS = set("""
. : [ [[ ]] ]] alias bg bind break builtin caller case cd command compgen complete continue
declare dirs disown do done echo elif else enable esac eval exec exit export false fc fg fi
for function getopts hash help history if in jobs kill let local logout mapfile popd printf
pushd pwd read readarray readonly return select set shift shopt source suspend test then time
times trap true type typeset ulimit umask unalias unset until wait while { } ! coproc
""".split())


@dataclass(frozen=True, kw_only=True)
class Program:
    """One row of scripts/programs.tsv: a program, the Debian package (or source) that brings
    it, and why the project needs it."""
    name: str
    package: str
    why: str


def read_programs(path: Path = PROGRAMS_TSV) -> dict[str, Program]:
    """The rows of programs.tsv by program name (comments and blank lines skipped)."""
    out: dict[str, Program] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise ValueError("programs.tsv: want 3 tab-separated columns: %r" % line)
        name, package, why = (p.strip() for p in parts)
        out[name] = Program(name=name, package=package, why=why)
    return out


# ---------------------------------------------------------------------------- wrappers
def _unwrap(argv: list[str | None]) -> str | None:
    """The program an argv really starts, looking through wrappers; None when not literal."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word is None:
            return None
        base = word.rsplit("/", 1)[-1] if word.startswith("/") else word
        if base == "ip" and argv[i + 1:i + 3] == ["netns", "exec"]:
            i += 4
            continue
        if base in ("timeout",):
            i += 1
            while i < len(argv) and argv[i] is not None and (argv[i].startswith("-")  # type: ignore[union-attr]
                                                             or re.fullmatch(r"[\d.]+[smhd]?", argv[i] or "")):
                i += 1
            continue
        if base in ("env", "nohup", "sudo", "setsid", "chrt", "nice", "ionice", "stdbuf", "xargs"):
            i += 1
            while i < len(argv) and argv[i] is not None and ("=" in argv[i] or argv[i].startswith("-")):  # type: ignore[operator,union-attr]
                i += 1
            return _unwrap(argv[i:]) if base != "env" or i < len(argv) else base
        if base == "nsenter":
            rest = argv[i + 1:]
            if "--" in rest:
                return _unwrap(rest[rest.index("--") + 1:])
            return base
        return base
    return None


# ---------------------------------------------------------------------------- Python
def _literal(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _argv_literal(node: ast.AST) -> list[str | None] | None:
    if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
        return [_literal(e) for e in node.elts]
    return None


# Attribute calls count only on these receivers (k.run([...]) on a kubectl wrapper passes
# kubectl's arguments, not a program); any receiver counts for .exec(NS, prog, ...) (the lab).
_RUNNER_MODULES = {"subprocess", "os", "asyncio", "sp"}
_ARGV_NAMES = re.compile(r"(?:.*_)?(?:cmd|command)$")
# Bare names that start a program whatever the file: the project's helpers (tests/lab's
# _run, benchmarks' sh, the client builds' _build) and subprocess's own names when imported.
_BARE_RUNNERS = {"_run", "sh", "_build", "Popen", "check_output", "check_call"}


def _runner(call: ast.Call, imported: set[str]) -> str | None:
    f = call.func
    if isinstance(f, ast.Name):
        return f.id if f.id in _BARE_RUNNERS or f.id in imported else None
    if isinstance(f, ast.Attribute) and f.attr in RUNNERS:
        recv = f.value
        if f.attr in NS_FIRST or f.attr in ("_run", "sh"):
            return f.attr
        if isinstance(recv, ast.Name) and recv.id in _RUNNER_MODULES:
            return f.attr
    return None


def scan_python(src: str) -> set[str]:
    """Programs a Python source starts (see the module docstring)."""
    found: set[str] = set()
    tree = ast.parse(src)
    imported = {a.asname or a.name for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom) and n.module in ("subprocess", "os")
                for a in n.names if a.name in RUNNERS}
    for node in ast.walk(tree):
        argv: list[str | None] | None = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            t = node.targets[0]
            if isinstance(t, ast.Name) and _ARGV_NAMES.match(t.id):
                argv = _argv_literal(node.value)
            if isinstance(node.value, ast.IfExp):      # cmd = [...] if x else [...]
                for branch in (node.value.body, node.value.orelse):
                    b = _argv_literal(branch)
                    if b and isinstance(t, ast.Name) and _ARGV_NAMES.match(t.id):
                        found |= _argv_programs(b)
        elif isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr == "which" or isinstance(f, ast.Name)
                    and f.id == "which") and node.args and _literal(node.args[0]):
                found.add(_literal(node.args[0]))  # type: ignore[arg-type]
                continue
            name = _runner(node, imported)
            if name is None or not node.args:
                continue
            args = node.args
            argv = _argv_literal(args[0])
            if argv is None and name in NS_FIRST and len(args) >= 2:
                # lab.exec(NS, "prog", ...) or lab.exec(NS, ["prog", ...])
                argv = _argv_literal(args[1]) or [_literal(a) for a in args[1:]]
            elif argv is None and name == "sh":
                argv = [_literal(a) for a in args]
        if argv:
            found |= _argv_programs(argv)
    return {p for p in found if _plausible(p)}


def _argv_programs(argv: list[str | None]) -> set[str]:
    prog = _unwrap(argv)
    if prog is None:
        return set()
    if prog in ("bash", "sh") and len(argv) >= 3 and argv[-2] == "-c" and argv[-1]:
        return scan_shell(argv[-1]) | {prog}
    return {prog}


def _plausible(word: str) -> bool:
    """A word that names a program on PATH (not a path into the checkout, not a variable)."""
    if not word or word.startswith(("$", "-", ".", "~")) or "/" in word.lstrip("/").split("/", 1)[0] and not word.startswith("/"):
        return False
    if word.startswith("/"):
        return False      # an absolute path is checked by the code that uses it
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", word))


# ---------------------------------------------------------------------------- shell
_KEYWORDS_BEFORE_COMMAND = {"then", "do", "else", "elif", "if", "while", "until", "!", "time",
                            "{", "exec", "command", "builtin"}
_FUNC = re.compile(r"^\s*(?:function\s+)?([A-Za-z_][A-Za-z0-9_-]*)\s*\(\s*\)", re.M)
_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")


class _ShellWords:
    """A small bash tokenizer: yields (word, literal, at_command_position) for every word.

    Quotes and ``$(...)`` nest as bash nests them; heredoc bodies, comments, ``[[ ]]``/``[ ]``
    tests, ``(( ))`` arithmetic, case patterns and ``for`` word lists are skipped. A word that
    holds a quote, ``$`` or a glob is not literal (it cannot name a program by itself)."""

    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.commands: list[list[str | None]] = []
        self.cur: list[str | None] | None = None
        self.heredocs: list[tuple[str, bool]] = []

    def run(self) -> list[list[str | None]]:
        self._list(end=None)
        return self.commands

    # One command list, until `end` (")" for $( and subshells, "`" for backticks) or EOF.
    def _list(self, end: str | None) -> None:
        s = self.s
        at_cmd = True
        skip_until: str | None = None     # "]]", "]", "))", "in-case", "for"
        case_depth = 0
        in_case_pattern = False
        while self.i < len(s):
            c = s[self.i]
            if end is not None and c == end and skip_until is None and not in_case_pattern:
                self.i += 1
                return
            if c == "\n":
                self.i += 1
                self._heredoc_bodies()
                if skip_until == "for":
                    skip_until = None
                at_cmd = True if skip_until is None and not in_case_pattern else at_cmd
                self.cur = None
                continue
            if c in " \t":
                self.i += 1
                continue
            if c == "#" and (self.i == 0 or s[self.i - 1] in " \t\n;|&("):
                while self.i < len(s) and s[self.i] != "\n":
                    self.i += 1
                continue
            if s.startswith("$((", self.i) or (at_cmd and s.startswith("((", self.i)):
                self._skip_arith()
                at_cmd = False
                continue
            if c in ";|&":
                two = s[self.i:self.i + 2]
                self.i += 2 if two in ("&&", "||", ";;", ";&", "|&") else 1
                if two == ";;" and case_depth:
                    in_case_pattern = True
                if skip_until == "for":
                    skip_until = None
                if skip_until is None:
                    at_cmd = True
                    self.cur = None
                continue
            if c == "(":
                self.i += 1
                if in_case_pattern:
                    continue
                self._list(end=")")
                at_cmd = False
                continue
            if c == ")":
                self.i += 1
                if in_case_pattern:
                    in_case_pattern = False
                    at_cmd = True
                continue
            if c in "<>" and not s.startswith("<(", self.i) and not s.startswith(">(", self.i):
                self._redirect()
                continue
            start = self.i
            word, literal = self._word()
            if self.i == start:
                self.i += 1
                continue
            if at_cmd and word.endswith("()") and not _ASSIGN.match(word):
                continue                          # name() { ...: a function definition
            if in_case_pattern:
                if word == "esac":
                    case_depth -= 1
                    in_case_pattern = False
                    at_cmd = False
                continue
            if skip_until in ("]]", "]"):
                if word == skip_until:
                    skip_until = None
                    at_cmd = False
                continue
            if skip_until == "for":
                if word == "do":
                    skip_until = None
                    at_cmd = True
                continue
            if not at_cmd:
                if self.cur is not None:
                    self.cur.append(word if literal else None)
                if word == "in" and case_depth and not in_case_pattern and self._after_case:
                    in_case_pattern = True
                    self._after_case = False
                continue
            # at a command position
            if literal and _ASSIGN.match(word):
                continue                          # VAR=value prefix: the command follows
            if word in ("[[", "["):
                skip_until = "]]" if word == "[[" else "]"
                continue
            if word == "case":
                case_depth += 1
                self._after_case = True
                at_cmd = False
                continue
            if word == "for" or word == "select":
                skip_until = "for"
                continue
            if word in ("esac", "fi", "done", "}", "then", "do", "else"):
                at_cmd = word in ("then", "do", "else")
                if word == "esac":
                    case_depth -= 1
                continue
            if word in _KEYWORDS_BEFORE_COMMAND or word == "function":
                continue
            self.cur = [word if literal else None]
            self.commands.append(self.cur)
            at_cmd = False
        return

    _after_case = False

    def _word(self) -> tuple[str, bool]:
        s = self.s
        out: list[str] = []
        literal = True
        while self.i < len(s):
            c = s[self.i]
            if c in " \t\n;|&()<>":
                if c == "(" and out and out[-1] == "=":
                    self._skip_arith()    # name=(array words): no commands inside
                    out.append("()")
                    continue
                if c == "(" and out and s.startswith("()", self.i):
                    out.append("()")      # name() { ... }: a function definition
                    self.i += 2
                    continue
                break
            if c == "\\":
                self.i += 2
                literal = False
                continue
            if c == "'":
                j = s.find("'", self.i + 1)
                self.i = len(s) if j < 0 else j + 1
                literal = False
                continue
            if c == '"':
                self._dquote()
                literal = False
                continue
            if c == "`":
                self.i += 1
                self._list(end="`")
                literal = False
                continue
            if c == "$":
                literal = False
                if s.startswith("$((", self.i):
                    self._skip_arith()
                elif s.startswith("$(", self.i):
                    self.i += 2
                    self._list(end=")")
                elif s.startswith("${", self.i):
                    self._skip_braces()
                else:
                    self.i += 1
                continue
            if c in "*?":
                literal = False
            out.append(c)
            self.i += 1
        word = "".join(out)
        return word, literal and bool(word) and not word.endswith("()")

    def _dquote(self) -> None:
        s = self.s
        self.i += 1
        while self.i < len(s):
            c = s[self.i]
            if c == "\\":
                self.i += 2
            elif c == '"':
                self.i += 1
                return
            elif s.startswith("$((", self.i):
                self._skip_arith()
            elif s.startswith("$(", self.i):
                self.i += 2
                self._list(end=")")
            elif c == "`":
                self.i += 1
                self._list(end="`")
            else:
                self.i += 1

    def _skip_braces(self) -> None:
        depth = 0
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return

    def _skip_arith(self) -> None:
        depth = 0
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    return

    def _redirect(self) -> None:
        s = self.s
        if s.startswith("<<<", self.i):
            self.i += 3
        elif s.startswith("<<", self.i):
            self.i += 2
            strip = s.startswith("-", self.i)
            if strip:
                self.i += 1
            while self.i < len(s) and s[self.i] in " \t":
                self.i += 1
            m = re.match(r"(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1", s[self.i:])
            if m:
                self.heredocs.append((m.group(2), strip))
                self.i += m.end()
            return
        else:
            self.i += 1
            while self.i < len(s) and s[self.i] in "<>&|":
                self.i += 1
        while self.i < len(s) and s[self.i] in " \t":
            self.i += 1
        self._word()                 # the redirection's target

    def _heredoc_bodies(self) -> None:
        s = self.s
        while self.heredocs:
            tag, strip = self.heredocs.pop(0)
            while self.i < len(s):
                j = s.find("\n", self.i)
                line = s[self.i:] if j < 0 else s[self.i:j]
                self.i = len(s) if j < 0 else j + 1
                if (line.strip() if strip else line) == tag:
                    break


def scan_shell(text: str, sourced: str = "") -> set[str]:
    """Programs a shell script (or a ``bash -c`` line) starts (see _ShellWords); SOURCED: the
    text of the files it sources (their functions are the script's own too)."""
    functions = set(_FUNC.findall(text)) | set(_FUNC.findall(sourced))
    found: set[str] = set()
    for argv in _ShellWords(text).run():
        word = _unwrap(argv)
        if word is None:
            continue
        if word in ("bash", "sh"):
            continue                 # the script's own shell
        if word in SHELL_BUILTINS or word in functions or not _plausible(word):
            continue
        found.add(word)
    return found


# ---------------------------------------------------------------------------- the tree
def is_shell_script(path: Path) -> bool:
    if path.suffix == ".sh":
        return True
    if path.suffix:
        return False
    try:
        first = path.read_bytes()[:64].split(b"\n", 1)[0]
    except OSError:
        return False
    return first.startswith(b"#!") and (b"sh" in first.rsplit(b"/", 1)[-1])


_SOURCE = re.compile(r'^\s*(?:\.|source)\s+"?[^"\n]*?([A-Za-z0-9_.-]+\.sh)"?', re.M)


def _sourced(path: Path, text: str) -> str:
    """The text of the files next to PATH that it sources (scripts/runbooks/common.sh)."""
    out = []
    for name in _SOURCE.findall(text):
        f = path.parent / name
        if f.is_file() and f != path:
            out.append(f.read_text())
    return "\n".join(out)


def scan_tree(root: Path = ROOT) -> dict[str, set[str]]:
    """Program -> the files (relative paths) that start it, over SCANNED."""
    uses: dict[str, set[str]] = {}
    for top in SCANNED:
        for path in sorted((root / top).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or "data" in path.relative_to(root).parts[:3]:
                continue
            rel = str(path.relative_to(root))
            if path.suffix == ".py":
                progs = scan_python(path.read_text())
            elif is_shell_script(path):
                text = path.read_text()
                progs = scan_shell(text, _sourced(path, text))
            else:
                continue
            for p in progs:
                uses.setdefault(p, set()).add(rel)
    return uses
