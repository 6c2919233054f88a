"""`podtriage conntrack`: placeholder, being written."""
