"""Smithy RPC v2 CBOR for CloudWatch.

aws-sdk-go-v2's CloudWatch client (and botocore's) now speaks the Smithy RPC v2 CBOR
protocol by default: POST /service/GraniteServiceVersion20100801/operation/<Op> with
a CBOR body and a `Smithy-Protocol: rpc-v2-cbor` header. moto 5.2.5 serves CloudWatch
over query and JSON 1.0 only and answers CBOR requests 404. This WSGI layer
translates: the CBOR request becomes the equivalent JSON 1.0 request (X-Amz-Target
GraniteServiceVersion20100801.<Op>) for moto, and moto's JSON answer (or error)
becomes CBOR, serialized with botocore's CBOR serializer against the operation's
output shape so that timestamps get CBOR tag 1 as the SDKs expect. CBOR decoding is
botocore's too.
"""

import datetime
import io
import json

from botocore.parsers import BaseCBORParser
from botocore.serialize import RpcV2CBORSerializer as CBORSerializer
from botocore.session import get_session

# Smithy service name in the path -> botocore service name.
SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}

_models = {}


def _model(name):
    if name not in _models:
        _models[name] = get_session().get_service_model(name)
    return _models[name]


def _jsonable(v):
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return v.timestamp()
    if isinstance(v, (bytes, bytearray)):
        import base64

        return base64.b64encode(v).decode()
    raise TypeError(f"not JSON-able: {type(v)}")


def decode(body):
    if not body:
        return {}
    d = BaseCBORParser()
    return d.parse_data_item(d.get_peekable_stream_from_bytes(body))


def encode(value, shape):
    out = bytearray()
    s = CBORSerializer()
    if shape is None:
        s._serialize_type_structure(out, {}, _EmptyShape(), None)
    else:
        s._serialize_data_item(out, _prune(value, shape), shape)
    return bytes(out)


class _EmptyShape:
    members = {}


def _prune(value, shape):
    """Drop what the shape does not have (moto's extras) and None values."""
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        return {k: _prune(v, shape.members[k]) for k, v in value.items() if k in shape.members and v is not None}
    if t == "list" and isinstance(value, list):
        return [_prune(v, shape.member) for v in value]
    if t == "map" and isinstance(value, dict):
        return {k: _prune(v, shape.value) for k, v in value.items()}
    if t in ("double", "float") and isinstance(value, int):
        return float(value)
    if t == "blob" and isinstance(value, str):
        import base64

        return base64.b64decode(value)
    return value


def _error_map(body):
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        doc = {}
    code = doc.get("__type") or doc.get("code") or "InternalFailure"
    code = code.split("#")[-1].split(":")[0]
    return {"__type": code, "message": doc.get("message") or doc.get("Message") or ""}


def _encode_error(doc):
    out = bytearray()
    s = CBORSerializer()
    out.extend(s._get_initial_byte(s.MAP_MAJOR_TYPE, len(doc)))
    for k, v in doc.items():
        s._serialize_type_string(out, k, None, None)
        s._serialize_type_string(out, v, None, None)
    return bytes(out)


class RpcV2CborMiddleware:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not (environ.get("HTTP_SMITHY_PROTOCOL", "").lower() == "rpc-v2-cbor" and path.startswith("/service/")):
            return self.app(environ, start_response)
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[2] != "operation" or parts[1] not in SERVICES:
            return self.app(environ, start_response)
        smithy_name, op = parts[1], parts[3]
        model = _model(SERVICES[smithy_name])
        try:
            size = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0
        raw = environ["wsgi.input"].read(size) if size else b""
        try:
            params = decode(raw)
            op_model = model.operation_model(op)
        except Exception as e:
            return self._reply(start_response, "400 Bad Request", _encode_error({"__type": "SerializationException", "message": str(e)}))

        body = json.dumps(params, default=_jsonable).encode()
        env = dict(environ)
        env.update(
            {
                "PATH_INFO": "/",
                "REQUEST_METHOD": "POST",
                "CONTENT_TYPE": "application/x-amz-json-1.0",
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_X_AMZ_TARGET": f"{smithy_name}.{op}",
                "wsgi.input": io.BytesIO(body),
            }
        )
        env.pop("HTTP_SMITHY_PROTOCOL", None)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = self.app(env, capture)
        try:
            out = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status = captured.get("status", "500 Internal Server Error")
        if status.startswith("2"):
            try:
                doc = json.loads(out or b"{}")
                payload = encode(doc, op_model.output_shape)
            except Exception as e:
                return self._reply(start_response, "500 Internal Server Error", _encode_error({"__type": "InternalFailure", "message": f"CBOR translation: {e}"}))
            return self._reply(start_response, status, payload)
        return self._reply(start_response, status, _encode_error(_error_map(out)))

    @staticmethod
    def _reply(start_response, status, payload):
        start_response(
            status,
            [
                ("Content-Type", "application/cbor"),
                ("Smithy-Protocol", "rpc-v2-cbor"),
                ("Content-Length", str(len(payload))),
            ],
        )
        return [payload]
