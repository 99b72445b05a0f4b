"""Pure rules: no Flask, no SQLAlchemy, no I/O. Tested without a database."""
