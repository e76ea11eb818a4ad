"""ECS services that take time to become stable.

moto 5.2.5 sets runningCount to desiredCount the instant UpdateService is called, and
never touches the deployment it made at CreateService (its desiredCount and counts
stay at their creation values). A "wait until services stable" then never waits, and
the aws-sdk-go-v2 services-stable waiter (one deployment, runningCount ==
desiredCount) can pass against a stale deployment.

Here every change of desired count (CreateService, UpdateService) starts a transition
of the timing model's ecs_stabilize seconds: runningCount moves from its current
value to the new desired count one task at a time, evenly over the period;
pendingCount is the tasks still starting; the PRIMARY deployment's counts follow,
with rolloutState IN_PROGRESS until the count is reached, then COMPLETED, and a
"has reached a steady state" service event. A new task definition or
forceNewDeployment starts a new PRIMARY deployment while the previous one stays
ACTIVE, draining, until the period ends, so a waiter sees two deployments meanwhile.

Simplification: real ECS keeps a scale-only change inside the existing deployment and
does not necessarily move its rolloutState back to IN_PROGRESS; runbooks should wait
on counts and deployments (as the SDK waiter does), not on rolloutState alone.
"""

import datetime

from moto.ecs import models as ecs_models
from moto.moto_api._internal import mock_random

from . import state
from .timing import Transition, now

# id(service) -> service with a transition in flight
_active = {}


class Rollout:
    """One change of a service's desired count, possibly with a new deployment."""

    def __init__(self, svc, from_count, to_count, new_deployment):
        self.from_count = from_count
        self.to_count = to_count
        self.transition = Transition("ecs_stabilize")
        self.old = None
        if new_deployment or svc._sim_deployment is None:
            if svc._sim_deployment is not None:
                self.old = dict(svc._sim_deployment)
                self.old["status"] = "ACTIVE"
                self.old_from = from_count
                self.from_count = 0
            svc._sim_deployment = _new_deployment(svc)
        svc._sim_deployment["updatedAt"] = _utc(now())

    def running(self):
        p = self.transition.progress()
        if p >= 1:
            return self.to_count
        # Tasks become healthy one after another; int() rounds toward from_count.
        return self.from_count + int((self.to_count - self.from_count) * p)

    def old_running(self):
        p = self.transition.progress()
        return self.old_from - int(self.old_from * p)


def _utc(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)


def _new_deployment(svc):
    dep_id = f"ecs-svc/{mock_random.randint(0, 32**12)}"
    t = _utc(now())
    return {
        "id": dep_id,
        "status": "PRIMARY",
        "taskDefinition": svc.task_definition,
        "launchType": svc.launch_type,
        "platformVersion": svc.platform_version,
        "platformFamily": "EC2" if svc.launch_type == "EC2" else "FARGATE",
        "networkConfiguration": getattr(svc, "network_configuration", None) or None,
        "failedTasks": 0,
        "createdAt": t,
        "updatedAt": t,
    }


def _running(self):
    r = getattr(self, "_sim_rollout", None)
    if r is None:
        return getattr(self, "_sim_running", 0)
    return r.running()


def _set_running(self, value):
    # moto assigns counts directly (at creation, and desired on update); the
    # simulation owns them, so keep the value only as the base when idle.
    if getattr(self, "_sim_rollout", None) is None and not getattr(self, "_sim_init", False):
        self._sim_running = int(value or 0)


def _pending(self):
    return max(0, int(self.desired_count or 0) - _running(self))


def _set_pending(self, value):
    pass


def _deployments(self):
    if self.deployment_controller.get("type", "ECS") != "ECS":
        return getattr(self, "_sim_other_deployments", [])
    dep = getattr(self, "_sim_deployment", None)
    if dep is None:
        return []
    r = getattr(self, "_sim_rollout", None)
    running = _running(self)
    primary = dict(dep)
    primary.update(
        desiredCount=self.desired_count,
        runningCount=running,
        pendingCount=_pending(self),
        rolloutState="IN_PROGRESS" if r is not None and running != self.desired_count else "COMPLETED",
    )
    if r is not None and running != self.desired_count:
        primary["rolloutStateReason"] = f"ECS deployment {dep['id']} in progress."
    else:
        primary["rolloutStateReason"] = f"ECS deployment {dep['id']} completed."
    out = [primary]
    if r is not None and r.old is not None and not r.transition.done():
        old = dict(r.old)
        old_running = r.old_running()
        old.update(desiredCount=0, runningCount=old_running, pendingCount=0)
        old.pop("rolloutState", None)
        old.pop("rolloutStateReason", None)
        out.append(old)
    return out


def _set_deployments(self, value):
    if self.deployment_controller.get("type", "ECS") != "ECS":
        self._sim_other_deployments = value


def _start(svc, from_count, new_deployment):
    svc._sim_rollout = Rollout(svc, from_count, int(svc.desired_count or 0), new_deployment)
    _active[id(svc)] = svc


def _event(svc, message):
    svc.events.insert(
        0,
        {"id": str(mock_random.uuid4()), "createdAt": _utc(now()), "message": f"(service {svc.name}) {message}"},
    )


@state.ticker
def _finish_due():
    for key, svc in list(_active.items()):
        r = svc._sim_rollout
        if not r.transition.done():
            continue
        del _active[key]
        svc._sim_rollout = None
        svc._sim_running = r.to_count
        svc._sim_deployment["updatedAt"] = _utc(r.transition.ends)
        _event(svc, "has reached a steady state.")


@state.on_reset
def _reset():
    _active.clear()


_orig_create = ecs_models.EC2ContainerServiceBackend.create_service
_orig_update = ecs_models.EC2ContainerServiceBackend.update_service


def create_service(self, *args, **kwargs):
    with state.LOCK:
        svc = _orig_create(self, *args, **kwargs)
        if svc.deployment_controller.get("type", "ECS") == "ECS":
            svc._sim_deployment = None
            _start(svc, 0, True)
            if svc.desired_count:
                _event(svc, f"has started {svc.desired_count} tasks.")
        return svc


def update_service(self, service_properties):
    with state.LOCK:
        cluster = service_properties.get("cluster", "default")
        name = (service_properties.get("service") or "").split("/")[-1]
        svc = self._get_service(cluster, name)
        before_running = _running(svc)
        before_desired = svc.desired_count
        before_td = svc.task_definition
        force = bool(service_properties.get("force_new_deployment"))
        # Freeze the counts while moto assigns them.
        svc._sim_init = True
        try:
            svc = _orig_update(self, service_properties)
        finally:
            svc._sim_init = False
        if svc.deployment_controller.get("type", "ECS") != "ECS":
            return svc
        new_deployment = force or svc.task_definition != before_td
        if new_deployment or svc.desired_count != before_desired:
            _start(svc, before_running, new_deployment)
            delta = int(svc.desired_count or 0) - before_running
            if delta > 0:
                _event(svc, f"has started {delta} tasks.")
            elif delta < 0:
                _event(svc, f"has stopped {-delta} running tasks.")
        return svc


def install():
    S = ecs_models.Service
    S.running_count = property(_running, _set_running)
    S.pending_count = property(_pending, _set_pending)
    S.deployments = property(_deployments, _set_deployments)
    ecs_models.EC2ContainerServiceBackend.create_service = create_service
    ecs_models.EC2ContainerServiceBackend.update_service = update_service
