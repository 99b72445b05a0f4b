"""Importing suppression lists from a previous provider."""
