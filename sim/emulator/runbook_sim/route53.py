"""Route 53 changes that take time to reach INSYNC.

moto 5.2.5 answers ChangeResourceRecordSets with a fixed change id and status
INSYNC, and GetChange says INSYNC for any id at all. Here each change gets its own
id, is PENDING for the timing model's route53_insync seconds and INSYNC after that;
GetChange of an unknown id is NoSuchChange, as in AWS. The records themselves are
visible in ListResourceRecordSets at once, as in AWS (INSYNC is about propagation to
the name servers, not the API).

What the name servers answer meanwhile is kept too: each change records the record
sets it replaces (their state before the batch), and GET /_sim/route53/pending lists,
per hosted zone, the record sets whose newest change is not INSYNC yet with what the
name servers still answer for them. The simulation's DNS server (sim/dnsserver)
answers those until the change is INSYNC: the strict reading of "INSYNC: the change
has propagated to all Route 53 DNS servers" (Route 53 API reference, ChangeInfo).

An alias to a load balancer must name that load balancer's canonical hosted zone
(each region has its own, see elbv2.py): otherwise the change batch is refused with
InvalidChangeBatch, "Tried to create an alias that targets <name>., type A in zone
<zone>, but the alias target name does not lie within the target zone", as Route 53
does (Route 53 API Reference, AliasTarget: HostedZoneId is the load balancer's, from
"Elastic Load Balancing endpoints and quotas").

Hosted zone ids: moto makes them 22 characters long, so the "/hostedzone/<id>" its
answers carry (as AWS's do) is 34 characters, over the 32 botocore's model allows
for a ResourceId (the contract tests found it). AWS's zone ids are "Z" and up to
19 more letters and digits (Route 53 API Reference, CreateHostedZone examples:
Z1D633PJN98FT9; newer zones have 20 characters), so here they are "Z" + 19.
"""

import datetime
import string

from moto.core.responses import ActionResult
from moto.moto_api._internal import mock_random
from moto.route53 import models as r53_models
from moto.route53 import responses as r53_responses

from . import state
from .errors import SimServiceError
from .timing import Transition

# change id (C...) -> (Transition, submitted datetime, comment)
_changes = {}
# (Transition, zone id, key, record set before the change or None), oldest first;
# key = (name, type, set identifier).
_pending = []


@state.on_reset
def _reset():
    _changes.clear()
    _pending.clear()


def _norm(name):
    return (name or "").rstrip(".").lower().replace("\\052", "*")


def _key(rrset):
    return (_norm(rrset.get("Name")), rrset.get("Type"), rrset.get("SetIdentifier") or "")


def _set_dict(rs):
    """A moto RecordSet as the API shapes it (what the DNS server reads)."""
    d = {"Name": rs.name, "Type": rs.type}
    if rs.ttl is not None:
        d["TTL"] = int(rs.ttl)
    if rs.records:
        d["ResourceRecords"] = [{"Value": v} for v in rs.records]
    for attr, field in (("set_identifier", "SetIdentifier"), ("weight", "Weight"), ("region", "Region"),
                        ("health_check_id", "HealthCheckId"), ("failover", "Failover"),
                        ("alias_target", "AliasTarget"), ("multi_value_answer", "MultiValueAnswer")):
        v = getattr(rs, attr, None)
        if v is not None:
            d[field] = v
    return d


def _before(backend, zone_id, change_list):
    """The record sets a batch is about to replace, by key (None: absent)."""
    zone = backend.zones.get(zone_id)
    if zone is None:
        return {}  # moto refuses the batch (NoSuchHostedZone)
    current = {(_norm(rs.name), rs.type, rs.set_identifier or ""): rs for rs in zone.rrsets}
    out = {}
    for change in change_list or []:
        key = _key(change.get("ResourceRecordSet") or {})
        rs = current.get(key)
        out[key] = _set_dict(rs) if rs is not None else None
    return out


def pending():
    """Record sets whose newest change is not INSYNC, with what the name servers
    still answer: {"zones": {zone id: [{"name", "type", "set_identifier", "before"}]}}."""
    with state.LOCK:
        served = {}
        for t, zone_id, key, before in _pending:
            if t.done():
                continue
            # The oldest change not yet INSYNC decides what is still served.
            served.setdefault((zone_id, key), before)
        _pending[:] = [p for p in _pending if not p[0].done()]
        zones = {}
        for (zone_id, key), before in served.items():
            zones.setdefault(zone_id, []).append(
                {"name": key[0], "type": key[1], "set_identifier": key[2], "before": before}
            )
        return {"zones": zones}


state.route("GET", "route53/pending")(lambda _doc: pending())


def _change_id():
    alphabet = string.ascii_uppercase + string.digits
    return "C" + "".join(mock_random.choice(alphabet) for _ in range(20))


def _info(cid):
    t, submitted, comment = _changes[cid]
    info = {"Id": f"/change/{cid}", "Status": "INSYNC" if t.done() else "PENDING", "SubmittedAt": submitted}
    if comment:
        info["Comment"] = comment
    return info


# Ids moto's own handlers return for hosted zone and VPC association changes,
# which stay INSYNC at once.
_MOTO_FIXED_IDS = {"C1PA6795UKMFR9", "C2682N5HXP0BZ4", "a1b2c3d4"}
_START = datetime.datetime.now(datetime.timezone.utc)

_orig_change = r53_responses.Route53.change_resource_record_sets


def change_resource_record_sets(self):
    from .elbv2 import check_alias

    check_alias(self._get_param("ChangeBatch.Changes"))
    zone_id = (self._get_param("HostedZoneId") or "").rsplit("/", 1)[-1]
    with state.LOCK:
        before = _before(self.backend, zone_id, self._get_param("ChangeBatch.Changes"))
        _orig_change(self)  # validates and applies the batch; raises on errors
        cid = _change_id()
        t = Transition("route53_insync")
        _changes[cid] = (
            t,
            datetime.datetime.now(datetime.timezone.utc),
            self._get_param("ChangeBatch.Comment"),
        )
        for key, rs in before.items():
            _pending.append((t, zone_id, key, rs))
        return ActionResult({"ChangeInfo": _info(cid)})


def get_change(self):
    raw = self._get_param("Id") or ""
    cid = raw.rsplit("/", 1)[-1]
    with state.LOCK:
        if cid in _MOTO_FIXED_IDS:
            return ActionResult({"ChangeInfo": {"Id": f"/change/{cid}", "Status": "INSYNC", "SubmittedAt": _START}})
        if cid not in _changes:
            raise SimServiceError("NoSuchChange", f"A change with the specified change ID does not exist: {raw}")
        return ActionResult({"ChangeInfo": _info(cid)})


_orig_create_zone = r53_models.Route53Backend.create_hosted_zone


def create_hosted_zone(self, *args, **kwargs):
    """moto 5.2.5 stores the new zone's SOA record with the Python repr of its
    value ("{'Value': 'ns-... hostmaster... 1 7200 900 1209600 86400'}"), and
    ListResourceRecordSets returns that; AWS returns the SOA's text (Route 53
    Developer Guide, "NS and SOA records that Amazon Route 53 creates for a
    public hosted zone")."""
    zone = _orig_create_zone(self, *args, **kwargs)
    for rs in zone.rrsets:
        if rs.type == "SOA":
            rs.records = [v["Value"] if isinstance(v, dict) else v for v in rs.records]
    return zone



def _zone_id(self, existing_ids=None, tags=None):
    alphabet = string.ascii_uppercase + string.digits
    while True:
        zid = "Z" + "".join(mock_random.choice(alphabet) for _ in range(19))
        if zid not in (existing_ids or ()):
            return zid


def install():
    r53_models.Route53Backend.create_hosted_zone = create_hosted_zone
    r53_models.HostedZoneIdentifier.generate = _zone_id
    r53_responses.Route53.change_resource_record_sets = change_resource_record_sets
    r53_responses.Route53.get_change = get_change
