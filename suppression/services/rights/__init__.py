"""Data-subject rights and the retention schedule: erasure, export, key rotation."""
