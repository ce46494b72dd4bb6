"""dramatiq adapter: the broker from ``BROKER_URL`` and thin actors calling engine services."""
