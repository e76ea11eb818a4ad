"""Durations in Go syntax ("90s", "1h30m", "250ms").

The schema format "duration" means a string Go's time.ParseDuration accepts,
and Go plugins write duration outputs with time.Duration.String. A plugin in
another language has to read and write the same syntax, or the host and
other plugins would disagree about "1.5h".
"""

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # micro sign
    "\u03bcs": MICROSECOND,  # Greek mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}

_LIMIT = 1 << 63


class DurationError(ValueError):
    pass


def parse(s):
    """Returns the duration s denotes, in nanoseconds (an int).

    Accepts exactly what time.ParseDuration accepts, with its arithmetic
    (a fraction is scaled through a float64, as Go does): an optional sign,
    then one or more decimal numbers each with a unit (ns, us, \u00b5s, ms,
    s, m, h); "0" needs no unit.
    """
    if not isinstance(s, str):
        raise DurationError("not a string")
    orig, neg = s, False
    if s and s[0] in "+-":
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if s == "":
        raise DurationError("invalid duration %r" % orig)
    d = 0
    while s:
        if not (s[0] == "." or s[0].isdigit() and s[0].isascii()):
            raise DurationError("invalid duration %r" % orig)
        n = len(s)
        v, s = _leading_int(s, orig)
        pre = len(s) != n
        f, scale, post = 0, 1.0, False
        if s and s[0] == ".":
            s = s[1:]
            n = len(s)
            f, scale, s = _leading_fraction(s)
            post = len(s) != n
        if not pre and not post:
            raise DurationError("invalid duration %r" % orig)
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        if i == 0:
            raise DurationError("missing unit in duration %r" % orig)
        unit_name, s = s[:i], s[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise DurationError("unknown unit %r in duration %r" % (unit_name, orig))
        if v > _LIMIT // unit:
            raise DurationError("invalid duration %r" % orig)
        v *= unit
        if f > 0:
            v += int(float(f) * (float(unit) / scale))
            if v > _LIMIT:
                raise DurationError("invalid duration %r" % orig)
        d += v
        if d > _LIMIT:
            raise DurationError("invalid duration %r" % orig)
    if neg:
        return -d
    if d > _LIMIT - 1:
        raise DurationError("invalid duration %r" % orig)
    return d


def _leading_int(s, orig):
    i, x = 0, 0
    while i < len(s) and "0" <= s[i] <= "9":
        if x > (_LIMIT - 1) // 10:
            raise DurationError("invalid duration %r" % orig)
        x = x * 10 + ord(s[i]) - ord("0")
        if x > _LIMIT:
            raise DurationError("invalid duration %r" % orig)
        i += 1
    return x, s[i:]


def _leading_fraction(s):
    """Digits after the point, as Go reads them: (value, scale, rest)."""
    i, x, scale, overflow = 0, 0, 1.0, False
    while i < len(s) and "0" <= s[i] <= "9":
        if not overflow:
            if x > (_LIMIT - 1) // 10:
                overflow = True
            else:
                y = x * 10 + ord(s[i]) - ord("0")
                if y > _LIMIT:
                    overflow = True
                else:
                    x = y
                    scale *= 10
        i += 1
    return x, scale, s[i:]


def format(ns):
    """Writes ns nanoseconds as Go's time.Duration.String does."""
    ns = int(ns)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < SECOND:
        # Below a second Go uses the largest unit that keeps an integer part.
        if u < MICROSECOND:
            return "%s%dns" % (sign, u)
        if u < MILLISECOND:
            return sign + _fraction(u, MICROSECOND) + "\u00b5s"
        return sign + _fraction(u, MILLISECOND) + "ms"
    out = _fraction(u % MINUTE, SECOND) + "s"
    u //= MINUTE
    if u:
        out = "%dm" % (u % 60) + out
        u //= 60
        if u:
            out = "%dh" % u + out
    return sign + out


def _fraction(v, unit):
    """v/unit in decimal, with trailing zeros (and a bare point) removed."""
    whole, rest = divmod(v, unit)
    if rest == 0:
        return str(whole)
    digits = len(str(unit)) - 1
    frac = str(rest).rjust(digits, "0").rstrip("0")
    return "%d.%s" % (whole, frac)
