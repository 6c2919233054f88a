"""What a trace finds: the hops of a query through the Corefiles (block, deciding plugin,
where it goes next) and the result of the whole walk."""

from __future__ import annotations

from dataclasses import dataclass, field

from toolkit.corefile.plugins.forward import TargetKind, UpstreamTransport
from toolkit.corefile.roles import Assembly, CorefileRole, RoleAssignment


@dataclass(frozen=True)
class NextHop:
    """Where a hop sends the query: the upstream taken (``target``), all upstreams of the
    forward (``targets``), how, and what the upstream is."""

    target: str
    transport: UpstreamTransport
    kind: TargetKind
    note: str = ""
    targets: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Hop:
    """One server block a query reaches: which, what its plugins did, where it goes next."""

    corefile: str
    block: str
    line: int
    file_line: int | None
    zones: tuple[str, ...]
    port: int | None
    name: str
    plugin: str | None
    plugin_line: int | None
    next: NextHop | None
    via: str
    outcome: str
    notes: tuple[str, ...] = ()
    stub_forward: bool = False
    role: CorefileRole | None = None
    # Plugins that answer first when they know the name (kubernetes, hosts with fallthrough).
    conditional: tuple[str, ...] = ()
    rcode: str | None = None  # the rcode of an answer given here (None: not known here)
    qtype: str = "A"          # the query type here (a rewrite may change it)


@dataclass(frozen=True, kw_only=True)
class TraceResult:
    """The path of one name through the Corefiles, how it ends, and what went wrong."""

    name: str
    qtype: str
    hops: tuple[Hop, ...]
    outcome: str
    final: NextHop | None
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())
    roles: tuple[RoleAssignment, ...] = ()
    assembly: Assembly | None = field(default=None, repr=False, compare=False)
    # The rcode CoreDNS gives when the walk ends in a plugin of the Corefiles (None: an
    # upstream, the API server or a file not given decides).
    rcode: str | None = None
    versions: tuple[str, ...] = ()  # the CoreDNS builds the Corefiles were read as
    # A continue-only rewrite on the path: the answer keeps the rewritten question and
    # clients drop it.
    unreverted: bool = False
