"""``python -m engine`` is the ``campaign`` command."""

from engine.cli import main

main()
