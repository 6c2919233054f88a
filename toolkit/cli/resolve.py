"""`podtriage resolve`: placeholder, being written."""
