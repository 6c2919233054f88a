"""DNS on the wire, bottom up:

- reading: ``pcapio`` (pcap/pcapng files, the pcap writer), ``live`` (a packet socket);
- decoding: ``decode`` (link types, tunnels, IP, transports) over ``reassembly`` (TCP
  framing, IP fragments) and ``dnswire`` (the DNS wire format, ``DnsEvent``);
- analysis: ``analysis`` (the per-packet sequence) with ``pairing`` (query and response,
  A/AAAA twins), ``chains`` (search-list walks into lookups), ``counters``, ``latency``,
  ``config``; its results in ``records``;
- who asked: ``whoasked`` (sock_diag + /proc: the process behind a client socket);
- the report: ``rules`` (one rule per finding), ``text`` (times, lines, event bodies),
  ``report`` (the Report); ``session`` runs a file read end to end; ``synth`` builds frames
  for tests and benchmarks.

Import the submodules directly; this package imports nothing (scapy never at import)."""
