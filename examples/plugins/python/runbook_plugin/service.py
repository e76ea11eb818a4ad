"""The runbook.plugin.v1 Plugin service over a set of Actions.

It does for a Python plugin what sdk/plugin's Server does for a Go one:
checks parameters against the schemas, fills defaults, runs the action's
functions, streams progress and maps failures onto the protocol's Error
(retryable or fatal, with a code) the same way, so the host cannot tell the
languages apart.
"""

import json
import queue
import threading
import time
import traceback

import grpc

from runbook.plugin.v1 import plugin_pb2 as pb
from runbook.plugin.v1 import plugin_pb2_grpc as pb_grpc

from . import action as act
from . import schema

PROTOCOL_VERSION = 1

_SEVERITY = {
    act.SEVERITY_ERROR: pb.SEVERITY_ERROR,
    act.SEVERITY_WARNING: pb.SEVERITY_WARNING,
}


class Info:
    def __init__(self, name, version):
        self.name = name
        self.version = version


class PluginService(pb_grpc.PluginServicer):
    def __init__(self, info, actions, log):
        if not info.name:
            raise ValueError("plugin name is empty")
        self.info = info
        self.log = log
        self.actions = {}
        for a in actions:
            if a.name in self.actions:
                raise ValueError("action %r is defined twice" % a.name)
            self.actions[a.name] = a

    def description(self):
        """The answer to Describe and to `describe` (spec.Description's JSON)."""
        return {
            "name": self.info.name,
            "version": self.info.version,
            "protocol_version": PROTOCOL_VERSION,
            "actions": [self.actions[n].spec() for n in sorted(self.actions)],
        }

    def _action(self, name, context):
        a = self.actions.get(name)
        if a is None:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          "plugin %s has no action %r" % (self.info.name, name))
        return a

    def _bug(self, context, what, name, exc):
        """An exception the plugin did not mean to raise: log it, fail the RPC."""
        self.log.error("%s of action %s raised" % (what, name), error=repr(exc),
                       traceback=traceback.format_exc())
        context.abort(grpc.StatusCode.UNKNOWN, "plugin %s: %s of action %s raised %s: %s"
                      % (self.info.name, what, name, type(exc).__name__, exc))

    # --- RPCs ---

    def Describe(self, request, context):
        resp = pb.DescribeResponse(name=self.info.name, version=self.info.version,
                                   protocol_version=PROTOCOL_VERSION)
        for n in sorted(self.actions):
            a = self.actions[n]
            resp.actions.append(pb.ActionSchema(
                name=a.name, doc=a.doc,
                params_schema=_json(a.params), outputs_schema=_json(a.outputs),
                idempotent=a.idempotent, supports_plan=a.plan is not None,
                read_only=a.read_only))
        return resp

    def Validate(self, request, context):
        a = self._action(request.action, context)
        unknown = frozenset(request.unknown_paths)
        try:
            raw = json.loads(request.params or b"{}")
        except ValueError as e:
            return pb.ValidateResponse(diagnostics=[_diag_pb(act.Diagnostic(
                "", "parameters are not valid JSON: %s" % e))])
        problems = schema.validate(a.params, raw, unknown)
        if problems or a.validate is None:
            return pb.ValidateResponse(diagnostics=[
                _diag_pb(act.Diagnostic(p.path, p.message)) for p in problems])
        params = schema.with_defaults(a.params, raw, unknown)
        try:
            diags = a.validate(act.ValidateRequest(params, unknown)) or []
        except Exception as e:  # noqa: BLE001 - a plugin bug, reported as such
            self._bug(context, "Validate", a.name, e)
        return pb.ValidateResponse(diagnostics=[_diag_pb(d) for d in diags])

    def Plan(self, request, context):
        a = self._action(request.action, context)
        if a.plan is None:
            context.abort(grpc.StatusCode.UNKNOWN, "action %s does not support plan" % a.name)
        unknown = frozenset(request.unknown_paths)
        params, problems = _decode(a, request.params, unknown)
        if problems:
            # Located diagnostics, as a Go plugin returns for an Error with
            # diagnostics, rather than one opaque failure.
            return pb.PlanResponse(diagnostics=[
                _diag_pb(act.Diagnostic(p.path, p.message)) for p in problems])
        log = self.log.with_fields(action=a.name, step=request.step_id)
        try:
            plan = a.plan(act.PlanRequest(request.run_id, request.step_id, params, unknown, log))
        except act.ActionError as e:
            if e.diagnostics:
                return pb.PlanResponse(diagnostics=[_diag_pb(d) for d in e.diagnostics])
            context.abort(grpc.StatusCode.UNKNOWN, str(e))
        except Exception as e:  # noqa: BLE001
            self._bug(context, "Plan", a.name, e)
        resp = pb.PlanResponse(summary=plan.summary,
                               diagnostics=[_diag_pb(d) for d in plan.diagnostics])
        for c in plan.changes:
            resp.changes.append(pb.Change(
                resource=c.resource, field=c.field, before=_json(c.before), after=_json(c.after),
                after_unknown=c.after_unknown, kind=c.kind or act.UPDATE))
        return resp

    def Apply(self, request, context):
        """Progress events, then exactly one result or error."""
        a = self._action(request.action, context)
        params, problems = _decode(a, request.params, frozenset())
        if problems:
            yield _error_event(act.ActionError("invalid parameters: %s" % problems[0],
                                               code="InvalidParams"))
            return

        # The earlier of the request's deadline and the gRPC call's own.
        deadline = request.deadline_unix_ms / 1000.0 if request.deadline_unix_ms > 0 else None
        remaining = context.time_remaining()
        if remaining is not None:
            rpc_deadline = time.time() + remaining
            deadline = rpc_deadline if deadline is None else min(deadline, rpc_deadline)

        cancelled = act.new_cancel_event()
        # Called when the RPC ends for any reason; before the result is sent
        # that means the host cancelled or went away.
        context.add_callback(cancelled.set)

        # The action runs in its own thread so that its progress can be
        # streamed while it runs; events and the outcome come through here.
        events = queue.Queue()
        log = self.log.with_fields(action=a.name, step=request.step_id, attempt=request.attempt)

        def progress(message, fields):
            p = pb.Progress(message=str(message), time_unix_ms=int(time.time() * 1000))
            if fields:
                # Progress is for people: a value that is not JSON (a path,
                # an exception) is shown as its text rather than failing.
                p.fields = _json(fields, lenient=True)
            events.put(("progress", pb.ApplyEvent(progress=p)))

        req = act.ApplyRequest(
            run_id=request.run_id, step_id=request.step_id, attempt=request.attempt,
            idempotency_key=request.idempotency_key, rollback=request.rollback,
            params=params, log=log, progress=progress, deadline=deadline, cancelled=cancelled)

        def run():
            try:
                out = a.apply(req)
                events.put(("done", self._result_event(a, out, log)))
            except act.ActionError as e:
                events.put(("done", _error_event(e)))
            except act.Interrupted as e:
                if e.deadline_exceeded:
                    err = act.ActionError("action %s: deadline exceeded" % a.name,
                                          code="Timeout", retryable=True)
                else:
                    err = act.ActionError("action %s: cancelled" % a.name, code="Canceled")
                events.put(("done", _error_event(err)))
            except Exception as e:  # noqa: BLE001 - a plugin bug: fatal, with the cause
                log.error("apply raised", error=repr(e), traceback=traceback.format_exc())
                events.put(("done", _error_event(act.ActionError(
                    "plugin %s: action %s raised %s: %s" % (self.info.name, a.name, type(e).__name__, e),
                    code="PluginException"))))

        worker = threading.Thread(target=run, name="apply-" + a.name, daemon=True)
        worker.start()
        while True:
            try:
                kind, ev = events.get(timeout=0.5)
            except queue.Empty:
                if not context.is_active():
                    # The host is gone and the action ignores cancellation:
                    # give the RPC worker back; the action thread is a
                    # daemon and ends with it or with the process.
                    log.warn("apply abandoned: the call ended but the action is still running")
                    return
                continue
            yield ev
            if kind == "done":
                return

    def _result_event(self, a, out, log):
        if out is None:
            out = {}
        if not isinstance(out, dict):
            raise TypeError("apply returned %s, not a dict of outputs" % type(out).__name__)
        # The outputs are already done in the world: a mismatch with the
        # declared schema is logged for the plugin's author, not turned into
        # a failure that would hide what happened.
        for p in schema.validate(a.outputs, out):
            log.error("output does not match the declared outputs schema", problem=str(p))
        return pb.ApplyEvent(result=pb.Result(outputs=_json(out)))


def _decode(a, raw_bytes, unknown):
    """Parses and checks params; returns (params with defaults, problems)."""
    try:
        raw = json.loads(raw_bytes or b"{}")
    except ValueError as e:
        return None, [schema.Problem("", "parameters are not valid JSON: %s" % e)]
    if raw is None:
        raw = {}
    problems = schema.validate(a.params, raw, unknown)
    if problems:
        return None, problems
    return schema.with_defaults(a.params, raw, unknown), []


def _json(v, lenient=False):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False,
                      default=str if lenient else None).encode()


def _diag_pb(d):
    return pb.Diagnostic(severity=_SEVERITY.get(d.severity, pb.SEVERITY_ERROR),
                         summary=d.summary, detail=d.detail, path=d.path)


def _error_event(e):
    return pb.ApplyEvent(error=pb.Error(
        message=str(e), code=e.code, retryable=e.retryable,
        diagnostics=[_diag_pb(d) for d in e.diagnostics],
        retry_after_ms=int(getattr(e, "retry_after", 0) * 1000) if e.retryable else 0))
