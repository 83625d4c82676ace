"""Browser tests: the real server (gunicorn) driven by real Chromium (Playwright)."""
