"""Route 53 Application Recovery Controller: routing control (configuration API and
the clusters' data plane).

moto 5.2.5 has neither route53-recovery-control-config nor route53-recovery-cluster:
no models, no routes. This module serves both itself, as a WSGI layer in front of
moto, for requests whose SigV4 credential scope names either service. Requests are
parsed against botocore's models of the two services (the same files the SDKs are
generated from) and checked with botocore's parameter validator (required members,
types, lengths, ranges); answers and errors are in each protocol's shape (rest-json
for the configuration API, JSON 1.0 with target prefix ToggleCustomerAPI for the
data plane).

Configuration API (AWS serves it from us-west-2 only; the fault proxy treats it so):
CreateCluster (five ClusterEndpoints, one per region of ENDPOINT_REGIONS, and a
default control panel), CreateControlPanel, CreateRoutingControl (in the default
control panel unless ControlPanelArn), CreateSafetyRule (AssertionRule or
GatingRule), Describe*, List* (MaxResults/NextToken), Delete*,
ListAssociatedRoute53HealthChecks. Every resource is PENDING for the timing model's
arc_deploy seconds, then DEPLOYED; a resource cannot be created in a cluster or
control panel that is not DEPLOYED (ConflictException), nor deleted while it holds
others. ClientToken makes a Create idempotent.

Data plane: each cluster endpoint is http://<host the request came to>/arc/
<cluster id>/<region>/v1 (AWS's look like https://host-xxxxxx.<region>.example.com/v1).
A request to it must be signed for that region (InvalidSignatureException
otherwise, as AWS answers a credential scoped to the wrong region), so the fault
proxy can black-hole one endpoint region and leave the others answering.
GetRoutingControlState, ListRoutingControls, UpdateRoutingControlState and
UpdateRoutingControlStates. Routing controls start Off. An update is one
transaction: every DEPLOYED safety rule that is not in SafetyRulesToOverride and
concerns a routing control of the update is evaluated on the states after it
(assertion rules: ATLEAST Threshold / AND / OR of the AssertedControls, Inverted
negates) or, for gating rules, on the gating controls' states before it; a rule that
does not hold refuses the whole update, naming the rule's ARN in the message (the
ARC Developer Guide, "Overriding safety rules to reroute traffic": "the error message
includes the ARN of the rule that blocked the update"; the error code is not
documented there, this emulator answers ValidationException). After an update that
changed a routing control of a rule, further updates of that rule's controls fail
with ConflictException for the rule's WaitPeriodMs ("an evaluation period ...
during which any request against the target routing controls will fail"). Routing
controls that are not DEPLOYED, or belong to another cluster than the endpoint's,
are ResourceNotFoundException. An endpoint made unavailable with POST
/_sim/arc/endpoints answers EndpointTemporarilyUnavailableException (AWS cycles
endpoints through maintenance: "try another cluster endpoint").

Control API: GET /_sim/arc (clusters, control panels, routing controls with their
states, safety rules, the log of state updates with the endpoint region that served
each), POST /_sim/arc/endpoints {"unavailable": ["us-east-1", ...]} (every cluster).
"""

import json
import re
import uuid
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.session import get_session
from botocore.validate import ParamValidator

from . import state
from .timing import Transition, now

ENDPOINT_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2"]

CONFIG = "route53-recovery-control-config"
CLUSTER = "route53-recovery-cluster"

_models = {}


def _model(name):
    if name not in _models:
        _models[name] = get_session().get_service_model(name)
    return _models[name]


class ArcError(Exception):
    def __init__(self, code, message, status=400, **extra):
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra


def _not_found(what, arn):
    return ArcError("ResourceNotFoundException", f"{what} {arn} was not found.", 404, resourceId=arn, resourceType=what)


class Resource:
    def __init__(self, account):
        self.account = account
        self.deploy = Transition("arc_deploy")
        self.tags = {}

    @property
    def status(self):
        return "DEPLOYED" if self.deploy.done() else "PENDING"


class Cluster(Resource):
    def __init__(self, account, name, network_type):
        super().__init__(account)
        self.id = uuid.uuid4().hex[:24]
        self.name = name
        self.network_type = network_type or "IPV4"
        self.arn = f"arn:aws:route53-recovery-control::{account}:cluster/{self.id}"

    def endpoints(self, host):
        return [{"Endpoint": f"http://{host}/arc/{self.id}/{r}/v1", "Region": r} for r in ENDPOINT_REGIONS]

    def doc(self, host):
        return {"ClusterArn": self.arn, "ClusterEndpoints": self.endpoints(host), "Name": self.name,
                "Status": self.status, "Owner": self.account, "NetworkType": self.network_type}


class ControlPanel(Resource):
    def __init__(self, account, cluster, name, default=False):
        super().__init__(account)
        self.cluster = cluster
        self.name = name
        self.default = default
        self.arn = f"arn:aws:route53-recovery-control::{account}:controlpanel/{uuid.uuid4().hex}"

    def doc(self):
        count = sum(1 for rc in _state.controls.values() if rc.panel is self)
        return {"ClusterArn": self.cluster.arn, "ControlPanelArn": self.arn, "DefaultControlPanel": self.default,
                "Name": self.name, "RoutingControlCount": count, "Status": self.status, "Owner": self.account}


class RoutingControl(Resource):
    def __init__(self, account, panel, name):
        super().__init__(account)
        self.panel = panel
        self.name = name
        self.arn = f"{panel.arn}/routingcontrol/{uuid.uuid4().hex[:16]}"
        self.state = "Off"

    def doc(self):
        return {"ControlPanelArn": self.panel.arn, "Name": self.name, "RoutingControlArn": self.arn,
                "Status": self.status, "Owner": self.account}


class SafetyRule(Resource):
    def __init__(self, account, panel, kind, spec):
        super().__init__(account)
        self.panel = panel
        self.kind = kind  # "ASSERTION" | "GATING"
        self.spec = spec
        self.name = spec["Name"]
        self.arn = f"{panel.arn}/safetyrule/{uuid.uuid4().hex[:16]}"
        self.quiet_until = 0.0  # the wait period after an update of its controls

    def controls(self):
        if self.kind == "ASSERTION":
            return list(self.spec["AssertedControls"])
        return list(self.spec["TargetControls"])

    def doc(self):
        d = dict(self.spec)
        d.update({"ControlPanelArn": self.panel.arn, "SafetyRuleArn": self.arn, "Status": self.status, "Owner": self.account})
        return {"AssertionRule" if self.kind == "ASSERTION" else "GatingRule": d}


class _State:
    def __init__(self):
        self.clusters = {}
        self.panels = {}
        self.controls = {}
        self.rules = {}
        self.tokens = {}  # (account, operation, token) -> arn
        self.unavailable = set()
        self.log = []


_state = _State()


@state.on_reset
def _reset():
    global _state
    _state = _State()


# What the Route 53 patches need: a routing control's state (None if unknown).


def routing_control(arn):
    with state.LOCK:
        rc = _state.controls.get(arn)
        if rc is None or rc.status != "DEPLOYED":
            return None
        return rc


def routing_control_exists(arn):
    with state.LOCK:
        return arn in _state.controls


def associated_health_checks(arn):
    from . import route53routing

    return route53routing.health_checks_for(arn)


# ---- request plumbing -----------------------------------------------------------

_CRED = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")


def _scope(environ):
    m = _CRED.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not m:
        return None, None, None
    return m.group(1), m.group(2), m.group(3)


def _account(access_key):
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def _raw_path(environ):
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return urlsplit(raw).path
    return environ.get("PATH_INFO", "")


def _body(environ):
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = 0
    raw = environ["wsgi.input"].read(size) if size else b""
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise ArcError("SerializationException", f"the body is not JSON: {e}")
    if not isinstance(doc, dict):
        raise ArcError("SerializationException", "the body is not a JSON object")
    return doc


def _validate(op_model, params):
    report = ParamValidator().validate(params, op_model.input_shape)
    if report.has_errors():
        raise ArcError("ValidationException", report.generate_report())


class ArcMiddleware:
    """Serves the two ARC services; hands every other request on."""

    def __init__(self, app):
        self.app = app
        self.routes = []
        for name in _model(CONFIG).operation_names:
            op = _model(CONFIG).operation_model(name)
            uri = op.http["requestUri"]
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", uri)
            self.routes.append((op.http["method"], re.compile("^" + pattern + "/?$"), op))

    def __call__(self, environ, start_response):
        key, region, service = _scope(environ)
        if service == CONFIG:
            return self._config(environ, start_response, key)
        if service == CLUSTER:
            return self._cluster(environ, start_response, key, region)
        return self.app(environ, start_response)

    # -- rest-json configuration API

    def _config(self, environ, start_response, key):
        method = environ.get("REQUEST_METHOD", "GET")
        path = _raw_path(environ)
        try:
            for m, rx, op in self.routes:
                match = rx.match(path)
                if m != method or not match:
                    continue
                params = {}
                query = parse_qs(environ.get("QUERY_STRING", ""))
                for member, shape in op.input_shape.members.items():
                    loc = shape.serialization.get("location")
                    name = shape.serialization.get("name", member)
                    if loc == "uri":
                        params[member] = unquote(match.group(name))
                    elif loc == "querystring" and name in query:
                        vals = query[name]
                        if shape.type_name == "list":
                            params[member] = vals
                        elif shape.type_name == "integer":
                            try:
                                params[member] = int(vals[0])
                            except ValueError:
                                raise ArcError("ValidationException", f"{name}: not an integer")
                        else:
                            params[member] = vals[0]
                if method in ("POST", "PUT"):
                    body = _body(environ)
                    for member, value in body.items():
                        if member not in op.input_shape.members:
                            raise ArcError("ValidationException", f"unknown field {member}")
                        params[member] = value
                _validate(op, params)
                handler = getattr(self, "c_" + op.name)
                with state.LOCK:
                    out = handler(_account(key), params, environ.get("HTTP_HOST", "localhost"))
                return _reply(start_response, "200 OK", out)
            raise ArcError("UnknownOperationException", f"no operation {method} {path}", 404)
        except ArcError as e:
            return _error(start_response, e, rest=True)

    # -- JSON 1.0 data plane

    def _cluster(self, environ, start_response, key, signed_region):
        path = _raw_path(environ)
        m = re.match(r"^/arc/([0-9a-f]+)/([a-z0-9-]+)/v1/?$", path)
        try:
            if not m or environ.get("REQUEST_METHOD") != "POST":
                raise ArcError("UnknownOperationException", f"no cluster endpoint at {path}", 404)
            cid, region = m.group(1), m.group(2)
            if region != signed_region:
                raise ArcError("InvalidSignatureException",
                               f"Credential should be scoped to a valid region. (this endpoint is in {region}, the request is signed for {signed_region})", 403)
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            prefix, _, opname = target.partition(".")
            model = _model(CLUSTER)
            if prefix != model.metadata["targetPrefix"] or opname not in model.operation_names:
                raise ArcError("UnknownOperationException", f"unknown operation {target!r}")
            op = model.operation_model(opname)
            params = _body(environ)
            _validate(op, params)
            account = _account(key)
            with state.LOCK:
                cluster = next((c for c in _state.clusters.values() if c.id == cid and c.account == account), None)
                if cluster is None:
                    raise ArcError("AccessDeniedException", "You don't have sufficient permissions to perform this action.", 403)
                if cluster.status != "DEPLOYED" or region in _state.unavailable:
                    raise ArcError("EndpointTemporarilyUnavailableException",
                                   f"The cluster endpoint in {region} isn't available. Try another cluster endpoint.", 503)
                out = getattr(self, "d_" + opname)(cluster, region, params)
            return _reply(start_response, "200 OK", out, ctype="application/x-amz-json-1.0")
        except ArcError as e:
            return _error(start_response, e, rest=False)

    # ---- configuration operations (called under state.LOCK) -------------------------

    def _idempotent(self, account, op, params, create):
        token = params.get("ClientToken")
        if token:
            arn = _state.tokens.get((account, op, token))
            if arn is not None:
                return arn
        arn = create()
        if token:
            _state.tokens[(account, op, token)] = arn
        return arn

    def _cluster_of(self, account, arn):
        c = _state.clusters.get(arn)
        if c is None or c.account != account:
            raise _not_found("Cluster", arn)
        return c

    def _panel_of(self, account, arn):
        p = _state.panels.get(arn)
        if p is None or p.account != account:
            raise _not_found("ControlPanel", arn)
        return p

    def _control_of(self, account, arn):
        rc = _state.controls.get(arn)
        if rc is None or rc.account != account:
            raise _not_found("RoutingControl", arn)
        return rc

    def _rule_of(self, account, arn):
        r = _state.rules.get(arn)
        if r is None or r.account != account:
            raise _not_found("SafetyRule", arn)
        return r

    @staticmethod
    def _deployed(res, what):
        if res.status != "DEPLOYED":
            raise ArcError("ConflictException", f"{what} {res.arn} is {res.status}, not DEPLOYED yet.", 409)

    def c_CreateCluster(self, account, p, host):
        def create():
            c = Cluster(account, p["ClusterName"], p.get("NetworkType"))
            c.tags = dict(p.get("Tags") or {})
            _state.clusters[c.arn] = c
            panel = ControlPanel(account, c, "DefaultControlPanel", default=True)
            _state.panels[panel.arn] = panel
            return c.arn

        arn = self._idempotent(account, "CreateCluster", p, create)
        return {"Cluster": _state.clusters[arn].doc(host)}

    def c_DescribeCluster(self, account, p, host):
        return {"Cluster": self._cluster_of(account, p["ClusterArn"]).doc(host)}

    def c_ListClusters(self, account, p, host):
        items = [c.doc(host) for c in _state.clusters.values() if c.account == account]
        return _page(items, p, "Clusters")

    def c_UpdateCluster(self, account, p, host):
        c = self._cluster_of(account, p["ClusterArn"])
        c.network_type = p["NetworkType"]
        return {"Cluster": c.doc(host)}

    def c_DeleteCluster(self, account, p, host):
        c = self._cluster_of(account, p["ClusterArn"])
        if any(pn.cluster is c and not pn.default for pn in _state.panels.values()) or any(
            rc.panel.cluster is c for rc in _state.controls.values()
        ):
            raise ArcError("ConflictException", f"Cluster {c.arn} still has control panels or routing controls.", 409)
        for arn in [a for a, pn in _state.panels.items() if pn.cluster is c]:
            del _state.panels[arn]
        del _state.clusters[c.arn]
        return {}

    def c_CreateControlPanel(self, account, p, host):
        c = self._cluster_of(account, p["ClusterArn"])
        self._deployed(c, "Cluster")

        def create():
            panel = ControlPanel(account, c, p["ControlPanelName"])
            panel.tags = dict(p.get("Tags") or {})
            _state.panels[panel.arn] = panel
            return panel.arn

        arn = self._idempotent(account, "CreateControlPanel", p, create)
        return {"ControlPanel": _state.panels[arn].doc()}

    def c_DescribeControlPanel(self, account, p, host):
        return {"ControlPanel": self._panel_of(account, p["ControlPanelArn"]).doc()}

    def c_ListControlPanels(self, account, p, host):
        items = [pn.doc() for pn in _state.panels.values() if pn.account == account and (not p.get("ClusterArn") or pn.cluster.arn == p["ClusterArn"])]
        return _page(items, p, "ControlPanels")

    def c_UpdateControlPanel(self, account, p, host):
        panel = self._panel_of(account, p["ControlPanelArn"])
        panel.name = p["ControlPanelName"]
        return {"ControlPanel": panel.doc()}

    def c_DeleteControlPanel(self, account, p, host):
        panel = self._panel_of(account, p["ControlPanelArn"])
        if panel.default:
            raise ArcError("ValidationException", f"The default control panel {panel.arn} cannot be deleted.")
        if any(rc.panel is panel for rc in _state.controls.values()) or any(r.panel is panel for r in _state.rules.values()):
            raise ArcError("ConflictException", f"Control panel {panel.arn} still has routing controls or safety rules.", 409)
        del _state.panels[panel.arn]
        return {}

    def c_CreateRoutingControl(self, account, p, host):
        c = self._cluster_of(account, p["ClusterArn"])
        self._deployed(c, "Cluster")
        if p.get("ControlPanelArn"):
            panel = self._panel_of(account, p["ControlPanelArn"])
            if panel.cluster is not c:
                raise ArcError("ValidationException", f"Control panel {panel.arn} is not in cluster {c.arn}.")
            self._deployed(panel, "ControlPanel")
        else:
            panel = next(pn for pn in _state.panels.values() if pn.cluster is c and pn.default)

        def create():
            rc = RoutingControl(account, panel, p["RoutingControlName"])
            _state.controls[rc.arn] = rc
            return rc.arn

        arn = self._idempotent(account, "CreateRoutingControl", p, create)
        return {"RoutingControl": _state.controls[arn].doc()}

    def c_DescribeRoutingControl(self, account, p, host):
        return {"RoutingControl": self._control_of(account, p["RoutingControlArn"]).doc()}

    def c_ListRoutingControls(self, account, p, host):
        panel = self._panel_of(account, p["ControlPanelArn"])
        items = [rc.doc() for rc in _state.controls.values() if rc.panel is panel]
        return _page(items, p, "RoutingControls")

    def c_UpdateRoutingControl(self, account, p, host):
        rc = self._control_of(account, p["RoutingControlArn"])
        rc.name = p["RoutingControlName"]
        return {"RoutingControl": rc.doc()}

    def c_DeleteRoutingControl(self, account, p, host):
        rc = self._control_of(account, p["RoutingControlArn"])
        for r in _state.rules.values():
            if rc.arn in r.controls() or rc.arn in r.spec.get("GatingControls", []):
                raise ArcError("ConflictException", f"Routing control {rc.arn} is used by safety rule {r.arn}.", 409)
        del _state.controls[rc.arn]
        return {}

    def c_ListAssociatedRoute53HealthChecks(self, account, p, host):
        rc = self._control_of(account, p["RoutingControlArn"])
        ids = associated_health_checks(rc.arn)
        out = _page(ids, p, "HealthCheckIds")
        return out

    def c_CreateSafetyRule(self, account, p, host):
        kinds = [k for k in ("AssertionRule", "GatingRule") if p.get(k)]
        if len(kinds) != 1:
            raise ArcError("ValidationException", "Give exactly one of AssertionRule and GatingRule.")
        spec = dict(p[kinds[0]])
        panel = self._panel_of(account, spec["ControlPanelArn"])
        self._deployed(panel, "ControlPanel")
        kind = "ASSERTION" if kinds[0] == "AssertionRule" else "GATING"
        members = spec["AssertedControls"] if kind == "ASSERTION" else spec["TargetControls"] + spec["GatingControls"]
        if not members:
            raise ArcError("ValidationException", "A safety rule needs at least one routing control.")
        for arn in members:
            rc = self._control_of(account, arn)
            if rc.panel is not panel:
                raise ArcError("ValidationException", f"Routing control {arn} is not in control panel {panel.arn}: a safety rule's controls must be in its control panel.")
        cfg = spec["RuleConfig"]
        if cfg["Type"] == "ATLEAST" and not (1 <= cfg["Threshold"] <= len(spec["AssertedControls"] if kind == "ASSERTION" else spec["GatingControls"])):
            raise ArcError("ValidationException", f"RuleConfig.Threshold {cfg['Threshold']} must be between 1 and the number of controls it counts.")
        if spec["WaitPeriodMs"] < 0:
            raise ArcError("ValidationException", "WaitPeriodMs must not be negative.")

        def create():
            r = SafetyRule(account, panel, kind, spec)
            r.tags = dict(p.get("Tags") or {})
            _state.rules[r.arn] = r
            return r.arn

        arn = self._idempotent(account, "CreateSafetyRule", p, create)
        return _state.rules[arn].doc()

    def c_DescribeSafetyRule(self, account, p, host):
        return self._rule_of(account, p["SafetyRuleArn"]).doc()

    def c_ListSafetyRules(self, account, p, host):
        panel = self._panel_of(account, p["ControlPanelArn"])
        items = []
        for r in _state.rules.values():
            if r.panel is panel:
                d = r.doc()
                items.append({"ASSERTION": d["AssertionRule"]} if r.kind == "ASSERTION" else {"GATING": d["GatingRule"]})
        return _page(items, p, "SafetyRules")

    def c_UpdateSafetyRule(self, account, p, host):
        upd = p.get("AssertionRuleUpdate") or p.get("GatingRuleUpdate")
        if not upd:
            raise ArcError("ValidationException", "Give AssertionRuleUpdate or GatingRuleUpdate.")
        r = self._rule_of(account, upd["SafetyRuleArn"])
        r.spec["Name"], r.spec["WaitPeriodMs"] = upd["Name"], upd["WaitPeriodMs"]
        r.name = upd["Name"]
        return r.doc()

    def c_DeleteSafetyRule(self, account, p, host):
        r = self._rule_of(account, p["SafetyRuleArn"])
        del _state.rules[r.arn]
        return {}

    def _tagged(self, account, arn):
        for coll in (_state.clusters, _state.panels, _state.rules):
            res = coll.get(arn)
            if res is not None and res.account == account:
                return res
        raise _not_found("Resource", arn)

    def c_ListTagsForResource(self, account, p, host):
        return {"Tags": dict(self._tagged(account, p["ResourceArn"]).tags)}

    def c_TagResource(self, account, p, host):
        self._tagged(account, p["ResourceArn"]).tags.update(p["Tags"])
        return {}

    def c_UntagResource(self, account, p, host):
        res = self._tagged(account, p["ResourceArn"])
        for k in p["TagKeys"]:
            res.tags.pop(k, None)
        return {}

    def c_GetResourcePolicy(self, account, p, host):
        raise _not_found("ResourcePolicy", p["ResourceArn"])

    # ---- data plane (called under state.LOCK) --------------------------------------

    @staticmethod
    def _member(cluster, arn):
        rc = _state.controls.get(arn)
        if rc is None or rc.panel.cluster is not cluster or rc.status != "DEPLOYED":
            raise ArcError("ResourceNotFoundException", f"Routing control {arn} was not found in this cluster.", 404,
                           resourceId=arn, resourceType="RoutingControl")
        return rc

    def d_GetRoutingControlState(self, cluster, region, p):
        rc = self._member(cluster, p["RoutingControlArn"])
        return {"RoutingControlArn": rc.arn, "RoutingControlState": rc.state, "RoutingControlName": rc.name}

    def d_ListRoutingControls(self, cluster, region, p):
        panel_arn = p.get("ControlPanelArn")
        if panel_arn:
            panel = _state.panels.get(panel_arn)
            if panel is None or panel.cluster is not cluster:
                raise ArcError("ResourceNotFoundException", f"Control panel {panel_arn} was not found in this cluster.", 404,
                               resourceId=panel_arn, resourceType="ControlPanel")
        items = [
            {"ControlPanelArn": rc.panel.arn, "ControlPanelName": rc.panel.name, "RoutingControlArn": rc.arn,
             "RoutingControlName": rc.name, "RoutingControlState": rc.state, "Owner": rc.account}
            for rc in _state.controls.values()
            if rc.panel.cluster is cluster and rc.status == "DEPLOYED" and (not panel_arn or rc.panel.arn == panel_arn)
        ]
        return _page(items, p, "RoutingControls", required=True)

    def d_UpdateRoutingControlState(self, cluster, region, p):
        return self._update(cluster, region, [{"RoutingControlArn": p["RoutingControlArn"], "RoutingControlState": p["RoutingControlState"]}],
                            p.get("SafetyRulesToOverride") or [])

    def d_UpdateRoutingControlStates(self, cluster, region, p):
        return self._update(cluster, region, p["UpdateRoutingControlStateEntries"], p.get("SafetyRulesToOverride") or [])

    def _update(self, cluster, region, entries, override):
        if not entries:
            raise ArcError("ValidationException", "UpdateRoutingControlStateEntries is empty.")
        new = {}
        for e in entries:
            rc = self._member(cluster, e["RoutingControlArn"])
            if rc.arn in new and new[rc.arn] != e["RoutingControlState"]:
                raise ArcError("ValidationException", f"Routing control {rc.arn} is given two states.")
            new[rc.arn] = e["RoutingControlState"]
        for arn in override:
            if arn not in _state.rules:
                raise ArcError("ResourceNotFoundException", f"Safety rule {arn} was not found.", 404, resourceId=arn, resourceType="SafetyRule")
        after = {arn: rc.state for arn, rc in _state.controls.items()}
        after.update(new)
        t = now()
        touched = []
        for r in _state.rules.values():
            if r.panel.cluster is not cluster or r.status != "DEPLOYED":
                continue
            ctrls = r.controls()
            if not any(a in new for a in ctrls):
                continue
            touched.append(r)
            if r.arn in override:
                continue
            if t < r.quiet_until:
                raise ArcError("ConflictException",
                               f"Safety rule {r.arn} is in its wait period of {r.spec['WaitPeriodMs']} ms after the last update of its routing controls. Try again.",
                               409, resourceId=r.arn, resourceType="SafetyRule")
            if r.kind == "ASSERTION":
                ok = _evaluate(r.spec["RuleConfig"], [after[a] for a in ctrls])
            else:
                ok = _evaluate(r.spec["RuleConfig"], [_state.controls[a].state for a in r.spec["GatingControls"]])
            if not ok:
                raise ArcError("ValidationException",
                               f"Cannot modify control state for {sorted(new)} due to failed rule evaluation {r.arn}",
                               reason="other")
        changed = [arn for arn, st in new.items() if _state.controls[arn].state != st]
        for arn, st in new.items():
            _state.controls[arn].state = st
        if changed:
            for r in touched:
                if any(a in changed for a in r.controls()):
                    r.quiet_until = t + r.spec["WaitPeriodMs"] / 1000.0
        _state.log.append({"time": t, "cluster": cluster.arn, "endpoint_region": region, "states": dict(new),
                           "changed": changed, "overridden": list(override)})
        return {}


def _evaluate(cfg, states):
    on = sum(1 for s in states if s == "On")
    if cfg["Type"] == "ATLEAST":
        ok = on >= cfg["Threshold"]
    elif cfg["Type"] == "AND":
        ok = on == len(states)
    else:
        ok = on >= 1
    return not ok if cfg.get("Inverted") else ok


def _page(items, p, key, required=False):
    try:
        start = int(p.get("NextToken") or 0)
    except ValueError:
        raise ArcError("ValidationException", "NextToken is not valid.")
    size = p.get("MaxResults") or 500
    out = {key: items[start : start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out


def _reply(start_response, status, doc, ctype="application/json"):
    body = json.dumps(doc).encode()
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def _error(start_response, e, rest):
    status = {400: "400 Bad Request", 403: "403 Forbidden", 404: "404 Not Found", 409: "409 Conflict",
              429: "429 Too Many Requests", 500: "500 Internal Server Error", 503: "503 Service Unavailable"}[e.status]
    headers = [("X-Amzn-ErrorType", e.code)]
    doc = {"message": e.message, **e.extra}
    if rest:
        ctype = "application/json"
    else:
        ctype = "application/x-amz-json-1.0"
        doc = {"__type": e.code, **doc}
    body = json.dumps(doc).encode()
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))] + headers)
    return [body]


@state.route("GET", "arc")
def _sim_state(_doc):
    with state.LOCK:
        return {
            "clusters": [{"arn": c.arn, "name": c.name, "status": c.status, "endpoint_regions": ENDPOINT_REGIONS} for c in _state.clusters.values()],
            "control_panels": [{"arn": p.arn, "name": p.name, "cluster": p.cluster.arn, "default": p.default, "status": p.status} for p in _state.panels.values()],
            "routing_controls": [{"arn": rc.arn, "name": rc.name, "control_panel": rc.panel.arn, "state": rc.state, "status": rc.status} for rc in _state.controls.values()],
            "safety_rules": [{"arn": r.arn, "name": r.name, "kind": r.kind, "status": r.status, "spec": r.spec} for r in _state.rules.values()],
            "unavailable_endpoint_regions": sorted(_state.unavailable),
            "updates": list(_state.log),
        }


@state.route("POST", "arc/endpoints")
def _sim_endpoints(doc):
    regions = doc.get("unavailable", [])
    if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
        raise ValueError("unavailable must be a list of region names")
    unknown = [r for r in regions if r not in ENDPOINT_REGIONS]
    if unknown:
        raise ValueError(f"not endpoint regions: {unknown}; they are {ENDPOINT_REGIONS}")
    with state.LOCK:
        _state.unavailable = set(regions)
        return {"unavailable_endpoint_regions": sorted(_state.unavailable)}


def install():
    pass  # served by ArcMiddleware (see __init__.app)
