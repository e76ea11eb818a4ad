"""Auto Scaling instance refresh, and instance termination that takes time.

moto 5.2.5 has no instance refresh at all (StartInstanceRefresh,
DescribeInstanceRefreshes and CancelInstanceRefresh answer "not implemented"), and
TerminateInstanceInAutoScalingGroup removes the instance and puts an InService
replacement in its place within the same call, so "terminate and wait until the group
is healthy again" never waits.

Instance refresh (strategy Rolling): the instances in the group when it starts are
replaced in batches of max(1, N * (100 - MinHealthyPercentage) / 100) (default
MinHealthyPercentage 90), over the timing model's asg_instance_refresh seconds for
the whole refresh. Status is Pending for the first tenth, then InProgress; each batch's
old instances go Terminating while their replacements (new instance ids, from the
group's launch template) are Pending, and at the end of the batch the old ones are
terminated in EC2 and leave the group while the new ones go InService.
PercentageComplete and InstancesToUpdate follow. At the end the status is
Successful and every instance is new and InService. A second start while one is
active is InstanceRefreshInProgress; CancelInstanceRefresh stops after the current
batch (Cancelling -> Cancelled). SkipMatching and checkpoints are not modelled:
every instance is replaced.

TerminateInstanceInAutoScalingGroup: the instance is Terminating for the timing
model's asg_instance_warmup seconds, its replacement (unless
ShouldDecrementDesiredCapacity) Pending; then the old one is gone and the new one
InService.
"""

import datetime
import math

from moto.autoscaling import models as asg_models
from moto.autoscaling import responses as asg_responses
from moto.core.responses import ActionResult
from moto.moto_api._internal import mock_random

from . import state
from .errors import SimServiceError
from .timing import TIMING, Transition, now

# (account, region, group) -> [Refresh], newest last
_refreshes = {}
# in-flight single-instance replacements
_replacements = []

PENDING_SHARE = 0.1  # share of a refresh spent Pending before the first batch


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


class Refresh:
    def __init__(self, backend, group, preferences, strategy, desired_configuration):
        self.id = str(mock_random.uuid4())
        self.backend = backend
        self.group = group
        self.preferences = preferences or {}
        self.strategy = strategy or "Rolling"
        self.desired_configuration = desired_configuration
        self.transition = Transition("asg_instance_refresh")
        self.cancel_requested = False
        self.status_reason = None
        self.ended = None

        old = [s for s in group.instance_states if s.lifecycle_state in ("InService", "Pending")]
        self.total = len(old)
        min_healthy = int(self.preferences.get("MinHealthyPercentage", 90) or 0)
        size = max(1, math.floor(self.total * (100 - min_healthy) / 100))
        self.batches = [old[i : i + size] for i in range(0, len(old), size)]
        self.batch_state = ["waiting"] * len(self.batches)
        self.new_states = [[] for _ in self.batches]
        self.replaced = 0

    # times of batch i, as offsets from the start
    def _window(self, i):
        d = self.transition.duration
        first = d * PENDING_SHARE
        per = (d - first) / max(1, len(self.batches))
        return first + i * per, first + (i + 1) * per

    def advance(self):
        """Apply every batch step that is due. Returns True when the refresh is over."""
        if self.ended is not None:
            return True
        elapsed = self.transition.elapsed()
        start = self.transition.started
        for i, batch in enumerate(self.batches):
            b_start, b_end = self._window(i)
            if self.batch_state[i] == "waiting":
                if self.cancel_requested:
                    self._finish("Cancelled", start + elapsed, "Instance refresh was cancelled.")
                    return True
                if elapsed < b_start and self.transition.duration > 0:
                    return False
                live = [s for s in batch if s in self.group.instance_states]
                for s in live:
                    s.lifecycle_state = "Terminating"
                self.new_states[i] = _launch(self.group, len(batch))
                self.batch_state[i] = "replacing"
            if self.batch_state[i] == "replacing":
                if elapsed < b_end and self.transition.duration > 0:
                    return False
                _remove(self.backend, self.group, [s for s in batch if s in self.group.instance_states])
                for s in self.new_states[i]:
                    if s in self.group.instance_states:
                        s.lifecycle_state = "InService"
                self.replaced += len(batch)
                self.batch_state[i] = "done"
        if elapsed >= self.transition.duration:
            self._finish("Successful", self.transition.ends, None)
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
            "Preferences": dict({"MinHealthyPercentage": 90, "InstanceWarmup": 0, "SkipMatching": False}, **self.preferences),
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
        self.backend, self.group, self.old, self.new = backend, group, old, new
        self.transition = Transition("asg_instance_warmup")

    def advance(self):
        if not self.transition.done():
            return False
        _remove(self.backend, self.group, [self.old] if self.old in self.group.instance_states else [])
        for s in self.new:
            if s in self.group.instance_states:
                s.lifecycle_state = "InService"
        return True


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
    asg_models.AutoScalingBackend.terminate_instance = terminate_instance
