"""Where Corefiles come from: a raw Corefile, or ConfigMaps as ``kubectl get cm -o yaml|json``
prints them (one, several YAML documents, or a ``kind: List``), from a path or ``-`` (stdin).

Each Corefile remembers its file, ConfigMap (namespace/name) and data key. For a YAML literal
block scalar (``Corefile: |``) the Corefile's lines map line for line onto the file, so
findings can name both lines; JSON strings and folded scalars have no such mapping
(``line_offset`` None).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from yaml import CSafeLoader, SafeLoader
    from yaml.nodes import Node

from toolkit.corefile.document import Corefile, CorefileError
from toolkit.corefile.parser import parse_corefile, parse_fragment
from toolkit.corefile.plugins.base import FileReader, no_files
from toolkit.errors import InputFileError

# A YAML node of the document being read (its line numbers), None where there is none (JSON).
_Node: TypeAlias = "Node | None"
_Loader: TypeAlias = "type[SafeLoader] | type[CSafeLoader]"

_K8S_HINT = ("give a Corefile, or the ConfigMap as `kubectl get cm -n kube-system coredns -o yaml` "
             "prints it")


def read_text(path: str, stdin: IO[str] | IO[bytes] | None = None) -> str:
    """The text of PATH, or of stdin for ``-``, read through ``toolkit.inputs`` (size cap,
    FIFOs and pipes bounded by the deadline). Missing/unreadable/oversized -> InputFileError."""
    from toolkit import inputs

    if path == "-" and stdin is not None:  # an explicit stream (tests, embedding callers)
        data = stdin.read(inputs.CONFIGMAP_LIMIT + 1)
        if len(data) > inputs.CONFIGMAP_LIMIT:
            raise InputFileError("<stdin>", f"larger than {inputs.CONFIGMAP_LIMIT >> 20} MiB: "
                                            "not a Corefile or a ConfigMap")
        return data.decode("utf-8") if isinstance(data, bytes) else data
    return inputs.read_text(path, what="a Corefile or a ConfigMap", limit=inputs.CONFIGMAP_LIMIT)


def _is_corefile_key(key: str) -> bool:
    # *.server / *.override: the files of `import custom/*.server` and `import custom/*.override`
    # (AKS and k3s mount the coredns-custom ConfigMap at /etc/coredns/custom).
    k = key.lower()
    return k.startswith("corefile") or k.endswith((".server", ".override"))


def _looks_like_k8s(text: str) -> bool:
    for line in text.splitlines()[:200]:
        s = line.strip()
        if s.startswith(("apiVersion:", "kind:", "data:", "items:", '"apiVersion"', '"kind"',
                         '"data"', "- apiVersion:")):
            return True
    return False


def load_corefiles(path: str, *, text: str | None = None, env: Mapping[str, str] | None = None,
                   stdin: IO[str] | IO[bytes] | None = None,
                   images: list[str] | None = None) -> list[Corefile]:
    """All Corefiles in PATH (or in TEXT, named PATH). Raises InputFileError/CorefileError.

    IMAGES, when given, gets the container images of the workloads in the input (a
    Deployment or DaemonSet beside the ConfigMaps: which CoreDNS runs them)."""
    source = "<stdin>" if path == "-" else path
    if text is None:
        text = read_text(path, stdin)
    if text.startswith("\ufeff"):
        text = text[1:]
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")) and not stripped.startswith("{$"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        except RecursionError:
            # json's C scanner counts its recursion (Py_EnterRecursiveCall): deep nesting
            # ends here cleanly, near sys.getrecursionlimit() levels.
            raise InputFileError(source, "JSON nested too deeply to be a ConfigMap",
                                 hint=_K8S_HINT) from None
        if isinstance(doc, (dict, list)):
            found = _from_objects([doc], source, None, env, images)
            if found is None:
                raise InputFileError(source, "JSON that is not a ConfigMap or a List of them",
                                     hint=_K8S_HINT)
            return found
    if _looks_like_k8s(text):
        return _from_yaml(text, source, env, images)
    return [parse_corefile(text, env=env, source=source, line_offset=0)]


# Any below: parsed JSON/YAML values, of any type until checked with isinstance.
def _configmap_corefiles(doc: dict[Any, Any], node: _Node, source: str,
                         env: Mapping[str, str] | None, out: list[Corefile]) -> None:
    """Append the Corefiles of one ConfigMap object (its ``Corefile*``, ``*.server`` and
    ``*.override`` keys; an empty ConfigMap is an empty fragment) to OUT."""
    data = doc.get("data")
    if data is None:
        data = {}  # an empty ConfigMap, e.g. AKS's coredns-custom as created
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    name = str(meta.get("name") or "?")
    ns = meta.get("namespace")
    cm = f"{ns}/{name}" if ns else name
    data_node = _map_get(node, "data")
    if not data:
        out.append(Corefile(blocks=(), source=source, configmap=cm, key=None, line_offset=None,
                            fragment=True))
    for key, value in data.items():
        if not isinstance(key, str) or not _is_corefile_key(key) or not isinstance(value, str):
            continue
        if len(out) >= MAX_COREFILES:
            raise InputFileError(source, f"more than {MAX_COREFILES} Corefiles in one input",
                                 hint="give the ConfigMaps you mean (kubectl get cm -n "
                                      "kube-system coredns nodelocaldns -o yaml)")
        offset = _literal_offset(_map_get(data_node, key))
        parse = parse_fragment if key.lower().endswith(".override") else parse_corefile
        try:
            out.append(parse(value, env=env, source=source, configmap=cm, key=key,
                             line_offset=offset))
        except CorefileError as exc:
            again = CorefileError(f"{exc.detail} (ConfigMap {cm}, key {key})", exc.line,
                                  exc.column, source=source, file_line=exc.file_line)
            again.directives_before = exc.directives_before
            raise again from None


_WORKLOADS = frozenset({"Deployment", "DaemonSet", "Pod", "ReplicaSet", "StatefulSet"})
MAX_IMAGES = 64


def _pod_images(doc: dict[Any, Any]) -> list[str]:
    """The container images of a workload object (its pod template, or a Pod's spec)."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return []
    tmpl = spec.get("template")
    pod = tmpl.get("spec") if isinstance(tmpl, dict) else spec
    if not isinstance(pod, dict):
        return []
    out: list[str] = []
    for key in ("containers", "initContainers"):
        cs = pod.get(key)
        for c in cs if isinstance(cs, list) else []:
            if isinstance(c, dict) and isinstance(c.get("image"), str):
                out.append(c["image"][:512])
    return out


def _from_objects(docs: list[Any], source: str, nodes: Sequence[_Node] | None,
                  env: Mapping[str, str] | None,
                  images: list[str] | None = None) -> list[Corefile] | None:
    """Corefiles of plain python ConfigMap objects (nodes: the matching YAML nodes for lines)."""
    out: list[Corefile] = []
    seen_k8s = False
    # A stack popped from the end (children pushed in reverse keep document order): linear in
    # the number of objects, where inserting at the front of a list was quadratic (a List
    # of a million ConfigMaps ran for minutes).
    pending = [(d, nodes[i] if nodes else None) for i, d in enumerate(docs)][::-1]
    while pending:
        doc, node = pending.pop()
        if isinstance(doc, list):
            pending.extend([(d, _seq_item(node, i)) for i, d in enumerate(doc)][::-1])
            continue
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "List" or (isinstance(doc.get("items"), list) and "data" not in doc):
            seen_k8s = True
            items = doc.get("items") or []
            if not isinstance(items, list):
                continue
            items_node = _map_get(node, "items")
            pending.extend([(d, _seq_item(items_node, i)) for i, d in enumerate(items)][::-1])
            continue
        data = doc.get("data")
        if not isinstance(data, dict) and not (data is None and doc.get("kind") == "ConfigMap"):
            if "kind" in doc or "apiVersion" in doc:
                seen_k8s = True
            if images is not None and doc.get("kind") in _WORKLOADS and len(images) < MAX_IMAGES:
                images.extend(_pod_images(doc))
            continue
        seen_k8s = True
        _configmap_corefiles(doc, node, source, env, out)
    if not seen_k8s:
        return None
    if not out and images:
        return out  # workloads only: the caller has their images, the Corefiles come elsewhere
    if not out:
        raise InputFileError(source, "no Corefile in it (no ConfigMap data key named Corefile "
                                     "or *.server)", hint=_K8S_HINT)
    return out


def _map_get(node: _Node, key: str) -> _Node:
    if node is None or getattr(node, "id", None) != "mapping":
        return None
    for k, v in node.value:
        if getattr(k, "value", None) == key:
            found: Node = v  # a mapping node's value is (key node, value node) pairs
            return found
    return None


def _seq_item(node: _Node, i: int) -> _Node:
    if node is None or getattr(node, "id", None) != "sequence":
        return None
    return node.value[i] if i < len(node.value) else None


def _literal_offset(node: _Node) -> int | None:
    """For a literal block scalar (``|``), Corefile line N is file line N + offset."""
    if node is None or getattr(node, "style", None) != "|":
        return None
    # start_mark is at the '|' indicator (0-based line); content starts on the next line.
    return node.start_mark.line + 1


# Budgets checked on the event stream before anything is composed. A ConfigMap is 3 levels
# deep and a `kind: List` of them 5; kubectl never writes anchors or aliases.
# - MAX_YAML_DEPTH: libyaml's C composer (PyYAML's _yaml.pyx) recurses once per level with
#   no limit, so ~30k nested "[" (60 KB) overflow the C stack: a segfault, not an exception.
# - MAX_YAML_ALIASES / MAX_YAML_NODES: aliases share nodes, so a few hundred bytes can
#   describe 10^9 nodes ("billion laughs"); everything that walks the document afterwards
#   pays for the expanded size. Count nodes as if every alias were expanded.
MAX_YAML_DEPTH = 64
MAX_YAML_ALIASES = 10_000
# PyYAML composes about 70k nodes/s even with the C loader (measured: 990k nodes in 14 s), so
# 200k nodes (~3 s) keeps a load inside the default deadline; a CoreDNS ConfigMap with its
# managedFields is about 100 nodes.
MAX_YAML_NODES = 200_000
# A cluster has a handful of Corefile ConfigMaps (CoreDNS, NodeLocal DNSCache); each one found
# is parsed and linted, so a List of a million of them would run for minutes.
MAX_COREFILES = 256


class _Budget:
    """The YAML budgets counted over an event stream: open collections (expanded node count,
    anchor), the size of every anchored node, aliases met, and the expanded total."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.stack: list[list[int]] = []        # expanded node count per open collection
        self.stack_anchors: list[str | None] = []
        self.anchors: dict[str, int] = {}
        self.open_anchors: set[str] = set()
        self.aliases = 0
        self.total = 0

    def fail(self, problem: str) -> InputFileError:
        return InputFileError(self.source, f"YAML {problem}: not a ConfigMap", hint=_K8S_HINT)

    def add(self, n: int) -> None:
        self.total += n
        if self.stack:
            self.stack[-1][0] += n
        if self.total > MAX_YAML_NODES:
            raise self.fail(f"expands to more than {MAX_YAML_NODES:,} nodes through "
                            f"{self.aliases} alias(es)" if self.aliases
                            else f"has more than {MAX_YAML_NODES:,} nodes")

    def scalar(self, anchor: str | None) -> None:
        if anchor is not None:
            self.anchors[anchor] = 1
        self.add(1)

    def start(self, anchor: str | None) -> None:
        self.stack.append([1])
        self.stack_anchors.append(anchor)
        if anchor is not None:
            self.open_anchors.add(anchor)
        if len(self.stack) > MAX_YAML_DEPTH:
            raise self.fail(f"nested deeper than {MAX_YAML_DEPTH} levels")

    def end(self) -> None:
        n = self.stack.pop()[0]
        anchor = self.stack_anchors.pop()
        if anchor is not None:
            self.anchors[anchor] = n
            self.open_anchors.discard(anchor)
        self.total -= n - 1  # its children were counted already as they came
        self.add(n)

    def alias(self, anchor: str | None) -> None:
        self.aliases += 1
        if self.aliases > MAX_YAML_ALIASES:
            raise self.fail(f"has more than {MAX_YAML_ALIASES:,} aliases")
        if anchor in self.open_anchors:
            # A collection that contains itself: libyaml composes it, and every walk of
            # the document then runs forever.
            raise self.fail(f"alias *{anchor} inside its own anchor (a recursive document)")
        # An unknown anchor: the composer rejects it.
        self.add(self.anchors.get(anchor, 1) if anchor is not None else 1)


def check_yaml_budget(text: str, source: str, loader: _Loader | None = None) -> None:
    """Raise InputFileError when TEXT nests deeper than MAX_YAML_DEPTH, has more than
    MAX_YAML_ALIASES aliases, or expands to more than MAX_YAML_NODES nodes. Reads events
    only (libyaml's parser keeps its own heap stack): nothing is composed yet."""
    import yaml
    from yaml.events import (
        AliasEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
    )

    if loader is None:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    budget = _Budget(source)
    for ev in yaml.parse(text, Loader=loader):
        if isinstance(ev, ScalarEvent):
            budget.scalar(ev.anchor)
        elif isinstance(ev, (MappingStartEvent, SequenceStartEvent)):
            budget.start(ev.anchor)
        elif isinstance(ev, (MappingEndEvent, SequenceEndEvent)):
            budget.end()
        elif isinstance(ev, AliasEvent):
            budget.alias(ev.anchor)


def _from_yaml(text: str, source: str, env: Mapping[str, str] | None,
               images: list[str] | None = None) -> list[Corefile]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        check_yaml_budget(text, source, loader)
        nodes = [n for n in yaml.compose_all(text, Loader=loader) if n is not None]
        docs = [yaml.constructor.SafeConstructor().construct_document(n) for n in nodes]
    except (ValueError, OverflowError) as exc:
        # A scalar the constructor cannot convert: an int of more than 4300 digits
        # (CVE-2020-10735 limit), a timestamp with month 13.
        raise InputFileError(source, f"YAML value that cannot be read: {str(exc)[:120]}",
                             hint=_K8S_HINT) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputFileError(source, f"not valid YAML{where}: {problem}", hint=_K8S_HINT) from None
    found = _from_objects(docs, source, nodes, env, images)
    if found is None:
        raise InputFileError(source, "YAML that is not a ConfigMap or a List of them",
                             hint=_K8S_HINT)
    return found


def load_all(paths: list[str], *, env: Mapping[str, str] | None = None,
             stdin: IO[str] | IO[bytes] | None = None,
             images: list[str] | None = None) -> list[Corefile]:
    """Corefiles of several paths, in order (``-`` at most once); IMAGES gets the images of
    the workloads given with them (see load_corefiles)."""
    out: list[Corefile] = []
    for p in paths:
        out.extend(load_corefiles(p, env=env, stdin=stdin, images=images))
        if len(out) > MAX_COREFILES:  # the same cap over all inputs: `FILE` 1000 times
            raise InputFileError(p, f"more than {MAX_COREFILES} Corefiles in all the inputs",
                                 hint="give the Corefiles you mean")
    if not out and paths:
        raise InputFileError(paths[0] if paths else "-", "no Corefile in it (no ConfigMap data "
                             "key named Corefile, *.server or *.override)", hint=_K8S_HINT)
    if out and all(cf.fragment and cf.key is None for cf in out):
        # Only empty ConfigMaps: nothing to read at all.
        raise InputFileError(out[0].source, "no Corefile in it (no ConfigMap data key named "
                             "Corefile, *.server or *.override)", hint=_K8S_HINT)
    return out


# A hosts or zone file is a few MB at most; anything larger is not read.
MAX_DATA_FILE = 8 << 20


def root_reader(root: str | None) -> FileReader:
    """A FileReader over DIR (``--root``): an absolute path is read under DIR, a relative one
    relative to DIR (CoreDNS's working directory); what cannot be read (missing, too large,
    not UTF-8, outside DIR through ``..``) is None: the trace then says it could not see it."""
    if root is None:
        return no_files
    import os

    base = os.path.realpath(root)

    def read(path: str) -> str | None:
        full = os.path.realpath(os.path.join(base, path.lstrip("/")))
        if not full.startswith(base + os.sep):
            return None
        try:
            with open(full, "rb") as f:
                data = f.read(MAX_DATA_FILE + 1)
        except OSError:
            return None
        if len(data) > MAX_DATA_FILE:
            return None
        return data.decode("utf-8", "replace")

    return read
