"""The gateway's HTTP edge: one ASGI app with Roboflow-compatible and KServe v2 REST routes."""
