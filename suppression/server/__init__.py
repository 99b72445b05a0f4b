"""The HTTP server process, apart from the app it serves: gunicorn's worker class.

Importing it loads neither Flask nor the app, so that the gunicorn master sets up
the metrics folder before any metric exists."""
