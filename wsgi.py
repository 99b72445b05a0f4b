"""gunicorn wsgi:app"""

from suppression import create_app

app = create_app()
