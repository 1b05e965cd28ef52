"""The benchmark scenarios, in the order they run; each returns a JSON-ready dict."""
