"""Use cases. Each public function is one unit of work over a session or a runtime."""
