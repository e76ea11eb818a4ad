"""Structured logs in hclog's JSON line format, on stderr.

go-plugin's host reads a plugin's stderr line by line and, for a JSON line
with "@level", "@message" and "@timestamp", re-emits it at that level under
the plugin's name with the other keys as fields. Anything else it logs at
debug level, so the format matters for operators reading the run.
"""

import datetime
import json
import os
import sys
import threading

LEVELS = {"trace": 1, "debug": 2, "info": 3, "warn": 4, "error": 5, "off": 6}

# hclog spells "warn" both ways on input; we write what hclog writes.
_ALIASES = {"warning": "warn", "err": "error"}

_write_lock = threading.Lock()


def level_from_env(var="RUNBOOK_PLUGIN_LOG_LEVEL", default="info"):
    """Reads the log level the host asks for, as Go plugins do."""
    v = os.environ.get(var, "").strip().lower()
    v = _ALIASES.get(v, v)
    return v if v in LEVELS else default


def timestamp(now=None):
    """The timestamp layout go-plugin parses: microseconds and a UTC offset.

    A line whose @timestamp does not parse as 2006-01-02T15:04:05.000000Z07:00
    is demoted to a debug line by the host, so this is not cosmetic.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc).astimezone()
    return now.isoformat(timespec="microseconds")


class Logger:
    """A logger with fixed fields, like hclog.Logger.With."""

    def __init__(self, name, stream=None, level="info", fields=None):
        self.name = name
        self._stream = stream
        self.level = level
        self._fields = dict(fields or {})

    def with_fields(self, **fields):
        merged = dict(self._fields)
        merged.update(fields)
        return Logger(self.name, self._stream, self.level, merged)

    def enabled(self, level):
        return LEVELS[level] >= LEVELS[self.level]

    def log(self, level, message, **fields):
        if not self.enabled(level):
            return
        entry = {
            "@level": level,
            "@message": str(message),
            "@module": self.name,
            "@timestamp": timestamp(),
        }
        for k, v in list(self._fields.items()) + list(fields.items()):
            if not k.startswith("@"):
                entry[k] = v
        # default=str: a field that is not JSON (an exception, a path) is
        # still logged, as its text.
        line = json.dumps(entry, default=str, ensure_ascii=False)
        stream = self._stream or sys.stderr
        with _write_lock:
            stream.write(line + "\n")
            stream.flush()

    def trace(self, message, **fields):
        self.log("trace", message, **fields)

    def debug(self, message, **fields):
        self.log("debug", message, **fields)

    def info(self, message, **fields):
        self.log("info", message, **fields)

    def warn(self, message, **fields):
        self.log("warn", message, **fields)

    def error(self, message, **fields):
        self.log("error", message, **fields)
