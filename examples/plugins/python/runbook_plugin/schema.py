"""The JSON Schema subset runbook uses for action parameters and outputs.

It is the subset sdk/schema produces from Go structs: type, description,
enum, default, format ("duration"), properties, required,
additionalProperties (false or a schema), items, minimum, minItems,
writeOnly (a secret), and "x-order" (declaration order, for documentation).
A plugin in another language writes its schemas as literal JSON in this
shape; helpers below build the common cases.

validate() checks a decoded JSON value against such a schema with the same
rules and messages as the host, so a plugin's Validate agrees with what
`runbook validate` says.
"""

import math

from . import duration


def obj(properties, required=(), doc=""):
    """A closed object (unknown properties are errors), properties in order.

    properties is a list of (name, schema) pairs.
    """
    s = {
        "type": "object",
        "properties": {name: ps for name, ps in properties},
        "additionalProperties": False,
        "x-order": [name for name, _ in properties],
    }
    if required:
        s["required"] = list(required)
    if doc:
        s["description"] = doc
    return s


def string(doc="", enum=None, default=None, secret=False):
    return _scalar("string", doc, enum, default, secret=secret)


def integer(doc="", default=None, minimum=None):
    return _scalar("integer", doc, None, default, minimum=minimum)


def number(doc="", default=None, minimum=None):
    return _scalar("number", doc, None, default, minimum=minimum)


def boolean(doc="", default=None):
    return _scalar("boolean", doc, None, default)


def duration_string(doc="", default=None):
    """A Go duration string ("90s"); its default is checked here."""
    if default is not None:
        duration.parse(default)
    s = _scalar("string", doc, None, default)
    s["format"] = "duration"
    return s


def array(items, doc="", min_items=None):
    s = {"type": "array", "items": items}
    if doc:
        s["description"] = doc
    if min_items is not None:
        s["minItems"] = min_items
    return s


def _scalar(typ, doc, enum, default, secret=False, minimum=None):
    s = {"type": typ}
    if doc:
        s["description"] = doc
    if enum is not None:
        s["enum"] = list(enum)
    if default is not None:
        s["default"] = default
    if secret:
        s["writeOnly"] = True
    if minimum is not None:
        s["minimum"] = float(minimum)
    return s


def escape_pointer(segment):
    """Escapes one JSON pointer (RFC 6901) segment."""
    return segment.replace("~", "~0").replace("/", "~1")


class Problem:
    """One way a value does not match its schema, at a JSON pointer."""

    def __init__(self, path, message):
        self.path = path
        self.message = message

    def __str__(self):
        return self.path + ": " + self.message if self.path else self.message

    def __repr__(self):
        return "Problem(%r, %r)" % (self.path, self.message)


def validate(schema, value, unknown=frozenset()):
    """Returns the Problems of value against schema.

    Values at the JSON pointers in unknown are known only at run time (they
    are null in the request) and are accepted as they are.
    """
    problems = []
    _validate(schema, value, "", frozenset(unknown), problems)
    return problems


def _validate(s, v, path, unknown, out):
    if s is None or path in unknown:
        return

    def add(msg):
        out.append(Problem(path, msg))

    typ = s.get("type", "")
    if typ and not _type_matches(s, v):
        add("must be %s, not %s" % (_article(s), describe(v)))
        return
    enum = s.get("enum")
    if enum and not _in_enum(enum, v):
        add("must be one of %s, not %s" % (", ".join(_short(e) for e in enum), _short(v)))
        return
    if isinstance(v, str):
        if s.get("format") == "duration":
            try:
                duration.parse(v)
            except duration.DurationError:
                add("%s is not a duration (use Go syntax such as 90s, 15m or 1h30m)" % _quote(v))
    elif isinstance(v, dict):
        for r in s.get("required", []):
            if r not in v:
                add("missing required property %s" % _quote(r))
        for k in sorted(v):
            child = path + "/" + escape_pointer(k)
            ks, allowed = _property(s, k)
            if not allowed:
                msg = "unknown property %s" % _quote(k)
                sug = suggest(k, property_names(s))
                if sug:
                    msg += " (did you mean %s?)" % _quote(sug)
                out.append(Problem(child, msg))
                continue
            _validate(ks, v[k], child, unknown, out)
    elif isinstance(v, list):
        mi = s.get("minItems")
        if mi is not None and len(v) < mi:
            add("must have at least %d item(s)" % mi)
        for i, e in enumerate(v):
            _validate(s.get("items"), e, "%s/%d" % (path, i), unknown, out)
    minimum = s.get("minimum")
    if minimum is not None and _is_number(v) and v < minimum:
        add("must be at least %s" % _num(minimum))


def property_names(s):
    """Declared property names: x-order first, then the rest sorted."""
    props = s.get("properties", {})
    order = [n for n in s.get("x-order", []) if n in props]
    return order + sorted(n for n in props if n not in order)


def _property(s, name):
    props = s.get("properties", {})
    if name in props:
        return props[name], True
    ap = s.get("additionalProperties", True)
    if ap is False:
        return None, False
    if isinstance(ap, dict):
        return ap, True
    return {}, True


def _is_number(v):
    # bool is an int in Python; in JSON it is not a number.
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_matches(s, v):
    t = s["type"]
    if t == "string":
        return isinstance(v, str)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "number":
        return _is_number(v)
    if t == "integer":
        return _is_number(v) and math.isfinite(v) and v == math.trunc(v)
    if t == "array":
        return isinstance(v, list)
    if t == "object":
        return isinstance(v, dict)
    return True


def _in_enum(enum, v):
    for e in enum:
        if _is_number(e) and _is_number(v):
            if e == v:
                return True
        elif type(e) is type(v) and e == v:
            return True
    return False


def _article(s):
    t = s["type"]
    if t == "integer":
        return "an integer"
    if t == "array":
        return "a list"
    if t == "object":
        return "a mapping"
    if t == "boolean":
        return "a boolean (true or false)"
    if t == "string":
        return "a duration string" if s.get("format") == "duration" else "a string"
    return "a " + t


def describe(v):
    """Names the kind of a JSON value for messages."""
    if v is None:
        return "null"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if _is_number(v):
        return "an integer" if math.isfinite(v) and v == math.trunc(v) else "a number"
    return type(v).__name__


def _quote(s):
    # Go's %q for the plain strings that appear in parameter names and values.
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _short(v):
    if isinstance(v, str):
        return _quote(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if _is_number(v):
        return _num(v)
    return str(v)


def _num(v):
    # Go prints 3.0 as 3.
    if isinstance(v, float) and math.isfinite(v) and v == math.trunc(v):
        return str(int(v))
    return str(v)


def suggest(name, candidates):
    """The candidate closest to name, if close enough to be a typo, or ""."""
    best, best_d = "", -1
    for c in sorted(candidates):
        d = _distance(name, c)
        if best_d < 0 or d < best_d:
            best, best_d = c, d
    limit = min(max(len(name) // 3, 1), 3)
    return best if 0 <= best_d <= limit else ""


def _distance(a, b):
    """Optimal string alignment distance: edits plus adjacent swaps."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def with_defaults(s, v, unknown=frozenset(), path=""):
    """Returns v with the defaults of absent properties filled in.

    Durations stay strings (parse them with duration.parse where used).
    """
    if s is None or path in unknown:
        return v
    if isinstance(v, dict):
        out = {}
        for k, e in v.items():
            ks, _ = _property(s, k)
            out[k] = with_defaults(ks, e, unknown, path + "/" + escape_pointer(k))
        for k in property_names(s):
            ps = s["properties"][k]
            if k not in out and "default" in ps:
                out[k] = ps["default"]
        return out
    if isinstance(v, list):
        return [with_defaults(s.get("items"), e, unknown, "%s/%d" % (path, i)) for i, e in enumerate(v)]
    if v is None and s.get("type") == "object" and s.get("properties"):
        return with_defaults(s, {}, unknown, path)
    return v
