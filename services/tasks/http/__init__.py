"""HTTP routes a task has of its own on the gateway's HTTP edge (the Roboflow server's ``/clip/*``, ``/sam2/*``,
``/ocr/*``), one module per task module, named after it. A task's ``http_routes`` imports its router from here
inside the method; the edge mounts what every registered task answers and names none of them.

Server-side only: these modules import FastAPI, pydantic and the gateway, so nothing on the client install
imports them (docs/architecture.md, import rules 3, 11 and 13).
"""
