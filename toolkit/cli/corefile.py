"""`podtriage corefile`: placeholder, being written."""
