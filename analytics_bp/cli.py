"""`flask analytics ...`: setup, upgrade, tasks, snippet, export."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask.cli import AppGroup

from . import __version__, deploy, rollups, upgrade
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


@analytics_cli.command("upgrade")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="First site day to rebuild (default: the oldest raw pageview still kept).")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Last site day to rebuild (default: yesterday).")
def upgrade_command(since: datetime | None, until: datetime | None) -> None:
    """After upgrading: set up buckets and tasks, then rebuild every rollup of the days still in
    the raw bucket with the new tasks (up to yesterday; the tasks keep today current)."""
    admin, state = admin_for_app()
    cfg = state.config
    try:
        for what, outcome in rollups.setup(cfg, admin).items():
            click.echo(f"{what}: {outcome}")
        first = since.date() if since else upgrade.first_raw_day(cfg, admin)
        last = until.date() if until else datetime.now(ZoneInfo(cfg.timezone)).date() - timedelta(days=1)
        if first is None or first > last:
            click.echo("nothing to rebuild: no raw pageviews before today")
            return
        days = upgrade.rebuild(cfg, admin, first, last, click.echo)
        click.echo(f"done: {days} days rebuilt from the raw points")
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
        # InfluxDB sets a new task's "latest completed" to its creation time: a task that never
        # ran has no run status, and then says so.
        ran = bool(row["last_status"]) and row["last_run"] is not None
        last = f"last run {row['last_run'].isoformat()} ({row['last_status']})" if ran else "never ran"
        click.echo(f"{row['name']:<28} {row['status']:<9} every {row['every'] or '-':<4} {last}"
                   + (f": {row['last_error']}" if row["last_error"] else ""))


@analytics_cli.command("snippet")
@click.option("--origin", default="https://stats.example.com", help="Where the collector is served.")
@click.option("--extras", default=None, help="Comma list of outbound, downloads, engagement for "
              "agent.extras.js (default: ANALYTICS_AGENT_EXTRAS; `none` for the plain agent.js).")
@click.option("--allow-local", is_flag=True, help="Also count visits from localhost and 127.0.0.1.")
def snippet_command(origin: str, extras: str | None, allow_local: bool) -> None:
    """Print the script tag (and the recordEvent queue stub) for a site's templates: the extras
    build when ANALYTICS_AGENT_EXTRAS (or --extras) switches any on."""
    from .settings import EXTRA_EVENTS
    from .snippet import queue_stub, script_tag

    state = current_state()
    chosen = state.config.agent_extras if extras is None else tuple(
        e.strip() for e in extras.split(",") if e.strip() and e.strip() != "none")
    unknown = sorted(set(chosen) - set(EXTRA_EVENTS))
    if unknown:
        raise click.BadParameter(f"unknown extra {unknown[0]}; expected {', '.join(EXTRA_EVENTS)}",
                                 param_hint="--extras")
    options: dict[str, object] = {name: True for name in chosen}
    if allow_local:
        options["allow_local"] = True
    click.echo(queue_stub())
    click.echo(script_tag(origin.rstrip("/") + state.config.url_prefix, **options))


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
