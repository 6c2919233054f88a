"""`podtriage capture`: placeholder, being written."""
