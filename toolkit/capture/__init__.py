"""DNS on the wire: pcap/pcapng reading (pcapio), a fast decoder (decode), a pure streaming
analyzer (analysis), live capture (live), who-asked (whoasked), and the Report (report).

Import the submodules directly; this package imports nothing (scapy never at import)."""
