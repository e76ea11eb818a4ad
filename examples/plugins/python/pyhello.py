"""pyhello: a runbook plugin written in Python.

One action, greet: makes a greeting and, when asked, writes it to a file.
It shows everything a plugin owes the host: schemas, a static Validate, a
read-only Plan (what the file holds now against what it would hold), Apply
with progress, honest idempotency, outputs that allow a rollback (the file's
previous content), and retryable versus fatal errors.

Started by runbook through the runbook-plugin-pyhello launcher, which runs
this file with the Python environment that setup.sh made.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from runbook_plugin import (  # noqa: E402
    CREATE, NOOP, UPDATE, Action, Change, Diagnostic, Info, Plan, duration, fatal, retryable,
    schema, serve)

INFO = Info("pyhello", "0.1.0")

PARAMS = schema.obj([
    ("name", schema.string("Who to greet.")),
    ("mood", schema.string("How to greet: calm, or loud (upper case).", enum=["calm", "loud"], default="calm")),
    ("file", schema.string("An absolute path to write the greeting to, replacing the file's content "
                           "atomically. Without it nothing is written.")),
    ("wait", schema.duration_string("How long to pause before greeting (Go duration syntax).", default="0s")),
    ("fail", schema.string("Make the action fail, to see how runbook handles it: retryable (code "
                           "Throttled, retried under the step's retry policy) or fatal (code "
                           "GreetingRefused).", enum=["", "retryable", "fatal"], default="")),
], required=["name"])

OUTPUTS = schema.obj([
    ("greeting", schema.string("The greeting.")),
    ("file", schema.string("The file written, or empty.")),
    ("existed", schema.boolean("Whether the file existed before.")),
    ("previous", schema.string("The file's previous content (empty if it did not exist): what a "
                               "rollback step writes back.")),
    ("changed", schema.boolean("Whether the file's content changed.")),
    ("waited", schema.duration_string("How long the action paused.")),
])


def greeting(params):
    g = "hello, " + params["name"]
    return g.upper() if params["mood"] == "loud" else g


def read_current(path):
    """The file's content, or None if it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise fatal("ReadFailed", "reading %s: %s" % (path, e.strerror or e)) from e


def validate(req):
    diags = []
    if not req.unknown("/name") and req.params["name"].strip().lower() == "nobody":
        diags.append(Diagnostic("/name", "cannot greet nobody", "name someone to greet"))
    f = req.params.get("file")
    if f is not None and not req.unknown("/file") and not os.path.isabs(f):
        # The plugin runs in the host's working directory, which is easy to
        # get wrong at 3 a.m.: insist on a path that means one thing.
        diags.append(Diagnostic("/file", "file must be an absolute path, not %r" % f))
    return diags


def plan(req):
    p = req.params
    after = None if req.unknown("/name") else greeting(p)
    f = p.get("file")
    if f is None:
        return Plan("greet %s (nothing is written)" % ("a name known at run time" if after is None else p["name"]),
                    [Change("greeting", NOOP, after=after, after_unknown=after is None)])
    if req.unknown("/file"):
        return Plan("write a greeting to a file known at run time",
                    [Change("file (known at run time)", UPDATE, field="content",
                            after=after, after_unknown=after is None)])
    current = read_current(f)
    if after is not None and current == after:
        kind = NOOP
    elif current is None:
        kind = CREATE
    else:
        kind = UPDATE
    return Plan("%s %s" % ({NOOP: "keep", CREATE: "create", UPDATE: "rewrite"}[kind], f),
                [Change("file " + f, kind, field="content", before=current, after=after,
                        after_unknown=after is None)])


def apply(req):
    p = req.params
    wait_ns = duration.parse(p["wait"])
    if wait_ns > 0:
        req.progress("waiting", **{"for": p["wait"]})
        req.sleep(wait_ns / duration.SECOND)

    if p["fail"] == "retryable":
        # As a rate-limited HTTP service would say with "Retry-After: 0.25"
        # (servers send whole seconds; parse_retry_after reads the header).
        raise retryable("Throttled", "the greeting service is throttling (attempt %d)" % req.attempt,
                        retry_after=0.25)
    if p["fail"] == "fatal":
        raise fatal("GreetingRefused", "%s does not want to be greeted" % p["name"])

    g = greeting(p)
    out = {"greeting": g, "file": "", "existed": False, "previous": "", "changed": False,
           "waited": duration.format(wait_ns)}
    f = p.get("file")
    if f is not None:
        current = read_current(f)
        out.update(file=f, existed=current is not None, previous=current or "")
        if current == g:
            req.progress("file already holds the greeting", file=f)
        else:
            write_atomically(f, g)
            out["changed"] = True
            req.progress("wrote the greeting", file=f)
    req.log.info("greeted", name=p["name"], changed=out["changed"])
    return out


def write_atomically(path, content):
    """Replaces path's content so that a reader sees the old or the new, whole."""
    d = os.path.dirname(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".pyhello-", dir=d)
    except OSError as e:
        raise fatal("WriteFailed", "writing %s: %s" % (path, e.strerror or e)) from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise fatal("WriteFailed", "writing %s: %s" % (path, e.strerror or e)) from e


GREET = Action(
    "greet",
    doc="Makes a greeting and, given a file, writes it there (atomically). Running it again "
        "with the same parameters changes nothing more.",
    params=PARAMS,
    outputs=OUTPUTS,
    apply=apply,
    plan=plan,
    validate=validate,
    idempotent=True,
)

if __name__ == "__main__":
    serve(INFO, [GREET])
