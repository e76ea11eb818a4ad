"""Registry of the extension's own state and control routes, so reset and the control
API reach every patch without the control module knowing them."""

import threading

_lock = threading.Lock()
_resets = []
_routes = {}


def on_reset(fn):
    with _lock:
        _resets.append(fn)
    return fn


def reset():
    with _lock:
        fns = list(_resets)
    for fn in fns:
        fn()


def route(method, name):
    def register(fn):
        with _lock:
            _routes[(method, name)] = fn
        return fn

    return register


def control_routes():
    with _lock:
        return dict(_routes)
