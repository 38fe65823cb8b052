"""The built-in dashboard in real Chromium, and who may see it."""
