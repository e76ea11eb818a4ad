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

Services behind a load balancer (loadBalancers with a targetGroupArn): ECS registers
each task with the target group when it starts running and deregisters it when it
stops (ECS Developer Guide, "Use load balancing to distribute Amazon ECS service
traffic"). Here every running task has an id and a private IP address (the target of
an `ip` target group, as awsvpc tasks are), started and stopped at the moments the
rollout above gives it, with "registered N targets" / "deregistered N targets"
service events; elbv2.py reports those targets' health. CreateService refuses, as
ECS does, a target group that does not exist or has no load balancer, and an
`instance` target group for an awsvpc task definition.
"""

import datetime

from moto.ecs import models as ecs_models
from moto.moto_api._internal import mock_random

from . import state
from .errors import SimServiceError
from .timing import TIMING, Transition, now

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

    def at(self, j, n):
        """When the j-th of n evenly spread task starts (or stops) happens."""
        t = self.transition
        return min(now(), t.started + (t.duration * j / n if n else 0.0))


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


# ---- tasks, and their targets behind load balancers ----

# id(service) -> service with a target group
_lb_services = {}
_task_seq = [0]


class Task:
    """A running (or stopped) task of a service behind a load balancer."""

    __slots__ = ("id", "ip", "deployment", "started", "healthy_after", "stopped", "drain")

    def __init__(self, deployment, started):
        _task_seq[0] += 1
        n = _task_seq[0]
        self.id = mock_random.get_random_hex(32)
        self.ip = f"10.{(n >> 16) % 256}.{(n >> 8) % 256}.{n % 256}"
        self.deployment = deployment
        self.started = started
        self.healthy_after = TIMING.get("elb_target_healthy")
        self.stopped = None
        self.drain = None

    def stop(self, when):
        self.stopped = when
        self.drain = TIMING.get("elb_deregistration")


def target_groups(svc):
    return [lb["targetGroupArn"] for lb in (svc.load_balancers or []) if lb.get("targetGroupArn")]


def lb_services():
    return list(_lb_services.values())


def _sync_tasks(svc):
    """Bring svc's tasks up to its counts, each start or stop dated when the rollout made it."""
    tasks = svc._sim_tasks
    r = getattr(svc, "_sim_rollout", None)
    dep = (svc._sim_deployment or {}).get("id")
    if r is None:
        want = {dep: getattr(svc, "_sim_running", 0)}
    else:
        want = {dep: r.running()}
        if r.old is not None:
            want[r.old["id"]] = 0 if r.transition.done() else r.old_running()
    started = stopped = 0
    for x in tasks:
        if x.stopped is None and x.deployment not in want:
            x.stop(now())
            stopped += 1
    for d, n in want.items():
        live = [x for x in tasks if x.deployment == d and x.stopped is None]
        while len(live) < n:
            when = now()
            if r is not None and d == dep and r.to_count > r.from_count:
                when = r.at(len(live) + 1 - r.from_count, r.to_count - r.from_count)
            x = Task(d, when)
            tasks.append(x)
            live.append(x)
            started += 1
        while len(live) > n:
            when = now()
            if r is not None and d == dep and r.from_count > r.to_count:
                when = r.at(r.from_count - len(live) + 1, r.from_count - r.to_count)
            elif r is not None and r.old is not None and d == r.old["id"] and r.old_from:
                when = r.at(r.old_from - len(live) + 1, r.old_from)
            live.pop().stop(when)
            stopped += 1
    # Forget targets that finished draining long ago.
    horizon = now() - 3600
    svc._sim_tasks = [x for x in tasks if x.stopped is None or x.stopped >= horizon]
    for arn in target_groups(svc):
        if started:
            _event(svc, f"registered {started} targets in (target-group {arn})")
        if stopped:
            _event(svc, f"deregistered {stopped} targets in (target-group {arn})")


@state.ticker
def _sync_all_tasks():
    for svc in list(_lb_services.values()):
        _sync_tasks(svc)


def _check_load_balancers(backend, load_balancers, task_definition):
    """ECS's own checks of a service's target groups, before anything is created."""
    from moto.elbv2.models import elbv2_backends

    elb = elbv2_backends[backend.account_id][backend.region_name]
    for lb in load_balancers or []:
        arn = lb.get("targetGroupArn")
        if not arn:
            continue
        tg = elb.target_groups.get(arn)
        if tg is None:
            raise SimServiceError("InvalidParameterException", f"The target group with targetGroupArn {arn} does not exist.")
        if not tg.load_balancer_arns:
            raise SimServiceError(
                "InvalidParameterException", f"The target group with targetGroupArn {arn} does not have an associated load balancer."
            )
        mode = getattr(task_definition, "network_mode", None)
        if mode == "awsvpc" and tg.target_type == "instance":
            raise SimServiceError(
                "InvalidParameterException",
                f"The provided target group {arn} has target type instance, which is incompatible with the awsvpc network mode specified in the task definition.",
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
    _lb_services.clear()


_orig_create = ecs_models.EC2ContainerServiceBackend.create_service
_orig_update = ecs_models.EC2ContainerServiceBackend.update_service


def create_service(self, *args, **kwargs):
    with state.LOCK:
        lbs = kwargs.get("load_balancers", args[4] if len(args) > 4 else None)
        td_name = kwargs.get("task_definition_str", args[3] if len(args) > 3 else None)
        if lbs:
            td = self.describe_task_definition(td_name) if td_name else None
            _check_load_balancers(self, lbs, td)
        svc = _orig_create(self, *args, **kwargs)
        if svc.deployment_controller.get("type", "ECS") == "ECS":
            svc._sim_deployment = None
            _start(svc, 0, True)
            if svc.desired_count:
                _event(svc, f"has started {svc.desired_count} tasks.")
            if target_groups(svc):
                svc._sim_tasks = []
                _lb_services[id(svc)] = svc
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
