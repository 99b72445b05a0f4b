"""Settings, read once from the environment, and the checks production makes of them."""
