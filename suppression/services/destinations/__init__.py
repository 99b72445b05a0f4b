"""The destination outbox, its sync planning, reconciling and Keap's pull."""
