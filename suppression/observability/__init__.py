"""Logs, their redaction, and the metrics the service exports."""
