"""`podtriage diagnose`: placeholder, being written."""
