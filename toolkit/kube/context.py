"""Where a report was made: the pod, namespace and node the kubectl plugin hands every
ephemeral container and Job pod as environment variables. Every JSON document carries them
as ``context`` (null where unknown), so a fleet merge can say which node differs."""

from __future__ import annotations

import os

ENV = {"pod": "PODTRIAGE_POD", "namespace": "PODTRIAGE_NAMESPACE", "node": "PODTRIAGE_NODE"}


def run_context() -> dict[str, str | None]:
    """{pod, namespace, node} of this run, from the plugin's environment variables."""
    return {key: (os.environ.get(var) or None) for key, var in ENV.items()}
