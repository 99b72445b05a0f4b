"""Consent changes, the evidence chain, subjects and the one-click intake."""
