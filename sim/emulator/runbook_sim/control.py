"""The simulation's control API, served on the emulator's own port under /_sim/.

  GET  /_sim/health           liveness, versions, patches applied
  GET  /_sim/timing           current seconds per transition
  POST /_sim/timing           {"preset": "realistic"} and/or {"aurora_switchover": 5, ...}
  POST /_sim/reset            forget every resource (moto's and ours), timing back to start
  GET  /_sim/aurora           per global cluster: members, writer, replication lag
  POST /_sim/aurora/lag       {"global_cluster": id, "lag_ms": n} set a secondary's lag
"""

import json

import moto

from . import state
from .timing import TIMING, TimingError

PREFIX = "/_sim/"


def _json(start_response, status, doc):
    body = json.dumps(doc, indent=None, sort_keys=True).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _read_json(environ):
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = 0
    raw = environ["wsgi.input"].read(size) if size else b""
    if not raw.strip():
        return {}
    return json.loads(raw)


class ControlMiddleware:
    """Answers /_sim/ itself and hands every other request to moto."""

    def __init__(self, app, patches):
        self.app = app
        self.patches = patches
        self.routes = {
            ("GET", "health"): self.health,
            ("GET", "timing"): self.get_timing,
            ("POST", "timing"): self.post_timing,
            ("PUT", "timing"): self.post_timing,
            ("POST", "reset"): self.reset,
        }

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            state.tick()
            return self.app(environ, start_response)
        name = path[len(PREFIX) :].strip("/")
        method = environ.get("REQUEST_METHOD", "GET")
        handler = self.routes.get((method, name))
        if handler is None:
            handler = state.control_routes().get((method, name))
        if handler is None:
            return _json(start_response, "404 Not Found", {"error": f"no {method} {path}"})
        try:
            doc = _read_json(environ) if method in ("POST", "PUT") else {}
            if not isinstance(doc, dict):
                raise ValueError("the request body must be a JSON object")
            state.tick()
            result = handler(doc)
        except (TimingError, ValueError, KeyError) as e:
            return _json(start_response, "400 Bad Request", {"error": str(e)})
        return _json(start_response, "200 OK", result)

    def health(self, _doc):
        return {"ok": True, "moto": moto.__version__, "patches": self.patches}

    def get_timing(self, _doc):
        return TIMING.snapshot()

    def post_timing(self, doc):
        return TIMING.update(doc)

    def reset(self, _doc):
        from moto.moto_api import _internal

        _internal.moto_api_backend.reset()
        state.reset()
        TIMING.reset()
        return {"ok": True, "timing": TIMING.snapshot()}
