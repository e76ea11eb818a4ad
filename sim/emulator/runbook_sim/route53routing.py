"""Route 53 health checks of routing controls, record sets with routing policies, and
what a name resolves to (the data plane), without any Route 53 API call.

moto 5.2.5:
- CreateHealthCheck ignores RoutingControlArn (the RECOVERY_CONTROL type's one
  field) and CallerReference (every call makes a new health check);
  GetHealthCheckStatus always answers one made-up "Success" observation.
- ChangeResourceRecordSets accepts any mix of records at a name: a simple record
  beside failover records of the same type, two PRIMARY records, a CNAME beside
  other types, a HealthCheckId that does not exist; a DELETE with a SetIdentifier
  deletes every record of the zone with that identifier, whatever its name and type.
- Nothing answers what a name resolves to; TestDNSAnswer has no route.

Here:
- RECOVERY_CONTROL health checks need a RoutingControlArn of an existing routing
  control (InvalidInput otherwise) and keep it; HealthCheckConfig shows it (and not
  the fields of endpoint checks). CreateHealthCheck with a CallerReference already
  used returns that health check if the configuration is the same, and
  HealthCheckAlreadyExists (409) if not (Route 53 API Reference, CreateHealthCheck).
- A health check's health: a RECOVERY_CONTROL check is healthy while its routing
  control is On (ARC Developer Guide, "Routing control health checks"; read at the
  moment of the query, so a flip shows at once: AWS takes seconds); Inverted negates;
  a Disabled check is healthy (Route 53 API Reference, HealthCheckConfig.Disabled).
  Endpoint, calculated and CloudWatch checks are not probed: they count as healthy.
  GetHealthCheckStatus answers one observation per Route 53 health-checker region
  with "Success: ..." or "Failure: ..." accordingly (the text is the emulator's).
- ChangeResourceRecordSets refuses, as Route 53 does, a batch whose result has at one
  name and type a record without SetIdentifier beside any other record, records of
  different routing policies, two PRIMARY or two SECONDARY failover records, a
  failover record without SetIdentifier, a CNAME beside other types (InvalidChangeBatch),
  or a HealthCheckId that does not exist (NoSuchHealthCheck). DELETE with a
  SetIdentifier deletes that record only.
- resolve(): the answer at a name and type, with the failover rules of the Route 53
  API Reference (ResourceRecordSet, Failover): the primary while it is healthy; the
  secondary when the primary is unhealthy and the secondary healthy (or has no health
  check); the primary when the secondary is unhealthy. A record without a health
  check is healthy; an alias with EvaluateTargetHealth to a record of the same zone
  is healthy if that name resolves to a healthy record; to anything else (a load
  balancer) it is not probed and counts as healthy. An alias to a record of the same
  zone is followed; an alias to anything else is answered as its DNS name. A CNAME
  at the name answers any type. Served as TestDNSAnswer (a Route 53 API call, so
  black-holed with us-east-1 by the fault proxy; RecordData holds the alias target's
  DNS name where AWS would give the load balancer's addresses) and as
  POST /_sim/route53/answer (the data plane: never faulted), for a DNS server that
  serves the emulator's zones.
"""

import copy

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.route53 import models as r53_models
from moto.route53 import responses as r53_responses
from moto.route53 import urls as r53_urls
from moto.route53.models import route53_backends

from . import arc, state
from .errors import SimServiceError
from .timing import now

# Route 53's health-checker regions (HealthCheckRegion in the API model).
CHECKER_REGIONS = ["us-east-1", "us-west-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"]

POLICY_FIELDS = ["Failover", "Weight", "Region", "GeoLocation", "MultiValueAnswer", "GeoProximityLocation", "CidrRoutingConfig"]


def _backend(account):
    return route53_backends[account]["aws"]


def _norm(name):
    return (name or "").rstrip(".").lower()


# ---- health checks --------------------------------------------------------------

_orig_create_hc = r53_responses.Route53.create_health_check
_orig_hc_config = r53_models.HealthCheck.health_check_config


def create_health_check(self):
    ref = self._get_param("CallerReference")
    config = self._get_param("HealthCheckConfig") or {}
    rc_arn = config.get("RoutingControlArn")
    if config.get("Type") == "RECOVERY_CONTROL":
        if not rc_arn:
            raise SimServiceError("InvalidInput", "A health check of type RECOVERY_CONTROL needs a RoutingControlArn.")
        with state.LOCK:
            if not arc.routing_control_exists(rc_arn):
                raise SimServiceError("InvalidInput", f"The routing control {rc_arn} does not exist.")
    elif rc_arn:
        raise SimServiceError("InvalidInput", "RoutingControlArn is only for health checks of type RECOVERY_CONTROL.")
    with state.LOCK:
        for hc in self.backend.health_checks.values():
            if hc.caller_reference == ref:
                same = hc.type_ == config.get("Type") and getattr(hc, "routing_control_arn", None) == rc_arn and (
                    rc_arn is not None or (hc.ip_address, hc.fqdn, hc.resource_path) == (config.get("IPAddress"), config.get("FullyQualifiedDomainName"), config.get("ResourcePath"))
                )
                if not same:
                    raise SimServiceError("HealthCheckAlreadyExists",
                                          f"A health check with caller reference {ref} already exists with another configuration.")
                return ActionResult({"HealthCheck": hc})
        result = _orig_create_hc(self)
        result.result["HealthCheck"].routing_control_arn = rc_arn
        return result


def _health_check_config(self):
    cfg = _orig_hc_config.fget(self)
    if self.type_ == "RECOVERY_CONTROL":
        cfg = {k: v for k, v in cfg.items() if k in ("Type", "Inverted", "Disabled")}
        cfg["RoutingControlArn"] = getattr(self, "routing_control_arn", None)
    return cfg


def healthy(account, hc_id):
    hc = _backend(account).health_checks.get(hc_id)
    if hc is None:
        return False
    if hc.disabled:
        return True
    ok = True
    if hc.type_ == "RECOVERY_CONTROL":
        rc = arc.routing_control(getattr(hc, "routing_control_arn", None))
        ok = rc is not None and rc.state == "On"
    return not ok if hc.inverted else ok


def health_checks_for(rc_arn):
    out = []
    for account in list(route53_backends.keys()):
        for hc in _backend(account).health_checks.values():
            if getattr(hc, "routing_control_arn", None) == rc_arn:
                out.append(hc.id)
    return out


def get_health_check_status(self):
    hc_id = self._get_param("HealthCheckId")
    with state.LOCK:
        hc = self.backend.get_health_check(hc_id)
        ok = healthy(self.current_account, hc_id)
        if hc.type_ == "RECOVERY_CONTROL":
            arn = getattr(hc, "routing_control_arn", "")
            rc = arc.routing_control(arn)
            what = f"routing control {arn} is {rc.state if rc else 'not found'}"
        else:
            what = "not probed by the emulator"
        status = ("Success: " if ok else "Failure: ") + what
        import datetime

        t = datetime.datetime.fromtimestamp(now(), datetime.timezone.utc)
        obs = [{"Region": r, "IPAddress": "127.0.0.1", "StatusReport": {"Status": status, "CheckedTime": t}} for r in CHECKER_REGIONS]
        return ActionResult({"HealthCheckObservations": obs})


# ---- record sets ----------------------------------------------------------------


def _key(rr):
    return (_norm(rr.get("Name")), rr.get("Type"), rr.get("SetIdentifier"))


def _as_dict(rs):
    d = {"Name": rs.name, "Type": rs.type, "SetIdentifier": rs.set_identifier, "HealthCheckId": rs.health_check_id,
         "Failover": rs.failover, "Weight": rs.weight, "Region": rs.region, "GeoLocation": rs.geo_location,
         "MultiValueAnswer": rs.multi_value_answer, "AliasTarget": rs.alias_target, "TTL": rs.ttl, "ResourceRecords": rs.records}
    return {k: v for k, v in d.items() if v is not None}


def _validate_batch(backend, zone, changes):
    result = {_key(d): d for d in (_as_dict(rs) for rs in zone.rrsets)}
    for ch in changes:
        rr = ch.get("ResourceRecordSet") or {}
        k = _key(rr)
        if ch.get("Action") == "DELETE":
            result.pop(k, None)
        else:
            result[k] = rr
    by_name_type, by_name = {}, {}
    for (name, typ, sid), rr in result.items():
        by_name_type.setdefault((name, typ), []).append(rr)
        by_name.setdefault(name, set()).add(typ)
    problems = []
    for ch in changes:
        rr = ch.get("ResourceRecordSet") or {}
        if ch.get("Action") == "DELETE":
            continue
        if rr.get("Failover") and not rr.get("SetIdentifier"):
            raise SimServiceError("InvalidInput", f"Invalid request: a failover record {rr.get('Name')} {rr.get('Type')} needs a SetIdentifier.")
        hc = rr.get("HealthCheckId")
        if hc and hc not in backend.health_checks:
            raise SimServiceError("NoSuchHealthCheck", f"A health check with id {hc} does not exist.")
    for (name, typ), rrs in by_name_type.items():
        plain = [r for r in rrs if not r.get("SetIdentifier")]
        if plain and len(rrs) > 1:
            problems.append(f"RRSet with DNS name {name}., type {typ} cannot be created because a record with the same name and type but a different routing policy (or none) exists.")
            continue
        kinds = {tuple(f for f in POLICY_FIELDS if r.get(f) is not None) for r in rrs if r.get("SetIdentifier")}
        if len(kinds) > 1:
            problems.append(f"RRSet with DNS name {name}., type {typ}: all records of a name and type must have the same routing policy.")
        failovers = [r.get("Failover") for r in rrs if r.get("Failover")]
        for f in ("PRIMARY", "SECONDARY"):
            if failovers.count(f) > 1:
                problems.append(f"RRSet with DNS name {name}., type {typ}: more than one {f} failover record.")
    for name, types in by_name.items():
        if "CNAME" in types and len(types) > 1:
            problems.append(f"RRSet of type CNAME with DNS name {name}. is not permitted as it conflicts with other records with the same DNS name in zone {zone.name}")
    if problems:
        raise SimServiceError("InvalidChangeBatch", "[" + ", ".join(problems) + "]")


_orig_backend_change = r53_models.Route53Backend.change_resource_record_sets


def backend_change_resource_record_sets(self, zoneid, change_list):
    zone = self.get_hosted_zone(zoneid)
    with state.LOCK:
        _validate_batch(self, zone, copy.deepcopy(change_list))
        # moto deletes by SetIdentifier alone; queue the exact (name, type, id).
        zone._sim_deletes = [
            _key(c["ResourceRecordSet"]) for c in change_list if c.get("Action") == "DELETE" and c["ResourceRecordSet"].get("SetIdentifier")
        ]
        try:
            return _orig_backend_change(self, zoneid, change_list)
        finally:
            zone._sim_deletes = []


def delete_rrset_by_id(self, set_identifier):
    queue = getattr(self, "_sim_deletes", [])
    for i, (name, typ, sid) in enumerate(queue):
        if sid == set_identifier:
            del queue[i]
            self.rrsets = [rs for rs in self.rrsets if not (_norm(rs.name) == name and rs.type == typ and rs.set_identifier == sid)]
            return
    self.rrsets = [rs for rs in self.rrsets if rs.set_identifier != set_identifier]


# ---- resolution -----------------------------------------------------------------


def _zone_for(backend, name, zone_id=None):
    if zone_id:
        return backend.get_hosted_zone(zone_id)
    best = None
    for z in backend.zones.values():
        zn = _norm(z.name)
        if (_norm(name) == zn or _norm(name).endswith("." + zn)) and not z.private_zone:
            if best is None or len(zn) > len(_norm(best.name)):
                best = z
    return best


def _record_healthy(account, backend, zone, rr, depth):
    if rr.get("HealthCheckId") and not healthy(account, rr["HealthCheckId"]):
        return False
    alias = rr.get("AliasTarget")
    if alias and alias.get("EvaluateTargetHealth") and alias.get("HostedZoneId", "").replace("/hostedzone/", "") == zone.resource_id:
        sub = resolve(account, _norm(alias.get("DNSName")), rr.get("Type"), zone.resource_id, depth + 1)
        return bool(sub.get("records") or sub.get("alias")) and sub.get("healthy", True)
    return True


def resolve(account, name, rtype, zone_id=None, depth=0):
    """What Route 53's name servers answer for name/rtype: a dict with response_code,
    records (values), alias (a target outside the zone), ttl, and the record chosen."""
    backend = _backend(account)
    zone = _zone_for(backend, name, zone_id)
    out = {"name": _norm(name) + ".", "type": rtype, "records": [], "alias": None, "ttl": None, "response_code": "NXDOMAIN"}
    if zone is None:
        out["response_code"] = "REFUSED"
        return out
    out["zone_id"] = zone.resource_id
    if depth > 8:
        out["response_code"] = "SERVFAIL"
        return out
    at_name = [_as_dict(rs) for rs in zone.rrsets if _norm(rs.name) == _norm(name)]
    if not at_name:
        return out
    out["response_code"] = "NOERROR"
    typ = rtype
    rrs = [r for r in at_name if r["Type"] == rtype]
    if not rrs and rtype != "CNAME":
        rrs = [r for r in at_name if r["Type"] == "CNAME"]
        typ = "CNAME"
    if not rrs:
        return out
    chosen, healthy_ = None, True
    if len(rrs) == 1 and not rrs[0].get("SetIdentifier"):
        chosen = rrs[0]
    elif all(r.get("Failover") for r in rrs):
        primary = next((r for r in rrs if r["Failover"] == "PRIMARY"), None)
        secondary = next((r for r in rrs if r["Failover"] == "SECONDARY"), None)
        p_ok = primary is not None and _record_healthy(account, backend, zone, primary, depth)
        s_ok = secondary is not None and _record_healthy(account, backend, zone, secondary, depth)
        if primary is not None and (p_ok or not s_ok):
            chosen, healthy_ = primary, p_ok
        else:
            chosen, healthy_ = secondary, s_ok
        out["failover"] = chosen.get("Failover")
        out["primary_healthy"], out["secondary_healthy"] = p_ok, s_ok
    else:
        live = [r for r in rrs if _record_healthy(account, backend, zone, r, depth)] or rrs
        out["records"] = sorted({v for r in live for v in r.get("ResourceRecords") or []})
        out["policy"] = "other routing policy: every healthy record's values"
        out["type"] = typ
        return out
    out["type"] = typ
    out["set_identifier"] = chosen.get("SetIdentifier")
    out["healthy"] = healthy_
    if chosen.get("HealthCheckId"):
        out["health_check_id"] = chosen["HealthCheckId"]
    alias = chosen.get("AliasTarget")
    if alias:
        target = _norm(alias.get("DNSName"))
        if alias.get("HostedZoneId", "").replace("/hostedzone/", "") == zone.resource_id:
            sub = resolve(account, target, rtype, zone.resource_id, depth + 1)
            out["records"], out["alias"], out["ttl"] = sub["records"], sub["alias"], sub["ttl"]
        else:
            out["alias"] = {"dns_name": target + ".", "hosted_zone_id": alias.get("HostedZoneId"), "evaluate_target_health": bool(alias.get("EvaluateTargetHealth"))}
        return out
    out["records"] = list(chosen.get("ResourceRecords") or [])
    out["ttl"] = chosen.get("TTL")
    return out


def test_dns_answer(self):
    zone_id = self._get_param("hostedzoneid") or self._get_param("HostedZoneId")
    name = self._get_param("recordname") or self._get_param("RecordName")
    rtype = self._get_param("recordtype") or self._get_param("RecordType")
    with state.LOCK:
        self.backend.get_hosted_zone(zone_id)
        ans = resolve(self.current_account, name, rtype, zone_id)
    data = list(ans["records"])
    if not data and ans.get("alias"):
        data = [ans["alias"]["dns_name"]]
    return ActionResult({"Nameserver": "ns-2048.awsdns-64.com", "RecordName": name, "RecordType": ans["type"], "RecordData": data,
                         "ResponseCode": ans["response_code"], "Protocol": "UDP"})


@state.route("POST", "route53/answer")
def _sim_answer(doc):
    name, rtype = doc.get("name"), doc.get("type", "A")
    if not isinstance(name, str) or not name:
        raise ValueError("name is required")
    account = doc.get("account") or DEFAULT_ACCOUNT_ID
    with state.LOCK:
        return resolve(account, name, rtype, doc.get("zone_id") or None)


def install():
    r53_responses.Route53.create_health_check = create_health_check
    r53_responses.Route53.get_health_check_status = get_health_check_status
    r53_responses.Route53.test_dns_answer = test_dns_answer
    r53_models.HealthCheck.health_check_config = property(_health_check_config)
    r53_models.Route53Backend.change_resource_record_sets = backend_change_resource_record_sets
    r53_models.FakeZone.delete_rrset_by_id = delete_rrset_by_id
    r53_urls.url_paths[r"{0}/(?P<api_version>[\d_-]+)/testdnsanswer$"] = r53_responses.Route53.dispatch
