"""gunicorn settings for the collector, shipped in the package:
`gunicorn -c python:analytics_bp.gunicorn_conf 'analytics_bp:create_app()'`.

Why these: the writer (sink) is created lazily in each worker after fork, so --preload is safe;
`worker_exit` commits and delivers what a worker holds, so SIGTERM and HUP lose nothing; the access
log format has no %(h)s (remote address) and no User-Agent, and the error log goes through
`logfilter.ClientAddressFilter`, so no client address is ever logged (gunicorn's own "Invalid
request from ip=..." included). The environment variables it reads are settings.SERVER_SETTINGS
(docs/config.md, second table). The repository's gunicorn.conf.py is this module, re-exported.
"""

from __future__ import annotations

import logging
import os

from analytics_bp.logfilter import ClientAddressFilter
from analytics_bp.settings import server_setting

bind = server_setting("ANALYTICS_BIND")
workers = int(server_setting("ANALYTICS_WORKERS"))
threads = int(server_setting("ANALYTICS_THREADS"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = 30
graceful_timeout = 30
keepalive = 5
max_requests = 0
forwarded_allow_ips = server_setting("FORWARDED_ALLOW_IPS")
accesslog = server_setting("ANALYTICS_ACCESS_LOG")
access_log_format = '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
loglevel = server_setting("ANALYTICS_LOG_LEVEL")


# gunicorn's error log is this logger (gunicorn.glogging.Logger.error_log); a filter on the logger
# itself stays through gunicorn's handler setup and reopening, in the master and every worker.
logging.getLogger("gunicorn.error").addFilter(ClientAddressFilter())


def _analytics_logging() -> None:
    """The collector's own lines (`analytics.*`: refused beacons, start-up, delivery) beside
    gunicorn's, at ANALYTICS_LOG_LEVEL, with client addresses taken out too."""
    logger = logging.getLogger("analytics")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] "
                                               "%(message)s", "%Y-%m-%d %H:%M:%S %z"))
        handler.addFilter(ClientAddressFilter())
        logger.addHandler(handler)
    logger.setLevel(loglevel.upper())


_analytics_logging()


def on_starting(server: object) -> None:
    """Check every setting in the master, before any worker: a bad one is one line, then exit 2.
    Only for this collector (the benchmark's bare Flask baseline runs with this file too)."""
    from analytics_bp.settings import from_environ, startup_check

    app_uri = str(getattr(getattr(server, "app", None), "app_uri", ""))
    if app_uri.startswith("analytics_bp"):
        cfg = startup_check(from_environ(os.environ), "gunicorn", workers)  # a writer slot per process
        from analytics_bp import agents

        agents.preload(matomo=cfg.device_lookups_per_minute > 0)  # once, shared by the workers


def worker_exit(server: object, worker: object) -> None:
    """Flush this worker's spool and deliver it before the process goes away."""
    import analytics_bp

    analytics_bp.close_all()
