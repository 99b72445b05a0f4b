"""Use cases as plain functions taking a Session. They flush; the edge commits."""
