"""The HTTP API (FastAPI): a thin adapter over the engine's services. ``create_app()`` builds it."""
