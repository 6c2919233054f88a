"""`podtriage reach`: placeholder, being written."""
