"""`flask analytics ...`: setup, tasks, snippet, export."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from . import __version__, deploy, rollups
from .influx import InfluxAdmin
from .state import AnalyticsState, current_state

analytics_cli = click.version_option(__version__, prog_name="analytics_bp")(
    AppGroup("analytics", help="Analytics: buckets, tasks, the site snippet, deployment files."))


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


@analytics_cli.group("export")
def export_group() -> None:
    """Write the deployment files the package carries into a directory."""


@export_group.command("grafana")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_grafana(directory: Path) -> None:
    """Grafana provisioning (datasource at this app's InfluxDB) and the three dashboards."""
    for written in deploy.export_grafana(current_state().config, current_state().target, directory):
        click.echo(f"wrote {written}")
    click.echo("the datasource reads its token from INFLUXDB_V2_TOKEN in Grafana's environment")


@export_group.command("nginx")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_nginx(directory: Path) -> None:
    """The nginx drop-in (serving the agent from DIRECTORY/static) and the example server."""
    for written in deploy.export_nginx(current_state().config, directory):
        click.echo(f"wrote {written}")
