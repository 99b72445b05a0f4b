"""One module per destination platform behind one Protocol (`base.Connector`).

Connectors know HTTP and their platform, nothing of our tables; `settings`
reads their configuration from the environment and builds them; `fakes` holds
local HTTP servers that speak each platform's interface, for tests and
benchmarks.
"""
