"""gunicorn settings for the collector: `gunicorn -c gunicorn.conf.py 'analytics_bp:create_app()'`.

Why these: the writer (sink) is created lazily in each worker after fork, so --preload is safe;
`worker_exit` commits and delivers what a worker holds, so SIGTERM and HUP lose nothing; the access
log format has no %(h)s (remote address) and no User-Agent, so no IP address is ever logged.
The environment variables it reads are settings.SERVER_SETTINGS (docs/config.md, second table).
"""

from __future__ import annotations

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


def on_starting(server: object) -> None:
    """Check every setting in the master, before any worker: a bad one is one line, then exit 2.
    Only for this collector (the benchmark's bare Flask baseline runs with this file too)."""
    import os

    from analytics_bp.settings import from_environ, startup_check

    app_uri = str(getattr(getattr(server, "app", None), "app_uri", ""))
    if app_uri.startswith("analytics_bp"):
        startup_check(from_environ(os.environ), "gunicorn", workers)  # one writer slot per process


def worker_exit(server: object, worker: object) -> None:
    """Flush this worker's spool and deliver it before the process goes away."""
    import analytics_bp

    analytics_bp.close_all()
