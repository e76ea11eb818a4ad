"""Auto Scaling instance refresh, lifecycle hooks, and instance termination that takes time.

moto 5.2.5 has no instance refresh at all (StartInstanceRefresh,
DescribeInstanceRefreshes and CancelInstanceRefresh answer "not implemented"), no
CompleteLifecycleAction or RecordLifecycleActionHeartbeat, and
TerminateInstanceInAutoScalingGroup removes the instance and puts an InService
replacement in its place within the same call, so "terminate and wait until the group
is healthy again" never waits.

Instance refresh (strategy Rolling), as the EC2 Auto Scaling API reference describes
StartInstanceRefresh and RefreshPreferences, and the user guide's "Understand the
default values for an instance refresh" gives the API's defaults:

  - Which instances: the InService and Pending ones. Instances protected from scale in
    follow ScaleInProtectedInstances: Refresh (replaced like the others), Ignore (left
    alone), Wait (the default from the API and SDKs: replaced last, once their
    protection is removed; the refresh fails if it is not removed within
    asg_refresh_wait_limit seconds, one hour in AWS). Instances in Standby follow
    StandbyInstances: Terminate (terminated when the refresh starts, not replaced),
    Ignore, Wait (the default: replaced last once they are back InService, or the
    refresh fails after the same limit). SkipMatching true skips the instances that
    already have the group's launch template, which here is every instance (the
    emulator does not track per-instance template versions): nothing is replaced.
  - Batches of max(1, N * (100 - MinHealthyPercentage) / 100) instances (default
    MinHealthyPercentage 90), over the timing model's asg_instance_refresh seconds for
    the whole refresh: Pending for the first tenth, then each batch's old instances go
    Terminating while their replacements (new instance ids, from the group's launch
    template) are Pending; at the end of the batch's share the old ones are terminated
    in EC2 and leave the group.
  - A replacement then waits for every autoscaling:EC2_INSTANCE_LAUNCHING lifecycle hook
    of the group in Pending:Wait: until CompleteLifecycleAction (CONTINUE: InService;
    ABANDON: it is terminated and another instance is launched in its place) or until
    the hook's HeartbeatTimeout (real seconds; RecordLifecycleActionHeartbeat restarts
    it), when the hook's DefaultResult applies.
  - Once all of a batch's replacements are InService the refresh waits InstanceWarmup
    seconds (the preference; real seconds; 0 if not given: the group's own
    DefaultInstanceWarmup and HealthCheckGracePeriod are not read, since moto defaults
    the grace period to 300 where the API's default is 0) before the next batch, and
    after the last one before it is Successful.
  - PercentageComplete and InstancesToUpdate follow the batches. A second start while
    one is active is InstanceRefreshInProgress; CancelInstanceRefresh stops after the
    current batch (Cancelling -> Cancelled). Checkpoints, bake time, alarms, rollback
    and MaxHealthyPercentage above 100 are not modelled (the last is validated).

TerminateInstanceInAutoScalingGroup: the instance is Terminating for the timing
model's asg_instance_warmup seconds, its replacement (unless
ShouldDecrementDesiredCapacity) Pending; then the old one is gone and the new one goes
through the launching lifecycle hooks as above and InService.

Lifecycle hooks of the EC2_INSTANCE_TERMINATING transition are not modelled, nor are
hooks on the instances moto itself launches (CreateAutoScalingGroup, SetDesiredCapacity).
"""

import datetime
import math

from moto.autoscaling import models as asg_models
from moto.autoscaling import responses as asg_responses
from moto.core.responses import ActionResult, EmptyResult
from moto.moto_api._internal import mock_random

from . import state
from .errors import SimServiceError
from .timing import TIMING, Transition, now

# (account, region, group) -> [Refresh], newest last
_refreshes = {}
# in-flight single-instance replacements
_replacements = []
# instance id -> Launch, for every replacement still going through its launch
_launches = {}

PENDING_SHARE = 0.1  # share of a refresh spent Pending before the first batch
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"

PROTECTED_CHOICES = ("Refresh", "Ignore", "Wait")
STANDBY_CHOICES = ("Terminate", "Ignore", "Wait")


def _utc(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)


def _launch(group, count):
    """Launch count instances into group, Pending; return their InstanceStates."""
    if count <= 0:
        return []
    before = {id(s) for s in group.instance_states}
    group.replace_autoscaling_group_instances(count, group.get_propagated_tags())
    new = [s for s in group.instance_states if id(s) not in before]
    for s in new:
        s.lifecycle_state = "Pending"
    return new


def _remove(backend, group, states):
    ids = [s.instance.id for s in states]
    if not ids:
        return
    group.instance_states = [s for s in group.instance_states if s.instance.id not in ids]
    existing = [i for i in ids if _ec2_has(backend, i)]
    if existing:
        backend.ec2_backend.terminate_instances(existing)


def _ec2_has(backend, instance_id):
    try:
        backend.ec2_backend.get_instance(instance_id)
        return True
    except Exception:
        return False


def _launch_hooks(backend, group):
    return [h for h in backend.lifecycle_hooks.values() if h.auto_scaling_group_name == group.name and h.lifecycle_transition == LAUNCHING]


class Launch:
    """One replacement instance: Pending while it boots (until boot_end), then
    Pending:Wait while a launching lifecycle hook holds it, then InService. An ABANDON
    terminates it and launches another in its place (the Launch follows the new one)."""

    def __init__(self, backend, group, st, boot_end, boot):
        self.backend, self.group, self.st, self.boot_end, self.boot = backend, group, st, boot_end, boot
        self.actions = {}  # hook name -> [deadline, heartbeat timeout, result or None, token]
        self.in_service_at = None
        _launches[st.instance.id] = self

    def advance(self, t):
        """Move on as far as time t allows. Returns True once InService."""
        if self.in_service_at is not None:
            return True
        if self.st not in self.group.instance_states:
            # Gone under us (terminated by someone else): nothing left to wait for.
            self.in_service_at = t
            return True
        if self.st.lifecycle_state == "Pending":
            if t < self.boot_end:
                return False
            hooks = _launch_hooks(self.backend, self.group)
            if hooks:
                self.st.lifecycle_state = "Pending:Wait"
                for h in hooks:
                    timeout = float(h.heartbeat_timeout)
                    self.actions[h.name] = [self.boot_end + timeout, timeout, None, str(mock_random.uuid4())]
            else:
                return self._in_service(self.boot_end)
        # Pending:Wait: every hook must be completed, or time out into its default result.
        results, done_at = [], self.boot_end
        for name, (deadline, _, result, _) in self.actions.items():
            hook = next((h for h in _launch_hooks(self.backend, self.group) if h.name == name), None)
            if result is None:
                if t < deadline:
                    return False
                result, at = (hook.default_result if hook else "CONTINUE"), deadline
                self.actions[name][2] = result
            else:
                at = self.actions[name][0]
            results.append(result)
            done_at = max(done_at, at)
        if "ABANDON" in results:
            _launches.pop(self.st.instance.id, None)
            _remove(self.backend, self.group, [self.st])
            new = _launch(self.group, 1)
            if not new:
                return self._in_service(done_at)
            self.st, self.actions, self.boot_end = new[0], {}, done_at + self.boot
            _launches[self.st.instance.id] = self
            return self.advance(t)
        self.st.lifecycle_state = "Pending:Proceed"
        return self._in_service(done_at)

    def _in_service(self, at):
        if self.st in self.group.instance_states:
            self.st.lifecycle_state = "InService"
        self.in_service_at = at
        _launches.pop(self.st.instance.id, None)
        return True


def _choice(prefs, key, choices):
    v = prefs.get(key)
    if v is None:
        return "Wait"  # the API's default for both (user guide: default values for an instance refresh)
    if v not in choices:
        raise SimServiceError("ValidationError", f"1 validation error detected: Value '{v}' at 'preferences.{key[0].lower() + key[1:]}' failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(choices)}]")
    return v


def _int_pref(prefs, key, lo, hi):
    v = prefs.get(key)
    if v is None:
        return None
    try:
        v = int(v)
    except (TypeError, ValueError):
        raise SimServiceError("ValidationError", f"{key} must be an integer")
    if v < lo or (hi is not None and v > hi):
        raise SimServiceError("ValidationError", f"{key} must be between {lo} and {hi}" if hi is not None else f"{key} must be at least {lo}")
    return v


def _bool_pref(prefs, key):
    v = prefs.get(key)
    return v is True or (isinstance(v, str) and v.lower() == "true")


class Refresh:
    def __init__(self, backend, group, preferences, strategy, desired_configuration):
        self.id = str(mock_random.uuid4())
        self.backend = backend
        self.group = group
        self.preferences = dict(preferences or {})
        self.strategy = strategy or "Rolling"
        self.desired_configuration = desired_configuration
        prefs = self.preferences
        self.min_healthy = _int_pref(prefs, "MinHealthyPercentage", 0, 100)
        max_healthy = _int_pref(prefs, "MaxHealthyPercentage", 100, 200)
        if max_healthy is not None and (self.min_healthy if self.min_healthy is not None else 90) < max_healthy - 100:
            raise SimServiceError("ValidationError", "The difference between MaxHealthyPercentage and MinHealthyPercentage cannot exceed 100.")
        self.warmup = _int_pref(prefs, "InstanceWarmup", 0, None) or 0
        self.protected_pref = _choice(prefs, "ScaleInProtectedInstances", PROTECTED_CHOICES)
        self.standby_pref = _choice(prefs, "StandbyInstances", STANDBY_CHOICES)
        self.skip_matching = _bool_pref(prefs, "SkipMatching")
        self.transition = Transition("asg_instance_refresh")
        self.wait_limit = TIMING.get("asg_refresh_wait_limit")
        self.cancel_requested = False
        self.status_reason = None
        self.ended = None

        normal, waiting, self.terminated_standby = [], [], []
        for st in group.instance_states:
            ls = st.lifecycle_state
            if ls in ("InService", "Pending") or ls.startswith("Pending:"):
                if st.protected_from_scale_in and self.protected_pref != "Refresh":
                    if self.protected_pref == "Wait":
                        waiting.append(st)
                    continue
                normal.append(st)
            elif ls == "Standby":
                if self.standby_pref == "Wait":
                    waiting.append(st)
                elif self.standby_pref == "Terminate":
                    self.terminated_standby.append(st)
        if self.skip_matching:
            normal, waiting = [], []
        old = normal + waiting
        self.total = len(old)
        min_healthy = 90 if self.min_healthy is None else self.min_healthy
        size = max(1, math.floor(self.total * (100 - min_healthy) / 100))
        self.batches = [old[i : i + size] for i in range(0, len(old), size)]
        self.batch_state = ["waiting"] * len(self.batches)
        self.new = [[] for _ in self.batches]
        self.replaced = 0
        d = self.transition.duration
        self.boot = (d - d * PENDING_SHARE) / max(1, len(self.batches))
        # when the next batch may start (the end of the previous one, or of the Pending share)
        self.next_start = self.transition.started + d * PENDING_SHARE
        self.blocked_since = None
        if self.terminated_standby:
            _remove(backend, group, self.terminated_standby)

    def _blocking(self, batch):
        """The instances of batch that Wait holds back: still protected, or still in Standby."""
        out = []
        for st in batch:
            if st not in self.group.instance_states:
                continue
            if st.lifecycle_state == "Standby" and self.standby_pref == "Wait":
                out.append(st)
            elif st.protected_from_scale_in and self.protected_pref == "Wait":
                out.append(st)
        return out

    def advance(self):
        """Apply every step that is due. Returns True when the refresh is over."""
        if self.ended is not None:
            return True
        t = now()
        for i, batch in enumerate(self.batches):
            if self.batch_state[i] == "waiting":
                if self.cancel_requested:
                    self._finish("Cancelled", t, "Instance refresh was cancelled.")
                    return True
                if t < self.next_start:
                    return False
                blocking = self._blocking(batch)
                if blocking:
                    if self.blocked_since is None:
                        self.blocked_since = max(self.next_start, t)
                    held = [s for b in self.batches[i:] for s in self._blocking(b)]
                    ids = ", ".join(sorted(s.instance.id for s in held))
                    if t - self.blocked_since >= self.wait_limit:
                        self._finish("Failed", self.blocked_since + self.wait_limit,
                                     f"Instance refresh failed: instances {ids} stayed protected from scale in or in Standby for longer than the wait limit.")
                        return True
                    self.status_reason = f"Waiting for instances {ids} to lose their scale-in protection or leave Standby."
                    return False
                start = self.next_start if self.blocked_since is None else max(self.next_start, t)
                self.blocked_since, self.status_reason = None, None
                live = [s for s in batch if s in self.group.instance_states]
                for s in live:
                    s.lifecycle_state = "Terminating"
                self.new[i] = [Launch(self.backend, self.group, st, start + self.boot, self.boot) for st in _launch(self.group, len(live))]
                self.old_end = start + self.boot
                self.batch_state[i] = "replacing"
            if self.batch_state[i] == "replacing":
                if t < self.old_end:
                    return False
                _remove(self.backend, self.group, [s for s in batch if s in self.group.instance_states])
                pending = [ln for ln in self.new[i] if not ln.advance(t)]
                if pending:
                    self.status_reason = "Waiting for new instances to complete their lifecycle actions."
                    return False
                self.status_reason = None
                ready = max([ln.in_service_at for ln in self.new[i]] + [self.old_end])
                self.next_start = ready + self.warmup
                self.replaced += len(batch)
                self.batch_state[i] = "warming"
            if self.batch_state[i] == "warming":
                if t < self.next_start:
                    return False
                self.batch_state[i] = "done"
        end = max(self.next_start, self.transition.ends)
        if t >= end:
            self._finish("Successful", end, None)
            return True
        return False

    def _finish(self, status, at, reason):
        self.final_status = status
        self.ended = at
        self.status_reason = reason

    @property
    def status(self):
        if self.ended is not None:
            return self.final_status
        if self.cancel_requested:
            return "Cancelling"
        if self.transition.elapsed() < self.transition.duration * PENDING_SHARE:
            return "Pending"
        return "InProgress"

    def describe(self):
        pct = 100 if self.total == 0 and self.ended else (100 * self.replaced // self.total if self.total else 0)
        prefs = {
            "MinHealthyPercentage": 90 if self.min_healthy is None else self.min_healthy,
            "InstanceWarmup": self.warmup,
            "SkipMatching": self.skip_matching,
            "ScaleInProtectedInstances": self.protected_pref,
            "StandbyInstances": self.standby_pref,
        }
        out = {
            "InstanceRefreshId": self.id,
            "AutoScalingGroupName": self.group.name,
            "Status": self.status,
            "StartTime": _utc(self.transition.started),
            "PercentageComplete": pct,
            "InstancesToUpdate": self.total - self.replaced,
            "ProgressDetails": {
                "LivePoolProgress": {"PercentageComplete": pct, "InstancesToUpdate": self.total - self.replaced}
            },
            "Preferences": dict(self.preferences, **prefs),
            "Strategy": self.strategy,
        }
        if self.status == "Pending":
            out["StatusReason"] = "Waiting for instances to warm up before continuing."
        if self.status_reason:
            out["StatusReason"] = self.status_reason
        if self.ended is not None:
            out["EndTime"] = _utc(self.ended)
        if self.desired_configuration:
            out["DesiredConfiguration"] = self.desired_configuration
        return out


class Replacement:
    """One TerminateInstanceInAutoScalingGroup in flight."""

    def __init__(self, backend, group, old, new):
        self.backend, self.group, self.old = backend, group, old
        self.transition = Transition("asg_instance_warmup")
        self.new = [Launch(backend, group, st, self.transition.ends, self.transition.duration) for st in new]
        self.removed = False

    def advance(self):
        if not self.transition.done():
            return False
        if not self.removed:
            _remove(self.backend, self.group, [self.old] if self.old in self.group.instance_states else [])
            self.removed = True
        t = now()
        return all([ln.advance(t) for ln in self.new])


@state.ticker
def _advance_all():
    for refreshes in _refreshes.values():
        for r in refreshes:
            if r.ended is None:
                r.advance()
    _replacements[:] = [r for r in _replacements if not r.advance()]


@state.on_reset
def _reset():
    _refreshes.clear()
    _replacements.clear()
    _launches.clear()


def _key(resp, name):
    return (resp.current_account, resp.region, name)


def _group(resp, name):
    groups = resp.autoscaling_backend.autoscaling_groups
    if not name or name not in groups:
        raise SimServiceError("ValidationError", f"AutoScalingGroup name not found - {name}")
    return groups[name]


def start_instance_refresh(self):
    name = self._get_param("AutoScalingGroupName")
    with state.LOCK:
        group = _group(self, name)
        active = [r for r in _refreshes.get(_key(self, name), []) if r.ended is None]
        if active:
            raise SimServiceError(
                "InstanceRefreshInProgress",
                f"An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
            )
        r = Refresh(
            self.autoscaling_backend,
            group,
            self._get_param("Preferences") or {},
            self._get_param("Strategy"),
            self._get_param("DesiredConfiguration"),
        )
        _refreshes.setdefault(_key(self, name), []).append(r)
        r.advance()
        return ActionResult({"InstanceRefreshId": r.id})


def describe_instance_refreshes(self):
    name = self._get_param("AutoScalingGroupName")
    ids = self._get_param("InstanceRefreshIds") or []
    with state.LOCK:
        _group(self, name)
        rs = list(reversed(_refreshes.get(_key(self, name), [])))
        if ids:
            rs = [r for r in rs if r.id in ids]
        return ActionResult({"InstanceRefreshes": [r.describe() for r in rs]})


def cancel_instance_refresh(self):
    name = self._get_param("AutoScalingGroupName")
    with state.LOCK:
        _group(self, name)
        active = [r for r in _refreshes.get(_key(self, name), []) if r.ended is None]
        if not active:
            raise SimServiceError(
                "ActiveInstanceRefreshNotFound", f"No in progress or pending Instance Refresh found for Auto Scaling group {name}"
            )
        active[0].cancel_requested = True
        return ActionResult({"InstanceRefreshId": active[0].id})


def _lifecycle_action(self):
    """The in-flight launch lifecycle action a request names, by instance id or token."""
    group = _group(self, self._get_param("AutoScalingGroupName"))
    hook = self._get_param("LifecycleHookName")
    instance_id = self._get_param("InstanceId")
    token = self._get_param("LifecycleActionToken")
    if not instance_id and not token:
        raise SimServiceError("ValidationError", "Either InstanceId or LifecycleActionToken is required.")
    for ln in list(_launches.values()):
        if ln.group is not group or hook not in ln.actions or ln.st.lifecycle_state != "Pending:Wait":
            continue
        action = ln.actions[hook]
        if action[2] is None and (ln.st.instance.id == instance_id or (token and action[3] == token)):
            return ln, action
    raise SimServiceError("ValidationError", f"No active Lifecycle Action found with instance ID {instance_id or token}")


def complete_lifecycle_action(self):
    result = self._get_param("LifecycleActionResult")
    if result not in ("CONTINUE", "ABANDON"):
        raise SimServiceError("ValidationError", "LifecycleActionResult must be CONTINUE or ABANDON.")
    with state.LOCK:
        ln, action = _lifecycle_action(self)
        action[0], action[2] = now(), result  # completed now
        ln.advance(now())
        return EmptyResult()


def record_lifecycle_action_heartbeat(self):
    with state.LOCK:
        _, action = _lifecycle_action(self)
        action[0] = now() + action[1]
        return EmptyResult()


def terminate_instance(self, instance_id, should_decrement):
    with state.LOCK:
        found = [
            (g, s)
            for g in self.autoscaling_groups.values()
            for s in g.instance_states
            if s.instance.id == instance_id
        ]
        if not found:
            raise SimServiceError("ValidationError", f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
        group, old = found[0]
        if old.lifecycle_state == "Terminating":
            raise SimServiceError("ScalingActivityInProgress", f"Instance {instance_id} is already terminating.")
        original = group.desired_capacity
        old.lifecycle_state = "Terminating"
        new = []
        if should_decrement:
            if (group.desired_capacity or 0) - 1 < (group.min_size or 0):
                raise SimServiceError(
                    "ValidationError",
                    f"Currently, desiredSize equals minSize ({group.min_size}). Terminating instance without "
                    "replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity "
                    "flag to false or lower group's min size.",
                )
            group.desired_capacity = (group.desired_capacity or 0) - 1
        else:
            new = _launch(group, 1)
        _replacements.append(Replacement(self, group, old, new))
        return asg_models.TerminateInstanceActivity(old.instance, original)


def install():
    R = asg_responses.AutoScalingResponse
    R.start_instance_refresh = start_instance_refresh
    R.describe_instance_refreshes = describe_instance_refreshes
    R.cancel_instance_refresh = cancel_instance_refresh
    R.complete_lifecycle_action = complete_lifecycle_action
    R.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat
    asg_models.AutoScalingBackend.terminate_instance = terminate_instance
