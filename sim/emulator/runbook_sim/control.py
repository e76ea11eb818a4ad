"""The simulation's control API, served on the emulator's own port under /_sim/.

  GET  /_sim/health        liveness, moto version, patches applied
  GET  /_sim/timing        seconds per transition
  POST /_sim/timing        {"preset": "realistic"} and/or {"aurora_switchover": 5, ...}
  GET  /_sim/clock         {"now": epoch seconds, "offset_seconds": n}
  POST /_sim/clock         {"advance": seconds}: fast-forward every transition
  POST /_sim/reset         forget every resource (moto's and ours); timing and clock
                           back to how the emulator started
  GET  /_sim/aurora        global clusters: members, writer, lag, operation, history
  POST /_sim/aurora/lag    {"lag_ms": n} for every secondary, or {"cluster": arn|id, "lag_ms": n};
                           "metric" limits it to AuroraGlobalDBRPOLag or AuroraGlobalDBReplicationLag
  POST /_sim/hooks         tell a local fake when auto-scaling instances boot and go (hooks.py)
  GET  /_sim/regions       {"dark": {region: clock time it went dark}}
  POST /_sim/regions       {"region": "eu-west-1", "dark": true|false}: a regional outage
                           begins or ends, as AWS's own state sees it (the fault proxy makes
                           the region's API unreachable; sim/outage does both)

Bodies and answers are JSON; errors are {"error": "..."} with status 400 or 404.
"""

import json

import moto

from . import hooks, state
from .timing import CLOCK, TIMING, TimingError

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
            ("GET", "clock"): self.get_clock,
            ("POST", "clock"): self.post_clock,
            ("GET", "regions"): self.get_regions,
            ("POST", "regions"): self.post_regions,
        }

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            state.tick()
            hooks.deliver()  # what the transitions now due did
            result = self.app(environ, start_response)
            hooks.deliver()  # what the request itself did; before it is answered
            return result
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
        hooks.deliver()
        return _json(start_response, "200 OK", result)

    def health(self, _doc):
        return {"ok": True, "moto": moto.__version__, "patches": self.patches}

    def get_timing(self, _doc):
        return TIMING.snapshot()

    def post_timing(self, doc):
        return TIMING.update(doc)

    def get_clock(self, _doc):
        return {"now": CLOCK.now(), "offset_seconds": CLOCK.offset()}

    def post_clock(self, doc):
        CLOCK.advance(doc.get("advance", 0))
        state.tick()
        return self.get_clock({})

    def get_regions(self, _doc):
        return {"dark": state.dark_regions()}

    def post_regions(self, doc):
        region, dark = doc.get("region"), doc.get("dark")
        if not isinstance(region, str) or not region:
            raise ValueError("region must be a region name such as eu-west-1")
        if not isinstance(dark, bool):
            raise ValueError("dark must be true or false")
        state.set_dark(region, dark, CLOCK.now())
        state.tick()
        return self.get_regions({})

    def reset(self, _doc):
        from moto.moto_api import _internal

        _internal.moto_api_backend.reset()
        state.reset()
        TIMING.reset()
        CLOCK.reset()
        return {"ok": True, "timing": TIMING.snapshot()}
