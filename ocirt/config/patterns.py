"""`search(pattern, text)` for the generated validators, without importing `re`.

`re` (and the enum, collections and functools it pulls in) costs more start-up time than
validating a whole config. The patterns in specs/ are anchored sequences of literal characters
and character classes, each optionally repeated with * or +; those are compiled here by hand
into a small backtracking matcher with exactly re.search's result (including `$` matching
before one trailing newline). Any other pattern falls back to `re`.
"""

from __future__ import annotations

_compiled: dict[str, object] = {}


class _Unsupported(Exception):
    pass


def _parse_class(p: str, i: int) -> tuple[tuple[bool, frozenset[str], tuple], int]:
    """[...] starting at p[i] == '['; returns ((negated, chars, ranges), next index)."""
    i += 1
    neg = False
    if i < len(p) and p[i] == "^":
        neg = True
        i += 1
    chars: set[str] = set()
    ranges: list[tuple[str, str]] = []
    first = True
    while i < len(p) and (p[i] != "]" or first):
        first = False
        c = p[i]
        if c == "\\":
            i += 1
            esc = p[i] if i < len(p) else ""
            c = {"n": "\n", "t": "\t", "r": "\r"}.get(esc, esc)
            if esc.isalnum() and esc not in "ntr":
                raise _Unsupported(p)  # \d, \w, ... classes
        if i + 2 < len(p) and p[i + 1] == "-" and p[i + 2] != "]":
            hi = p[i + 2]
            if hi == "\\":
                raise _Unsupported(p)
            ranges.append((c, hi))
            i += 3
            continue
        chars.add(c)
        i += 1
    if i >= len(p):
        raise _Unsupported(p)
    return (neg, frozenset(chars), tuple(ranges)), i + 1


def _compile(p: str) -> list[tuple[object, str]]:
    if len(p) < 2 or p[0] != "^" or p[-1] != "$" or p.endswith("\\$"):
        raise _Unsupported(p)
    body = p[1:-1]
    atoms: list[tuple[object, str]] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "[":
            atom, i = _parse_class(body, i)
        elif c == "\\":
            if i + 1 >= len(body) or body[i + 1].isalnum():
                raise _Unsupported(p)
            atom, i = body[i + 1], i + 2
        elif c in ".()|?{}^$*+":
            raise _Unsupported(p)
        else:
            atom, i = c, i + 1
        quant = ""
        if i < len(body) and body[i] in "*+":
            quant = body[i]
            i += 1
        if i < len(body) and body[i] in "?{":
            raise _Unsupported(p)
        atoms.append((atom, quant))
    return atoms


def _one(atom: object, ch: str) -> bool:
    if isinstance(atom, str):
        return ch == atom
    neg, chars, ranges = atom  # type: ignore[misc]
    hit = ch in chars or any(lo <= ch <= hi for lo, hi in ranges)
    return hit != neg


def _match(atoms: list, k: int, s: str, j: int) -> bool:
    if k == len(atoms):
        return j == len(s)
    atom, quant = atoms[k]
    if not quant:
        return j < len(s) and _one(atom, s[j]) and _match(atoms, k + 1, s, j + 1)
    end = j
    while end < len(s) and _one(atom, s[end]):
        end += 1
    low = j + 1 if quant == "+" else j
    for stop in range(end, low - 1, -1):  # greedy, then back off
        if _match(atoms, k + 1, s, stop):
            return True
    return False


def search(pattern: str, text: str) -> object | None:
    prog = _compiled.get(pattern)
    if prog is None:
        try:
            prog = _compile(pattern)
        except _Unsupported:
            prog = False
        _compiled[pattern] = prog
    if prog is False:
        import re
        return re.search(pattern, text)
    if _match(prog, 0, text, 0) or (text.endswith("\n") and _match(prog, 0, text[:-1], 0)):
        return True
    return None
