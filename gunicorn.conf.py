"""gunicorn settings for the collector: `gunicorn -c gunicorn.conf.py 'analytics_bp:create_app()'`.

Why these: the writer (sink) is created lazily in each worker after fork, so --preload is safe;
`worker_exit` commits and delivers what a worker holds, so SIGTERM and HUP lose nothing; the access
log format has no %(h)s (remote address) and no User-Agent, so no IP address is ever logged.
"""

from __future__ import annotations

import os

bind = os.environ.get("ANALYTICS_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("ANALYTICS_WORKERS", "2"))
threads = int(os.environ.get("ANALYTICS_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = 30
graceful_timeout = 30
keepalive = 5
max_requests = 0
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("ANALYTICS_ACCESS_LOG", "-")
access_log_format = '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
loglevel = os.environ.get("ANALYTICS_LOG_LEVEL", "info")


def worker_exit(server: object, worker: object) -> None:
    """Flush this worker's spool and deliver it before the process goes away."""
    import analytics_bp

    analytics_bp.close_all()
