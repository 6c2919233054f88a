"""erratic: answers every query, dropping, delaying or truncating some of them on purpose
(a test plugin; coredns/coredns plugin/erratic)."""

from __future__ import annotations

from toolkit.corefile.document import Directive
from toolkit.corefile.plugins.base import Action, Context, Handler, Query, Step, at, each


def step(d: Directive, query: Query, ctx: Context) -> Step:  # noqa: ARG001 - the Handler signature
    """It answers whatever it is asked (when it does not drop it)."""
    return Step(action=Action.ANSWER, name=query.name, directive=d,
                outcome=f"answered by {d.name} ({at(d)})")


handler: Handler = each(step)
