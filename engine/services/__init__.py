"""What is left of the use cases outside the concept packages: access (``auth``: organizations'
users, API keys, tokens) and the demo. Each public function is one unit of work over a session.
"""
