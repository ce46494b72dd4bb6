"""campaign-engine: executes marketing campaigns over rate-limited channels.

The domain lives here (models, services, channels, rate limiting); ``workers`` and
``scheduler`` are thin adapters that call it.
"""

__version__ = "0.1.0"
