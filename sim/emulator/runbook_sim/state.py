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


# ---- regions that are dark (a regional outage) ----
#
# The fault proxy makes a region's API unreachable (sim/faultproxy, by the region in
# each request's SigV4 scope). What AWS's own state does meanwhile is the emulator's
# part: the patches read dark_since() to model it (an Aurora global cluster whose
# member is in a dark region does not become `available` again until it returns). The
# emulator still answers requests signed for a dark region; put the fault proxy in
# front to make them go unanswered (sim/outage does both).

_dark = {}  # region -> clock time it went dark
_region_hooks = []


def on_region_change(fn):
    """Register fn(region, dark, at) to run (under LOCK) when a region goes dark or
    returns; at is the simulation clock's time of the change."""
    with LOCK:
        _region_hooks.append(fn)
    return fn


def set_dark(region, dark, at):
    with LOCK:
        if bool(dark) == (region in _dark):
            return
        if dark:
            _dark[region] = at
        else:
            del _dark[region]
        for fn in list(_region_hooks):
            fn(region, bool(dark), at)


def dark_since(region):
    """The clock time region went dark, or None if it is not dark."""
    with LOCK:
        return _dark.get(region)


def dark_regions():
    with LOCK:
        return dict(_dark)


@on_reset
def _reset_dark():
    _dark.clear()
