"""The collector's gunicorn settings for this checkout: the module the package ships.

After `pip install`, use `gunicorn -c python:analytics_bp.gunicorn_conf 'analytics_bp:create_app()'`.
"""

from analytics_bp.gunicorn_conf import *  # noqa: F403
