"""Cluster reach: the kubectl plugin (``kubectl podtriage``) and fleet merges.

The plugin drives the user's own ``kubectl`` (every auth method keeps working) and never
talks to the API server itself; ``merge`` is pure logic over podtriage JSON documents.
Modules: ``context`` (where a report was made), ``merge`` (fleet report), ``specs``
(ephemeral-container and Job specs, PodSecurity profiles), ``kubectl`` (the subprocess
wrapper), ``container`` (waiting for a container and following its log), ``ephemeral``
(pod mode), ``jobs`` (node Jobs), ``fleet`` (pods -l and nodes fan-out), ``output`` (what
the plugin prints), ``cli`` (the console script).
"""
