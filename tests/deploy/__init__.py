"""Settings, packaging, README's commands, gunicorn and nginx as shipped, the state directory."""
