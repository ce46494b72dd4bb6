"""The scheduler: one loop that claims due work in SQL and enqueues it on the broker."""
