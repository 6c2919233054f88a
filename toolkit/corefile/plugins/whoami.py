"""whoami: answers every query with the client's address and port (coredns/coredns
plugin/whoami)."""

from __future__ import annotations

from toolkit.corefile.document import Directive
from toolkit.corefile.plugins.base import Action, Context, Handler, Query, Step, at, each


def step(d: Directive, query: Query, ctx: Context) -> Step:  # noqa: ARG001 - the Handler signature
    """It answers whatever it is asked."""
    return Step(action=Action.ANSWER, name=query.name, directive=d, rcode="NOERROR",
                outcome=f"answered by {d.name} ({at(d)})")


handler: Handler = each(step)
