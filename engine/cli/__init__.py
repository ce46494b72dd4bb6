"""The ``campaign`` command (typer + rich): the command table and ``main``.

This package is the composition root: the one place in ``engine`` that imports ``workers`` and
``scheduler``, lazily inside the commands that need them. One module per group of commands;
this one registers them, in the order ``campaign --help`` lists them:

* :mod:`engine.cli.processes`: ``migrate``, ``api``, ``up``, ``scheduler``, ``worker``;
* :mod:`engine.cli.campaigns`: ``demo``, ``create``, ``execute``;
* :mod:`engine.cli.executions`: ``progress``, ``pause``, ``resume``, ``cancel``, ``retry``;
* :mod:`engine.cli.admin`: ``admin bootstrap|create-key|create-api-user|create-bot|rotate-secrets``;
* :mod:`engine.cli.contacts`: ``contacts import|export``;
* :mod:`engine.cli.shared` (consoles, exit code, setup) and :mod:`engine.cli.views` (the
  progress bar and tables) serve them all.
"""

from __future__ import annotations

import typer

from engine.cli import campaigns, executions, processes
from engine.cli.admin import admin_app
from engine.cli.contacts import contacts_app

#: The ``campaign`` command.
app = typer.Typer(help="campaign-engine: run marketing campaigns.", no_args_is_help=True)

app.command("migrate")(processes.migrate_cmd)
app.command()(campaigns.demo)
app.command()(campaigns.create)
app.command()(campaigns.execute)
app.command()(processes.api)
app.add_typer(admin_app, name="admin")
app.add_typer(contacts_app, name="contacts")
app.command()(processes.up)
app.command("scheduler")(processes.scheduler_cmd)
app.command()(processes.worker)
app.command()(executions.progress)
app.command("pause")(executions.pause)
app.command("resume")(executions.resume)
app.command("cancel")(executions.cancel)
app.command()(executions.retry)


def main() -> None:
    """Console-script entry point."""
    app()
