"""The store: engines and sessions, the tables, and every line of dialect SQL."""
