"""Load balancers as Route 53 and ECS see them: per-region canonical hosted zones, and
target health that lags behind running tasks.

moto 5.2.5 gives every load balancer the same made-up CanonicalHostedZoneId
(Z2P70J7EXAMPLE), so a Route 53 alias that names one region's load balancer with
another region's zone id passes unnoticed; and DescribeTargetHealth reports every
registered target `healthy` the instant it is registered, even in a target group no
load balancer uses. Here:

- CreateLoadBalancer answers the hosted zone id AWS publishes for the load balancer's
  type and region (AWS General Reference, "Elastic Load Balancing endpoints and
  quotas": one column for Application and Classic Load Balancers, one for Network
  Load Balancers). route53.py refuses an alias whose HostedZoneId is not the one of
  the load balancer its DNS name belongs to, as Route 53 does.
- DescribeTargetHealth of a target group includes the tasks of the ECS services that
  use it (ecs.py registers a running task's IP address, as ECS does for awsvpc tasks)
  and reports each target as an Application Load Balancer does (Elastic Load
  Balancing User Guide for Application Load Balancers, "Health checks for your target
  groups", target health states and reason codes): `initial`
  (Elb.RegistrationInProgress) for the timing model's `elb_target_healthy` seconds
  after the task started (AWS: HealthCheckIntervalSeconds x HealthyThresholdCount,
  30 s x 5 by default), then `healthy`; `draining` (Target.DeregistrationInProgress)
  for `elb_deregistration` seconds after it stopped (the deregistration delay, 300 s
  by default), then gone. Targets registered by hand (RegisterTargets) go through
  `initial` the same way. In a target group that no load balancer uses, every target
  is `unused` (Target.NotInUse).
- `POST /_sim/elb/target-health {"target_group": arn or name, "unhealthy": n,
  "reason", "description"}` makes the first n targets past `initial` fail their
  health checks (`unhealthy`, by default Target.ResponseCodeMismatch, "Health checks
  failed with these codes: [503]"), an application that runs but does not serve;
  `unhealthy: 0` heals them.

Not modelled: health check requests themselves, the unhealthy threshold, slow start,
Lambda and ALB targets, cross-zone details.
"""

import re

from moto.elbv2 import models as elb_models

from . import ecs, state
from .errors import SimServiceError
from .timing import TIMING, now

# Application and Classic Load Balancers' canonical hosted zone ids by region, and
# Network Load Balancers' (AWS General Reference, "Elastic Load Balancing endpoints
# and quotas").
ALB_ZONES = {
    "us-east-1": "Z35SXDOTRQ7X7K",
    "us-east-2": "Z3AADJGX6KTTL2",
    "us-west-1": "Z368ELLRRE2KJ0",
    "us-west-2": "Z1H1FL5HABSF5",
    "ca-central-1": "ZQSVJUPU6J1EY",
    "sa-east-1": "Z2P70J7HTTTPLU",
    "eu-central-1": "Z215JYRZR1TBD5",
    "eu-west-1": "Z32O12XQLNTSW2",
    "eu-west-2": "ZHURV8PSTC4K8",
    "eu-west-3": "Z3Q77PNBQS71R4",
    "eu-north-1": "Z23TAZ6LKFMNIO",
    "eu-south-1": "Z3ULH7SSC9OV64",
    "ap-south-1": "ZP97RAFLXTNZK",
    "ap-northeast-1": "Z14GRHDCWA56QT",
    "ap-northeast-2": "ZWKZPGTI48KDX",
    "ap-northeast-3": "Z5LXEXXYW11ES",
    "ap-southeast-1": "Z1LMS91P8CMLE5",
    "ap-southeast-2": "Z1GM3OXH4ZPM65",
    "me-south-1": "ZS929ML54UICD",
}
NLB_ZONES = {
    "us-east-1": "Z26RNL4JYFTOTI",
    "us-east-2": "ZLMOA37VPKANP",
    "us-west-1": "Z24FKFUX50B4VW",
    "us-west-2": "Z18D5FSROUN65G",
    "eu-west-1": "Z2IFOLAFXWLO4F",
    "eu-west-2": "ZD4D7Y8KGAS4G",
    "eu-west-3": "Z1CMS0P5QUZ6D5",
}

# <name>-<id>.<region>.elb.amazonaws.com (ALB, CLB); <name>-<id>.elb.<region>.amazonaws.com (NLB)
_ALB_NAME = re.compile(r"^(?:dualstack\.)?(?:internal-)?[^.]+\.([a-z]{2}(?:-gov)?-[a-z]+-\d)\.elb\.amazonaws\.com\.?$", re.I)
_NLB_NAME = re.compile(r"^(?:dualstack\.)?[^.]+\.elb\.([a-z]{2}(?:-gov)?-[a-z]+-\d)\.amazonaws\.com\.?$", re.I)


def zone_of(lb_type, region):
    table = NLB_ZONES if lb_type == "network" else ALB_ZONES
    # A region missing from the table still gets an id of its own, never another's.
    return table.get(region) or "Z" + re.sub(r"[^A-Z0-9]", "", region.upper()) + ("N" if lb_type == "network" else "A")


def alias_zone(dns_name):
    """(region, expected hosted zone id) of an Elastic Load Balancing DNS name, or None.

    A load balancer the emulator knows answers its own zone id; otherwise the name's
    form (ALB/CLB or NLB) and region decide."""
    name = dns_name.rstrip(".").lower()
    bare = name[len("dualstack."):] if name.startswith("dualstack.") else name
    for account_backends in elb_models.elbv2_backends.values():
        for region, backend in account_backends.items():
            for lb in backend.load_balancers.values():
                if (lb.dns_name or "").lower() == bare:
                    return region, lb.canonical_hosted_zone_id
    m = _ALB_NAME.match(name)
    if m:
        return m.group(1), zone_of("application", m.group(1))
    m = _NLB_NAME.match(name)
    if m:
        return m.group(1), zone_of("network", m.group(1))
    return None


_orig_create_lb = elb_models.ELBv2Backend.create_load_balancer


def create_load_balancer(self, *args, **kwargs):
    lb = _orig_create_lb(self, *args, **kwargs)
    lb.canonical_hosted_zone_id = zone_of(lb.type, self.region_name)
    return lb


# ---- target health ----

# target group arn -> {"unhealthy": n, "reason": ..., "description": ...}
_faults = {}
# (target group arn, target id) -> registration time, for RegisterTargets
_registered = {}


@state.on_reset
def _reset():
    _faults.clear()
    _registered.clear()


def _status(target_id, port, health_port, st, reason=None, description=None):
    return elb_models.FakeHealthStatus(target_id, port, health_port, st, reason, description)


def _health(tg, entries):
    """entries: [(target id, port, started, healthy_after, stopped, drain)], oldest first."""
    t = now()
    fault = _faults.get(tg.arn) or {}
    bad = fault.get("unhealthy", 0)
    out = []
    for target_id, port, started, healthy_after, stopped, drain in entries:
        hp = tg.health_check_port
        if stopped is not None:
            if t < stopped + drain:
                out.append(_status(target_id, port, hp, "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"))
            continue
        if not tg.load_balancer_arns:
            out.append(_status(target_id, port, hp, "unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"))
        elif t < started + healthy_after:
            out.append(_status(target_id, port, hp, "initial", "Elb.RegistrationInProgress", "Target registration is in progress"))
        elif bad > 0:
            bad -= 1
            out.append(_status(
                target_id, port, hp, "unhealthy", fault.get("reason") or "Target.ResponseCodeMismatch",
                fault.get("description") or "Health checks failed with these codes: [503]",
            ))
        else:
            out.append(_status(target_id, port, hp, "healthy"))
    return out


def _ecs_entries(tg):
    entries = []
    for svc in ecs.lb_services():
        if svc._account_id != tg.account_id or svc.region_name != tg.region_name:
            continue
        for lb in svc.load_balancers or []:
            if lb.get("targetGroupArn") != tg.arn:
                continue
            port = str(lb.get("containerPort") or tg.port)
            for x in svc._sim_tasks:
                if x.started > now():
                    continue
                entries.append((x.ip, port, x.started, x.healthy_after, x.stopped, x.drain or 0.0))
    entries.sort(key=lambda e: e[2])
    return entries


_orig_describe_health = elb_models.ELBv2Backend.describe_target_health
_orig_register = elb_models.FakeTargetGroup.register


def register(self, targets):
    _orig_register(self, targets)
    t = now()
    with state.LOCK:
        for target in targets:
            _registered.setdefault((self.arn, target["Id"]), (t, TIMING.get("elb_target_healthy")))


def describe_target_health(self, target_group_arn, targets):
    with state.LOCK:
        moto_status = _orig_describe_health(self, target_group_arn, targets)
        tg = self.target_groups[target_group_arn]
        manual = []
        for st in moto_status:
            if st.status == "healthy":
                since, delay = _registered.get((tg.arn, st.instance_id), (0.0, 0.0))
                manual.append((st.instance_id, st.port, since, delay, None, 0.0))
        ecs_entries = _ecs_entries(tg)
        wanted = {t["Id"] for t in targets or []}
        if wanted:
            ecs_entries = [e for e in ecs_entries if e[0] in wanted]
        kept = [st for st in moto_status if st.status != "healthy"]
        if wanted:
            # A target asked for by id that ECS runs is not "unregistered".
            ecs_ids = {e[0] for e in ecs_entries}
            kept = [st for st in kept if st.instance_id not in ecs_ids]
        return _health(tg, manual) + kept + _health(tg, ecs_entries)


def _find_target_group(ref):
    found = [
        tg
        for account_backends in elb_models.elbv2_backends.values()
        for backend in account_backends.values()
        for tg in backend.target_groups.values()
        if ref in (tg.arn, tg.name)
    ]
    if not found:
        raise KeyError(f"no target group {ref!r}")
    if len(found) > 1:
        raise ValueError(f"target group name {ref!r} is in several regions or accounts; give its ARN")
    return found[0]


@state.route("POST", "elb/target-health")
def _control_target_health(doc):
    """{"target_group": arn or name, "unhealthy": n, "reason": code, "description": text}"""
    n = doc.get("unhealthy")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError("unhealthy must be a non-negative integer")
    tg = _find_target_group(doc.get("target_group") or "")
    if n == 0:
        _faults.pop(tg.arn, None)
    else:
        _faults[tg.arn] = {"unhealthy": n, "reason": doc.get("reason"), "description": doc.get("description")}
    return {"target_group": tg.arn, "unhealthy": n}


def check_alias(change_list):
    """Route 53's check of alias targets that are load balancers: the alias's
    HostedZoneId must be the load balancer's canonical hosted zone id."""
    for change in change_list or []:
        if change.get("Action") not in ("CREATE", "UPSERT"):
            continue
        rrs = change.get("ResourceRecordSet") or {}
        alias = rrs.get("AliasTarget")
        if not alias:
            continue
        dns = alias.get("DNSName") or ""
        found = alias_zone(dns)
        if found is None:
            continue
        _region, zone = found
        given = (alias.get("HostedZoneId") or "").rsplit("/", 1)[-1]
        if given != zone:
            name = dns if dns.endswith(".") else dns + "."
            raise SimServiceError(
                "InvalidChangeBatch",
                f"[Tried to create an alias that targets {name}, type {rrs.get('Type')} in zone {given}, "
                "but the alias target name does not lie within the target zone]",
            )


def install():
    elb_models.ELBv2Backend.create_load_balancer = create_load_balancer
    elb_models.ELBv2Backend.describe_target_health = describe_target_health
    elb_models.FakeTargetGroup.register = register
