"""Shared machinery of the patches: one lock, the tickers that bring in-flight
transitions up to date, reset hooks, and extra control routes.

Transitions are lazy. Before the emulator handles any request, tick() runs every
ticker under LOCK; a ticker compares the clock with the end times of its in-flight
transitions and applies those that are due (flipping the Aurora writer, replacing an
auto-scaling group's instances, ...). Values that only depend on the clock (a
percentage, a running count) are computed by properties when read. So no
background thread exists, and every response reflects the clock at its arrival.
"""

import threading

# Guards the extension's state and every mutation it makes to moto's models.
LOCK = threading.RLock()

_resets = []
_tickers = []
_routes = {}


def on_reset(fn):
    """Register fn() to forget the extension's state on POST /_sim/reset."""
    with LOCK:
        _resets.append(fn)
    return fn


def reset():
    with LOCK:
        for fn in list(_resets):
            fn()


def ticker(fn):
    """Register fn() to apply due transitions before each request."""
    with LOCK:
        _tickers.append(fn)
    return fn


def tick():
    with LOCK:
        for fn in list(_tickers):
            fn()


def route(method, name):
    """Register a control endpoint /_sim/<name>; the handler takes the decoded JSON
    body (a dict) and the query parameters, and returns a JSON-able value."""

    def register(fn):
        with LOCK:
            _routes[(method, name)] = fn
        return fn

    return register


def control_routes():
    with LOCK:
        return dict(_routes)
