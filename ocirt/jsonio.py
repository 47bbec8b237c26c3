"""JSON for the hot path, without the json package.

`import json` pulls in `re` and `enum` and costs 10-15 ms here, more than the rest of a
`state` or `kill` call. The C accelerator `_json` that json itself uses needs none of them: this
module drives its scanner and encoder directly and produces the same text as json.loads /
json.dumps. Malformed input falls back to the json package, only to raise its usual error (with
line and column). Like Go's decoder (runc's), loads refuses NaN and Infinity and numbers beyond
float64 (json.loads takes them), naming where they are.
"""

from __future__ import annotations

import _json

_WS = " \t\n\r"


_INF = float("inf")


class BadNumber(ValueError):
    """A number JSON allows but Go's decoder (and so runc) refuses: NaN and Infinity, which
    are not JSON at all, a float beyond float64, or an integer too long for Python's
    int(). `parts` is its JSON path (keys and indexes)."""

    def __init__(self, parts: list[str | int], message: str) -> None:
        super().__init__(message)
        self.parts = parts
        self.message = message


class _Bad:
    """Stands for a refused number while the slow path looks for where it is."""

    def __init__(self, message: str) -> None:
        self.message = message


def _reject_constant(name: str) -> float:
    raise ValueError(f"invalid JSON constant {name}")


def _float(text: str) -> float:
    f = float(text)
    if f in (_INF, -_INF):
        raise ValueError(f"number {text} is out of range")
    return f


class _Context:
    # The attributes _json.make_scanner reads from a JSONDecoder.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = staticmethod(_float)  # called only for numbers with a fraction or exponent
    parse_int = int
    parse_constant = staticmethod(_reject_constant)
    memo: dict = {}


_scan = _json.make_scanner(_Context())


def loads(data: str | bytes) -> object:
    s = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    n = len(s)
    i = 0
    while i < n and s[i] in _WS:
        i += 1
    try:
        obj, end = _scan(s, i)
    except (StopIteration, ValueError, SystemError):
        # The C scanner builds its error from json.decoder, which it only finds when that
        # module is already imported; otherwise it fails with SystemError. Either way the
        # json package gives the real message (with line and column).
        return _slow_loads(s)
    while end < n and s[end] in _WS:
        end += 1
    if end != n:
        return _slow_loads(s)
    return obj


def _slow_loads(s: str) -> object:
    """Raise the precise error for a text the fast path refused: json's own (with line and
    column) for bad syntax, BadNumber (with the JSON path) for a refused number."""
    import json
    doc = json.loads(s, parse_constant=_mark_constant, parse_float=_mark_float,
                     parse_int=_mark_int)
    _raise_first_bad(doc, [])
    return doc


def _mark_constant(name: str) -> _Bad:
    return _Bad(f"{name} is not a JSON number")


def _mark_float(text: str) -> float | _Bad:
    try:
        return _float(text)
    except ValueError as e:
        return _Bad(str(e))


def _mark_int(text: str) -> int | _Bad:
    try:
        return int(text)
    except ValueError:  # longer than sys.get_int_max_str_digits()
        digits = len(text.lstrip("-"))
        return _Bad(f"number {text[:20]}... ({digits} digits) is out of range")


def _raise_first_bad(v: object, parts: list[str | int]) -> None:
    if isinstance(v, _Bad):
        raise BadNumber(parts, v.message)
    items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
    for k, x in items:
        if isinstance(x, (_Bad, dict, list)):
            _raise_first_bad(x, parts + [k])


def _no_default(o: object) -> object:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


_compact = _json.make_encoder(None, _no_default, _json.encode_basestring_ascii, None, ":", ",",
                              False, False, True)
_spaced = _json.make_encoder(None, _no_default, _json.encode_basestring_ascii, None, ": ", ", ",
                             False, False, True)


def dumps(obj: object, *, indent: int | str | None = None, compact: bool = False) -> str:
    """json.dumps(obj) (", " and ": " separators), json.dumps(obj, separators=(",", ":")) with
    compact=True, or json.dumps(obj, indent=indent)."""
    if indent is None:
        return "".join((_compact if compact else _spaced)(obj, 0))
    unit = indent if isinstance(indent, str) else " " * indent
    out: list[str] = []
    _pretty(obj, unit, "", out)
    return "".join(out)


def _pretty(obj: object, unit: str, cur: str, out: list[str]) -> None:
    if isinstance(obj, dict):
        if not obj:
            out.append("{}")
            return
        inner = cur + unit
        out.append("{\n")
        first = True
        for k, v in obj.items():
            if not first:
                out.append(",\n")
            first = False
            out.append(inner)
            out.append(_json.encode_basestring_ascii(k if isinstance(k, str) else _key(k)))
            out.append(": ")
            _pretty(v, unit, inner, out)
        out.append("\n" + cur + "}")
    elif isinstance(obj, (list, tuple)):
        if not obj:
            out.append("[]")
            return
        inner = cur + unit
        out.append("[\n")
        for i, v in enumerate(obj):
            if i:
                out.append(",\n")
            out.append(inner)
            _pretty(v, unit, inner, out)
        out.append("\n" + cur + "]")
    else:
        out.append("".join(_spaced(obj, 0)))


def _key(k: object) -> str:
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, (int, float)):
        return repr(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")
