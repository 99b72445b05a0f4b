"""The `suppression` command: an edge that opens sessions and commits."""
