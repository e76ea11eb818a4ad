"""Actions: what a plugin offers, and what their functions receive.

An Action pairs a name and JSON Schemas (see schema.py) with functions:

    apply(req: ApplyRequest) -> dict            the outputs; required
    plan(req: PlanRequest) -> Plan              read-only; optional
    validate(req: ValidateRequest) -> [Diagnostic]   static; optional

Parameters arrive checked against the params schema, with defaults filled
in. Raise ActionError (retryable() / fatal()) to fail an Apply; any other
exception is a bug in the plugin and fails the step without retries.
"""

import threading
import time

SEVERITY_ERROR = "error"
SEVERITY_WARNING = "warning"

# Kinds of Change, as in runbook.plugin.v1.
CREATE, UPDATE, DELETE, REPLACE, NOOP, ACTION = (
    "create", "update", "delete", "replace", "noop", "action")


class Diagnostic:
    """A problem for the user, located by a JSON pointer into the params."""

    def __init__(self, path, summary, detail="", severity=SEVERITY_ERROR):
        self.path = path
        self.summary = summary
        self.detail = detail
        self.severity = severity

    def __repr__(self):
        return "Diagnostic(%r, %r)" % (self.path, self.summary)


class Change:
    """One intended change reported by Plan: what, from what, to what."""

    def __init__(self, resource, kind, field="", before=None, after=None, after_unknown=False):
        self.resource = resource
        self.kind = kind
        self.field = field
        self.before = before
        self.after = after
        self.after_unknown = after_unknown


class Plan:
    def __init__(self, summary, changes=(), diagnostics=()):
        self.summary = summary
        self.changes = list(changes)
        self.diagnostics = list(diagnostics)


class ActionError(Exception):
    """An action's failure as the host sees it: retryable or not."""

    def __init__(self, message, code="", retryable=False, diagnostics=(), retry_after=0.0):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.diagnostics = list(diagnostics)
        # Seconds the server asked to wait before a retry (HTTP
        # Retry-After); the host waits at least that long, bounded by the
        # step's timeout. 0: not said.
        self.retry_after = max(float(retry_after or 0), 0.0)

    def __str__(self):
        if self.code and self.message:
            return self.code + ": " + self.message
        return self.message or self.code


def retryable(code, message, retry_after=0.0):
    """A transient failure: the host retries under the step's retry policy,
    no sooner than retry_after seconds (what a server's Retry-After says; see
    parse_retry_after)."""
    return ActionError(message, code=code, retryable=True, retry_after=retry_after)


def parse_retry_after(value, now=None):
    """Seconds to wait from an HTTP Retry-After header value (RFC 9110,
    section 10.2.3: delay-seconds or an HTTP date), or None when the value
    is missing or unreadable. A date in the past is 0; waits are capped at a
    day."""
    import email.utils
    import time as _time
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    if value.isdigit():
        return float(min(int(value), 86400))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = _time.time() if now is None else now
    return float(min(max(when.timestamp() - now, 0.0), 86400.0))


def fatal(code, message):
    """A permanent failure: the step fails without further attempts."""
    return ActionError(message, code=code, retryable=False)


class Interrupted(Exception):
    """Raised by ApplyRequest.sleep when the call is cancelled or out of time."""

    def __init__(self, deadline_exceeded):
        super().__init__("deadline exceeded" if deadline_exceeded else "cancelled by the host")
        self.deadline_exceeded = deadline_exceeded


class Action:
    def __init__(self, name, apply, params, outputs, doc="", plan=None, validate=None,
                 idempotent=False, read_only=False):
        if not name:
            raise ValueError("an action has no name")
        self.name = name
        self.doc = doc
        self.apply = apply
        self.plan = plan
        self.validate = validate
        self.params = params
        self.outputs = outputs
        # Read-only actions change nothing, so running them again is safe.
        self.read_only = read_only
        self.idempotent = idempotent or read_only

    def spec(self):
        """The action's entry in a description (spec.ActionSpec's JSON)."""
        return {
            "name": self.name,
            "doc": self.doc,
            "params": self.params,
            "outputs": self.outputs,
            "idempotent": self.idempotent,
            "supports_plan": self.plan is not None,
            "read_only": self.read_only,
        }


class ValidateRequest:
    def __init__(self, params, unknown):
        self.params = params
        self._unknown = frozenset(unknown)

    def unknown(self, path):
        """Whether the parameter at a JSON pointer is known only at run time."""
        return path in self._unknown


class PlanRequest(ValidateRequest):
    def __init__(self, run_id, step_id, params, unknown, log):
        super().__init__(params, unknown)
        self.run_id = run_id
        self.step_id = step_id
        self.log = log


class ApplyRequest:
    """One Apply call: parameters, identity of the call, progress, time."""

    def __init__(self, run_id, step_id, attempt, idempotency_key, rollback, params, log,
                 progress, deadline, cancelled):
        self.run_id = run_id
        self.step_id = step_id
        # Counts from 1 across retries of the step.
        self.attempt = attempt
        # Stable across attempts and resumes of one step of one run: pass it
        # to APIs that deduplicate requests.
        self.idempotency_key = idempotency_key
        self.rollback = rollback
        self.params = params
        self.log = log
        self._progress = progress
        # Seconds since the epoch after which the attempt is abandoned, or None.
        self.deadline = deadline
        self._cancelled = cancelled

    def progress(self, message, **fields):
        """Reports what the action is doing now; fields are structured."""
        self._progress(message, fields)

    def cancelled(self):
        return self._cancelled.is_set()

    def remaining(self):
        """Seconds left before the deadline, or None without one."""
        if self.deadline is None:
            return None
        return self.deadline - time.time()

    def sleep(self, seconds):
        """Waits, and raises Interrupted at cancellation or the deadline.

        Use it for every wait (polling, back-off) so that the host's
        cancellation stops the action promptly.
        """
        end = time.time() + max(0.0, seconds)
        while True:
            if self._cancelled.is_set():
                raise Interrupted(deadline_exceeded=False)
            now = time.time()
            if self.deadline is not None and now >= self.deadline:
                raise Interrupted(deadline_exceeded=True)
            if now >= end:
                return
            limit = end if self.deadline is None else min(end, self.deadline)
            self._cancelled.wait(max(0.0, limit - now))


def new_cancel_event():
    return threading.Event()
