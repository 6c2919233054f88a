"""`podtriage resolvconf`: placeholder, being written."""
