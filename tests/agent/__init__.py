"""The JavaScript agent in real Chromium, through a real gunicorn collector."""
