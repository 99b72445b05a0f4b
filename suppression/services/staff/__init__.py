"""Staff accounts, API keys, the access log and the dashboard's numbers."""
