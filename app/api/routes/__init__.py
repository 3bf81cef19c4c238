"""One router per resource; :func:`app.api.main.create_app` includes them all."""
