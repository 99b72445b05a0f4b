"""Pre-send checks: whole lists decided against the store, and the hashed list."""
