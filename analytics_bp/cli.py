"""`flask analytics ...`: setup, tasks, snippet."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from . import rollups
from .influx import InfluxAdmin
from .state import AnalyticsState, current_state

analytics_cli = AppGroup("analytics", help="Analytics: buckets, tasks and the site snippet.")


def admin_for_app() -> tuple[InfluxAdmin, AnalyticsState]:
    state = current_state()
    target = state.target
    return InfluxAdmin(target.url, target.org, target.token), state


@analytics_cli.command("setup")
def setup_command() -> None:
    """Create the buckets (with retention) and the rollup tasks; safe to run again."""
    admin, state = admin_for_app()
    try:
        for what, outcome in rollups.setup(state.config, admin).items():
            click.echo(f"{what}: {outcome}")
    finally:
        admin.close()


@analytics_cli.command("tasks")
def tasks_command() -> None:
    """List the rollup tasks with their last run and status."""
    admin, state = admin_for_app()
    try:
        rows = admin.tasks(prefix=state.config.bucket + "_")
    finally:
        admin.close()
    if not rows:
        click.echo("no tasks: run `flask analytics setup`")
    for row in rows:
        last = row["last_run"].isoformat() if row["last_run"] else "never"
        status = row["last_status"] or "-"
        click.echo(f"{row['name']:<28} {row['status']:<9} every {row['every'] or '-':<4} "
                   f"last run {last} ({status})" + (f": {row['last_error']}" if row["last_error"] else ""))


@analytics_cli.command("snippet")
@click.option("--origin", default="https://stats.example.com", help="Where the collector is served.")
def snippet_command(origin: str) -> None:
    """Print the script tag (and the recordEvent queue stub) for a site's templates."""
    from .snippet import queue_stub, script_tag

    state = current_state()
    click.echo(queue_stub())
    click.echo(script_tag(origin.rstrip("/") + state.config.url_prefix))
