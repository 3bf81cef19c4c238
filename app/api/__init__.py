"""The HTTP query service: search, passages, citations, index status, admin and health.

Build the application with :func:`app.api.main.create_app`; run it with ``wikirag serve``.
"""
