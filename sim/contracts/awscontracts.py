"""Contract checks of recorded AWS exchanges against AWS's own API models.

Each exchange the fault proxy recorded (sim/faultproxy Exchange, one JSON object a
line) is checked against botocore's service model (data/<service>/<version>/
service-2.json of the pinned botocore, the models AWS publishes for its SDKs):

- the request: the service exists; the operation exists and is the one the
  protocol names (X-Amz-Target, Action=, the Smithy RPC v2 path, or the REST
  method and URI template, matched against every operation of the model); the
  request is decoded into parameters following the model (query, ec2, json,
  rest-json and rest-xml, each as botocore's serializers encode them), and the
  parameters are validated: required members, unknown members, types, enum
  values, minimum and maximum lengths and values, and patterns;
- the answer (when the emulator's own): a success is parsed with botocore's
  parser for the protocol against the operation's output shape and validated the
  same way; an error must carry a code, and a code the operation models must come
  with the status the model gives it.

botocore's ParamValidator checks required and unknown members, types and minimum
lengths; ContractValidator adds what it leaves out (maximum lengths and values,
enums, patterns). Patterns are Smithy patterns: not implicitly anchored (Smithy
IDL 2.0, "pattern trait"), matched with the `regex` module, which knows the
\\p{...} classes some models use.

Usage: python awscontracts.py EXCHANGES.jsonl [--allowlist FILE]
prints one JSON document: every finding (operation, member, rule), what an
allowlist entry excused, and what each exchange was (service, operation,
parameters), for the permission tests.
"""

import argparse
import base64
import datetime
import json
import sys
from urllib.parse import parse_qsl, unquote
from xml.etree import ElementTree

import botocore.session
import regex
from botocore import handlers, parsers
from botocore.awsrequest import HeadersDict
from botocore.exceptions import UnknownServiceError
from botocore.utils import parse_timestamp
from botocore.validate import ParamValidator, ValidationErrors

_SESSION = botocore.session.get_session()
_MODELS = {}

# SigV4 signing names whose botocore service name differs.
SIGNING_NAMES = {"monitoring": "cloudwatch", "s3control": "s3control", "execute-api": "apigateway"}

# Error codes every AWS query, JSON and REST API may answer, beyond those an
# operation models (the "Common Errors" section of each service's API
# Reference, e.g. Amazon RDS API Reference, "Common Errors"; Amazon ECS API
# Reference, "Common Errors").
COMMON_ERRORS = {
    "AccessDenied", "AccessDeniedException", "IncompleteSignature", "InternalFailure",
    "InternalError", "InternalServerError", "InvalidAction", "InvalidClientTokenId",
    "InvalidParameterCombination", "InvalidParameterValue", "InvalidParameterException",
    "InvalidQueryParameter", "MalformedQueryString", "MissingAction",
    "MissingAuthenticationToken", "MissingParameter", "NotAuthorized", "OptInRequired",
    "RequestExpired", "ServiceUnavailable", "Throttling", "ThrottlingException",
    "ValidationError", "ValidationException", "UnrecognizedClientException",
    "SerializationException", "UnknownOperationException",
}

# Services whose models list only a few of the error codes the service
# answers: S3's model has NoSuchBucket, NoSuchKey and a handful more, while the
# Amazon S3 API Reference ("Error responses", list of error codes) documents
# dozens (NoSuchReplicationConfiguration -> ReplicationConfigurationNotFoundError,
# NoSuchTagSet, ...). Their codes are not checked against the model.
UNMODELED_ERROR_SERVICES = {"s3", "s3control"}


def model(name):
    if name not in _MODELS:
        try:
            _MODELS[name] = _SESSION.get_service_model(name)
        except UnknownServiceError:
            _MODELS[name] = None
    return _MODELS[name]


class Finding(Exception):
    def __init__(self, rule, detail, member=""):
        super().__init__(detail)
        self.rule, self.detail, self.member = rule, detail, member


# ---------------------------------------------------------------- validation

RULES = {
    "missing required field": "required",
    "unknown field": "unknown-member",
    "invalid type": "type",
    "invalid range": "min",
    "invalid length": "min-length",
    "invalid type for document": "type",
    "unable to encode to json": "type",
    "more than one input": "union",
    "empty input": "union",
}


class ContractValidator(ParamValidator):
    """botocore's validator plus maximums, enums and patterns."""

    def _validate_string(self, param, shape, errors, name):
        super()._validate_string(param, shape, errors, name)
        if not isinstance(param, str):
            return
        m = shape.metadata
        if "max" in m and len(param) > m["max"]:
            errors.report(name, "max-length", param=param, limit=m["max"])
        if shape.enum and param not in shape.enum:
            errors.report(name, "enum", param=param, allowed=list(shape.enum))
        if "pattern" in m and not pattern(m["pattern"]).search(param):
            errors.report(name, "pattern", param=param, pattern=m["pattern"])

    def _validate_list(self, param, shape, errors, name):
        super()._validate_list(param, shape, errors, name)
        if isinstance(param, (list, tuple)) and "max" in shape.metadata and len(param) > shape.metadata["max"]:
            errors.report(name, "max-length", param=len(param), limit=shape.metadata["max"])

    def _validate_map(self, param, shape, errors, name):
        super()._validate_map(param, shape, errors, name)
        if isinstance(param, dict) and "max" in shape.metadata and len(param) > shape.metadata["max"]:
            errors.report(name, "max-length", param=len(param), limit=shape.metadata["max"])

    def _number_max(self, param, shape, errors, name):
        if isinstance(param, (int, float)) and not isinstance(param, bool) and "max" in shape.metadata and param > shape.metadata["max"]:
            errors.report(name, "max", param=param, limit=shape.metadata["max"])

    def _validate_integer(self, param, shape, errors, name):
        super()._validate_integer(param, shape, errors, name)
        self._number_max(param, shape, errors, name)

    def _validate_long(self, param, shape, errors, name):
        super()._validate_long(param, shape, errors, name)
        self._number_max(param, shape, errors, name)

    def _validate_double(self, param, shape, errors, name):
        super()._validate_double(param, shape, errors, name)
        self._number_max(param, shape, errors, name)

    _validate_float = _validate_double

    def _validate_blob(self, param, shape, errors, name):
        if isinstance(param, _BadValue):
            errors.report(name, "invalid type", param=param.raw, valid_types=["base64"])
            return
        super()._validate_blob(param, shape, errors, name)


class _BadValue(str):
    """A blob that did not decode: kept so that the validator names it."""

    def __new__(cls, raw):
        s = super().__new__(cls, raw)
        s.raw = raw
        return s


_PATTERNS = {}


_SURROGATES = regex.compile(r"\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})", regex.IGNORECASE)


def _code_point(m):
    hi, lo = int(m.group(1), 16), int(m.group(2), 16)
    return "\\U%08X" % (0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))


def pattern(p):
    """A model's pattern, compiled. Models written for Java spell characters
    beyond the BMP as UTF-16 surrogate pairs ("\\uD800\\uDC00-\\uDBFF\\uDFFF"
    is U+10000 to U+10FFFF); Python strings are code points, so the pairs are
    turned into the code points they stand for."""
    if p not in _PATTERNS:
        _PATTERNS[p] = regex.compile(_SURROGATES.sub(_code_point, p))
    return _PATTERNS[p]


def validate(params, shape):
    """Findings of params against shape: [(member, rule, detail)]."""
    if shape is None:
        return [("", "unknown-member", f"the operation takes no input, got {sorted(params)}")] if params else []
    errors = ValidationErrors()
    ContractValidator()._validate(params, shape, errors, "")
    out = []
    for reason, name, kw in errors._errors:
        member = name[1:] if name.startswith(".") else name
        rule = RULES.get(reason, reason)
        if rule == "required":
            member = f"{member}.{kw['required_name']}" if member else kw["required_name"]
            detail = "required member missing"
        elif rule == "unknown-member":
            member = f"{member}.{kw['unknown_param']}" if member else kw["unknown_param"]
            detail = "not a member of the shape"
        elif rule == "enum":
            detail = f"{kw['param']!r} is not one of {kw['allowed']}"
        elif rule == "pattern":
            detail = f"{kw['param']!r} does not match {kw['pattern']}"
        elif rule in ("max-length", "max"):
            detail = f"{kw['param']!r} is over the maximum {kw['limit']}"
        elif rule in ("min-length", "min"):
            detail = f"{kw.get('param')!r} is under the minimum {kw.get('min_allowed')}"
        elif rule == "type":
            detail = f"{kw.get('param')!r} is not a {shape_type_at(shape, member)}"
        else:
            detail = reason
        out.append((member, rule, detail))
    return out


def shape_type_at(shape, member):
    s = shape
    for part in member.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            s = s.member if s.type_name == "list" else s.value
        elif s.type_name == "structure" and part in s.members:
            s = s.members[part]
        elif s.type_name == "map":
            s = s.value
    return s.type_name


# ---------------------------------------------------------------- requests

def scalar(shape, text, ec2=False):
    """A serialized scalar as the validator expects it; what does not convert
    stays a string, so that the validator reports its type."""
    t = shape.type_name
    try:
        if t in ("integer", "long"):
            return int(text)
        if t in ("float", "double"):
            return float(text)
    except ValueError:
        return text
    if t == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if t == "blob":
        try:
            return base64.b64decode(text, validate=True)
        except (ValueError, TypeError):
            return _BadValue(text)
    return text  # string, timestamp (the validator parses timestamps)


def query_name(member, name, ec2):
    if ec2:
        if "queryName" in member.serialization:
            return member.serialization["queryName"]
        n = member.serialization.get("name", name)
        return n[0].upper() + n[1:]
    return member.serialization.get("name", name)


def has_prefix(flat, prefix):
    return any(k == prefix or k.startswith(prefix + ".") for k in flat)


def indices(flat, prefix):
    out = set()
    for k in flat:
        if k.startswith(prefix + "."):
            head = k[len(prefix) + 1:].split(".", 1)[0]
            if head.isdigit():
                out.add(int(head))
    return sorted(out)


def parse_query(shape, prefix, flat, used, ec2=False):
    """Decode query-protocol parameters (botocore's QuerySerializer, reversed)."""
    t = shape.type_name
    if t == "structure":
        out = {}
        for name, m in shape.members.items():
            key = query_name(m, name, ec2)
            p = f"{prefix}.{key}" if prefix else key
            if has_prefix(flat, p):
                out[name] = parse_query(m, p, flat, used, ec2)
        return out
    if t == "list":
        if flat.get(prefix) == "":
            used.add(prefix)
            return []
        if ec2 or shape.serialization.get("flattened"):
            lp = prefix
            if not ec2 and shape.member.serialization.get("name"):
                lp = ".".join(prefix.split(".")[:-1] + [shape.member.serialization["name"]])
        else:
            lp = f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        return [parse_query(shape.member, f"{lp}.{i}", flat, used, ec2) for i in indices(flat, lp)]
    if t == "map":
        mp = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        kn = shape.key.serialization.get("name", "key")
        vn = shape.value.serialization.get("name", "value")
        out = {}
        for i in indices(flat, mp):
            k = flat.get(f"{mp}.{i}.{kn}")
            used.add(f"{mp}.{i}.{kn}")
            out[k] = parse_query(shape.value, f"{mp}.{i}.{vn}", flat, used, ec2)
        return out
    if prefix in flat:
        used.add(prefix)
        return scalar(shape, flat[prefix], ec2)
    return None


def parse_json_value(shape, value, path, extra):
    """JSON protocols: rename serialized names, decode timestamps and blobs."""
    if shape is None or value is None:
        return value
    t = shape.type_name
    if t == "structure" and isinstance(value, dict) and not shape.is_document_type:
        names = {m.serialization.get("name", n): n for n, m in shape.members.items()}
        out = {}
        for k, v in value.items():
            if k not in names:
                out[k] = v  # the validator reports the unknown member
                continue
            out[names[k]] = parse_json_value(shape.members[names[k]], v, f"{path}.{names[k]}", extra)
        return out
    if t == "list" and isinstance(value, list):
        return [parse_json_value(shape.member, v, f"{path}[{i}]", extra) for i, v in enumerate(value)]
    if t == "map" and isinstance(value, dict):
        return {k: parse_json_value(shape.value, v, f"{path}.{k}", extra) for k, v in value.items()}
    if t == "timestamp" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    if t == "blob" and isinstance(value, str):
        return scalar(shape, value)
    return value


def local(tag):
    return tag.rsplit("}", 1)[-1]


def parse_xml(shape, elem, path, extra):
    """rest-xml bodies (botocore's RestXMLSerializer, reversed)."""
    t = shape.type_name
    if t == "structure":
        out = {}
        children = {}
        for c in elem:
            children.setdefault(local(c.tag), []).append(c)
        known = set()
        for name, m in shape.members.items():
            if m.serialization.get("location"):
                continue
            xn = m.serialization.get("name", name)
            if m.serialization.get("xmlAttribute"):
                for k, v in elem.attrib.items():
                    if local(k) == xn:
                        out[name] = scalar(m, v)
                continue
            known.add(xn)
            els = children.get(xn)
            if not els:
                continue
            if m.type_name == "list" and m.serialization.get("flattened"):
                out[name] = [parse_xml(m.member, e, f"{path}.{name}[{i}]", extra) for i, e in enumerate(els)]
            elif m.type_name == "map" and m.serialization.get("flattened"):
                out[name] = parse_xml_map(m, els, f"{path}.{name}", extra)
            else:
                out[name] = parse_xml(m, els[0], f"{path}.{name}", extra)
                if len(els) > 1:
                    extra.append((f"{path}.{name}".lstrip("."), "type", f"element <{xn}> given {len(els)} times"))
        for tag in children:
            if tag not in known:
                extra.append((f"{path}.{tag}".lstrip("."), "unknown-member", f"element <{tag}> is not a member of {shape.name}"))
        return out
    if t == "list":
        mn = shape.member.serialization.get("name", "member")
        out = []
        for i, c in enumerate(elem):
            if local(c.tag) != mn:
                extra.append((f"{path}[{i}]".lstrip("."), "unknown-member", f"list element <{local(c.tag)}>, want <{mn}>"))
                continue
            out.append(parse_xml(shape.member, c, f"{path}[{i}]", extra))
        return out
    if t == "map":
        return parse_xml_map(shape, [c for c in elem if local(c.tag) == "entry"], path, extra)
    return scalar(shape, elem.text or "")


def parse_xml_map(shape, entries, path, extra):
    kn = shape.key.serialization.get("name", "key")
    vn = shape.value.serialization.get("name", "value")
    out = {}
    for e in entries:
        k = v = None
        for c in e:
            if local(c.tag) == kn:
                k = c.text or ""
            elif local(c.tag) == vn:
                v = c
        if k is not None:
            out[k] = parse_xml(shape.value, v, f"{path}.{k}", extra) if v is not None else None
    return out


def uri_regex(uri):
    """The path part of a requestUri as a regex, and its literal query part.
    A trailing slash is not significant (botocore's route53 model has
    ".../rrset/", the Smithy model behind aws-sdk-go-v2 ".../rrset": Smithy's
    http trait ignores it in matching), so it is optional on either side."""
    path, _, query = uri.partition("?")
    if len(path) > 1:
        path = path.rstrip("/")
    out, i = "", 0
    while i < len(path):
        if path[i] == "{":
            j = path.index("}", i)
            label = path[i + 1:j]
            if label.endswith("+"):
                out += f"(?P<{_group(label[:-1])}>.+)"
            else:
                out += f"(?P<{_group(label)}>[^/]+)"
            i = j + 1
        else:
            out += regex.escape(path[i])
            i += 1
    lits = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    return regex.compile("^" + out + "/?$"), lits, len(path.replace("{", "").replace("}", ""))


def _group(label):
    return "g_" + "".join(c if c.isalnum() else "_" for c in label)


def match_rest(m, method, path, query, headers):
    """The operation a REST request calls: the most specific URI template.
    Some operations share method and URI in botocore's models (S3's PutObject
    and CopyObject, DeleteObject and AbortMultipartUpload); the SDKs built on
    the Smithy models add "x-id=<Operation>" to the query, which names it,
    and otherwise an operation whose required header or query members are
    missing is not the one called (CopyObject requires x-amz-copy-source)."""
    if query.get("x-id") and query["x-id"][0] in m.operation_names:
        op = m.operation_model(query["x-id"][0])
        mt = uri_regex(op.http["requestUri"])[0].match(path)
        if op.http.get("method") == method and mt:
            return ((0, 0, 0), op, mt)
    best = None
    for name in m.operation_names:
        op = m.operation_model(name)
        if op.http.get("method") != method:
            continue
        rx, lits, weight = uri_regex(op.http["requestUri"])
        mt = rx.match(path)
        if not mt:
            continue
        if any(k not in query or (v and query[k][0] != v) for k, v in lits.items()):
            continue
        located = required_located(op)
        if any(not present for present in (located_present(mb, query, headers) for mb in located)):
            continue
        score = (len(lits), len(located), weight)
        if best is None or score > best[0]:
            best = (score, op, mt)
    return best


def required_located(op):
    shape = op.input_shape
    if shape is None:
        return []
    return [shape.members[n] for n in shape.required_members
            if shape.members[n].serialization.get("location") in ("header", "querystring")]


def located_present(member, query, headers):
    name = member.serialization.get("name", "")
    if member.serialization["location"] == "header":
        return name.lower() in headers
    return name in query


def rest_params(op, mt, x, headers, query, extra):
    shape = op.input_shape
    params = {}
    used_query = set()
    try:
        return rest_members(op, mt, x, headers, query, extra, params, used_query)
    finally:
        unknown_query(op, query, used_query, extra)


def unknown_query(op, query, used, extra):
    """Query parameters no member binds, no literal of the URI names: the SDKs
    built on the Smithy models add x-id=<Operation> to some S3 URIs (it is in
    those models' URIs, not botocore's), which is the only other allowed."""
    shape = op.input_shape
    if shape is not None and any(m.serialization.get("location") == "querystring" and m.type_name == "map"
                                 for m in shape.members.values()):
        return
    lits = uri_regex(op.http["requestUri"])[1]
    for k in sorted(set(query) - used - set(lits) - {"x-id"}):
        extra.append((k, "unknown-member", f"query parameter {k} is not a member of {op.name}'s input"))


def rest_members(op, mt, x, headers, query, extra, params, used_query):
    shape = op.input_shape
    if shape is None:
        return params
    for name, m in shape.members.items():
        loc = m.serialization.get("location")
        ln = m.serialization.get("name", name)
        if loc == "uri":
            g = _group(ln)
            if g in mt.groupdict():
                params[name] = scalar(m, unquote(mt.group(g)))
        elif loc == "querystring":
            if m.type_name == "map":
                continue
            if ln in query:
                used_query.add(ln)
                vals = query[ln]
                params[name] = [scalar(m.member, v) for v in vals] if m.type_name == "list" else header_scalar(m, vals[0], "iso8601")
        elif loc == "header":
            if ln.lower() in headers:
                v = headers[ln.lower()]
                params[name] = [scalar(m.member, s.strip()) for s in v.split(",")] if m.type_name == "list" else header_scalar(m, v, "rfc822")
        elif loc == "headers":
            pre = ln.lower()
            vals = {k[len(pre):]: v for k, v in headers.items() if k.startswith(pre)}
            if vals:
                params[name] = vals
    for name, m in shape.members.items():
        if m.serialization.get("location") == "querystring" and m.type_name == "map":
            rest = {k: v[0] for k, v in query.items() if k not in used_query}
            if rest:
                params[name] = rest
    body = x.get("_body", b"")
    payload = shape.serialization.get("payload")
    if payload:
        pm = shape.members[payload]
        if pm.type_name in ("blob", "string"):
            if body:
                params[payload] = body if pm.type_name == "blob" else body.decode("utf-8", "replace")
        elif body.strip():
            params[payload] = body_params(op, pm, body, f".{payload}", extra)
    elif body.strip():
        located = {n for n, m in shape.members.items() if m.serialization.get("location")}
        got = body_params(op, shape, body, "", extra)
        for k, v in got.items():
            if k in located:
                extra.append((k, "unknown-member", "a member bound to the URI, query or headers given in the body"))
            else:
                params[k] = v
    return params


def header_scalar(shape, text, ts_format):
    if shape.type_name == "timestamp":
        try:
            return parse_timestamp(text)
        except Exception:
            return text
    return scalar(shape, text)


def body_params(op, shape, body, path, extra):
    proto = op.service_model.protocol
    if proto == "rest-json":
        try:
            return parse_json_value(shape, json.loads(body), path, extra)
        except ValueError as e:
            raise Finding("body", f"request body is not JSON: {e}")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as e:
        raise Finding("body", f"request body is not XML: {e}")
    want = shape.serialization.get("name", shape.name)
    if local(root.tag) != want:
        extra.append((path.lstrip("."), "root-element", f"XML root <{local(root.tag)}>, want <{want}>"))
    ns = shape.serialization.get("xmlNamespace", {}).get("uri")
    if ns and not root.tag.startswith("{" + ns + "}"):
        extra.append((path.lstrip("."), "xml-namespace", f"XML root namespace {root.tag.partition('}')[0].lstrip('{') or 'none'}, want {ns}"))
    return parse_xml(shape, root, path, extra)


def identify(x):
    """(service model, operation model, protocol) of an exchange, or a Finding."""
    signing = x.get("service") or ""
    name = SIGNING_NAMES.get(signing, signing)
    headers = x["_headers"]
    if signing == "elasticloadbalancing":
        name = "elbv2" if "Version=2015-12-01" in x.get("query", "") + x["_body"].decode("latin-1") else "elb"
    m = model(name)
    if m is None:
        raise Finding("unknown-service", f"no AWS API model for signing name {signing!r}")
    target = headers.get("x-amz-target")
    if target:
        prefix, _, op = target.rpartition(".")
        if prefix != m.metadata.get("targetPrefix"):
            raise Finding("unknown-operation", f"X-Amz-Target prefix {prefix!r}, the model's is {m.metadata.get('targetPrefix')!r}", op)
        if op not in m.operation_names:
            raise Finding("unknown-operation", f"{m.service_name} has no operation {op!r}", op)
        return m, m.operation_model(op), "json"
    if headers.get("smithy-protocol") == "rpc-v2-cbor":
        op = x["path"].rsplit("/", 1)[-1]
        if op not in m.operation_names:
            raise Finding("unknown-operation", f"{m.service_name} has no operation {op!r}", op)
        return m, m.operation_model(op), "smithy-rpc-v2-cbor"
    form = x["_form"]
    if form is not None and "Action" in form:
        op = form["Action"]
        if op not in m.operation_names:
            raise Finding("unknown-operation", f"{m.service_name} has no operation {op!r}", op)
        if m.protocol not in ("query", "ec2") and "query" not in m.metadata.get("protocols", []):
            raise Finding("protocol", f"{m.service_name} does not speak the query protocol", op)
        return m, m.operation_model(op), "ec2" if m.protocol == "ec2" else "query"
    if m.protocol not in ("rest-xml", "rest-json"):
        raise Finding("unknown-operation", f"{x['method']} {x['path']} names no {m.service_name} operation ({m.protocol} protocol)")
    best = match_rest(m, x["method"], x["_path"], x["_query"], headers)
    if best is None:
        raise Finding("unknown-operation", f"no {m.service_name} operation is {x['method']} {x['path']}?{x.get('query', '')}")
    x["_match"] = best[2]
    return m, best[1], m.protocol


def request_params(x, m, op, protocol):
    extra = []
    if protocol in ("query", "ec2"):
        flat = {k: v for k, v in x["_form"].items() if k not in ("Action", "Version")}
        used = set()
        params = parse_query(op.input_shape, "", flat, used, protocol == "ec2") if op.input_shape else {}
        for k in sorted(set(flat) - used):
            extra.append((k, "unknown-member", f"query parameter {k} is not a member of {op.name}'s input"))
        if x["_form"].get("Version") != m.api_version:
            extra.append(("Version", "version", f"Version={x['_form'].get('Version')!r}, the model's is {m.api_version}"))
        return params, extra
    if protocol == "json":
        body = x["_body"] or b"{}"
        try:
            raw = json.loads(body)
        except ValueError as e:
            raise Finding("body", f"request body is not JSON: {e}")
        return parse_json_value(op.input_shape, raw, "", extra) if op.input_shape else raw, extra
    if protocol == "smithy-rpc-v2-cbor":
        if not x["_body"]:
            return {}, extra
        d = parsers.BaseCBORParser()
        try:
            raw = d.parse_data_item(d.get_peekable_stream_from_bytes(x["_body"]))
        except Exception as e:
            raise Finding("body", f"request body is not CBOR: {e}")
        return raw, extra
    return rest_params(op, x["_match"], x, x["_headers"], x["_query"], extra), extra


# ---------------------------------------------------------------- responses

class _Lenient:
    """Scalars that do not convert stay as they came, for the validator."""

    @parsers._text_content
    def _handle_boolean(self, shape, text):
        return {"true": True, "false": False}.get(text, text)

    @parsers._text_content
    def _handle_integer(self, shape, text):
        try:
            return int(text)
        except ValueError:
            return text

    _handle_long = _handle_integer

    @parsers._text_content
    def _handle_float(self, shape, text):
        try:
            return float(text)
        except ValueError:
            return text

    _handle_double = _handle_float

    @parsers._text_content
    def _handle_timestamp(self, shape, text):
        try:
            return self._timestamp_parser(text)
        except Exception:
            return text


class _LenientJSON:
    def _handle_timestamp(self, shape, value):
        try:
            return self._timestamp_parser(value)
        except Exception:
            return value

    def _handle_blob(self, shape, value):
        return scalar(shape, value) if isinstance(value, str) else value


class QueryParser(_Lenient, parsers.QueryParser):
    pass


class EC2Parser(_Lenient, parsers.EC2QueryParser):
    pass


class RestXMLParser(_Lenient, parsers.RestXMLParser):
    pass


class JSONParser(_LenientJSON, parsers.JSONParser):
    pass


class RestJSONParser(_LenientJSON, parsers.RestJSONParser):
    pass


PARSERS = {"query": QueryParser, "ec2": EC2Parser, "rest-xml": RestXMLParser, "json": JSONParser,
           "rest-json": RestJSONParser, "smithy-rpc-v2-cbor": parsers.RpcV2CBORParser}


def check_response(x, m, op, protocol):
    status = x.get("status") or 0
    body = base64.b64decode(x.get("response_body") or "")
    headers = HeadersDict(x.get("response_headers") or {})
    resp = {"status_code": status, "headers": headers, "body": body, "context": {"operation_name": op.name}}
    out = []
    parser = PARSERS[protocol]()
    if status >= 300:
        try:
            parsed = parser.parse(resp, None)
        except Exception as e:
            return [("", "error-body", f"HTTP {status}: the error does not parse: {e}")]
        code = (parsed.get("Error") or {}).get("Code") or ""
        if not code:
            return [("", "error-code", f"HTTP {status} without an error code: {body[:200]!r}")]
        modeled = {s.error_code: s for s in op.error_shapes}
        if code in modeled:
            want = modeled[code].metadata.get("error", {}).get("httpStatusCode")
            if want and want != status:
                out.append(("", "error-status", f"{code} answered with HTTP {status}, the model gives it {want}"))
        elif code not in COMMON_ERRORS and m.service_name not in UNMODELED_ERROR_SERVICES:
            out.append(("", "error-code", f"{code} is neither an error {op.name} models ({', '.join(sorted(modeled)) or 'none'}) nor a common AWS error"))
        return out
    if op.output_shape is None:
        return out
    if op.has_streaming_output:
        return out
    try:
        parsed = parser.parse(resp, op.output_shape)
    except Exception as e:
        return [("", "body", f"the answer does not parse as {op.output_shape.name}: {e}")]
    if (m.service_name, op.name) in AFTER_PARSE:
        AFTER_PARSE[(m.service_name, op.name)](parsed, http_response=_Body(body))
    parsed.pop("ResponseMetadata", None)
    return validate(parsed, op.output_shape)


class _Body:
    """What botocore's after-parse handlers read of an HTTP response."""

    def __init__(self, content):
        self.content = self.raw = content


# Operations whose answers the model cannot describe; botocore fixes them up
# after parsing with these handlers (botocore/handlers.py), and so does this.
AFTER_PARSE = {("s3", "GetBucketLocation"): handlers.parse_get_bucket_location}


# ---------------------------------------------------------------- driver

def prepare(x):
    x["_body"] = base64.b64decode(x.get("request_body") or "")
    x["_headers"] = {k.lower(): v for k, v in (x.get("request_headers") or {}).items()}
    x["_path"] = unquote(x.get("path") or "/")
    q = {}
    for k, v in parse_qsl(x.get("query") or "", keep_blank_values=True):
        q.setdefault(k, []).append(v)
    x["_query"] = q
    form = None
    ctype = x["_headers"].get("content-type", "")
    if ctype.startswith("application/x-www-form-urlencoded") or "Action" in q:
        form = {k: v[0] for k, v in q.items()}
        if ctype.startswith("application/x-www-form-urlencoded"):
            form.update(dict(parse_qsl(x["_body"].decode("utf-8", "replace"), keep_blank_values=True)))
    x["_form"] = form


def jsonable(v):
    if isinstance(v, dict):
        return {k: jsonable(e) for k, e in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(e) for e in v]
    if isinstance(v, datetime.datetime):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    return v


def check(exchanges, allowlist=()):
    findings, excused, seen = [], [], []
    n_req = n_resp = 0
    for x in exchanges:
        prepare(x)
        where = {"seq": x.get("seq"), "region": x.get("region"), "user_agent": x.get("user_agent", "")}
        try:
            m, op, protocol = identify(x)
        except Finding as f:
            findings.append(dict(where, operation=f"{x.get('service')}:{f.member or x.get('operation')}", direction="request", member="", rule=f.rule, detail=f.detail))
            continue
        name = f"{m.service_name}:{op.name}"
        rec = {"seq": x.get("seq"), "service": m.service_name, "signing_name": m.signing_name, "operation": op.name,
               "region": x.get("region"), "user_agent": x.get("user_agent", ""), "params": None}
        seen.append(rec)
        problems = []
        if x.get("truncated"):
            continue  # not whole (the client died mid-request): nothing to check
        try:
            params, extra = request_params(x, m, op, protocol)
            rec["params"] = jsonable(params)
            n_req += 1
            problems += [("request",) + p for p in extra]
            problems += [("request",) + p for p in validate(params, op.input_shape)]
        except Finding as f:
            problems.append(("request", f.member, f.rule, f.detail))
        if x.get("answered"):
            n_resp += 1
            problems += [("response",) + p for p in check_response(x, m, op, protocol)]
        for direction, member, rule, detail in problems:
            f = dict(where, operation=name, direction=direction, member=member, rule=rule, detail=detail)
            entry = allowed(f, allowlist)
            if entry is not None:
                excused.append(dict(f, reason=entry["reason"]))
            else:
                findings.append(f)
    return {"requests_checked": n_req, "responses_checked": n_resp, "findings": findings, "allowlisted": excused, "exchanges": seen}


def member_glob(p):
    """An allowlist member: literal, except that * stands for anything (list
    indexes: "HostedZones[*].Id")."""
    return regex.compile(".*".join(regex.escape(part) for part in p.split("*")))


def allowed(f, allowlist):
    """The allowlist entry that excuses a finding: same operation, direction
    and rule, a member its pattern matches, and, when the entry names a value,
    that value (a finding's detail starts with the offending value)."""
    for e in allowlist:
        if (e["operation"] == f["operation"] and e["direction"] == f["direction"] and e["rule"] == f["rule"]
                and member_glob(e["member"]).fullmatch(f["member"])
                and ("value" not in e or f["detail"].startswith(repr(e["value"]) + " "))):
            return e
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check recorded AWS exchanges against botocore's API models.")
    ap.add_argument("exchanges")
    ap.add_argument("--allowlist")
    a = ap.parse_args(argv)
    allowlist = []
    if a.allowlist:
        with open(a.allowlist) as f:
            allowlist = json.load(f)
        for e in allowlist:
            if not e.get("reason"):
                sys.exit(f"allowlist entry without a reason: {e}")
    xs = []
    with open(a.exchanges) as f:
        for line in f:
            if line.strip():
                xs.append(json.loads(line))
    json.dump(check(xs, allowlist), sys.stdout, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
