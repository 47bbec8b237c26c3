"""repr() for error messages about values of any size."""

from __future__ import annotations

LIMIT = 100


def short_repr(x: object) -> str:
    """repr(x), cut to LIMIT characters; built piece by piece, so a huge or deeply nested value
    costs no more than that (a whole repr could take seconds, or recurse too deeply)."""
    out: list[str] = []
    _repr_into(x, out, LIMIT + 1)
    s = "".join(out)
    return s if len(s) <= LIMIT else s[:LIMIT - 4] + "..."


def _repr_into(x: object, out: list[str], budget: int) -> int:
    """Append repr(x), or at least its first `budget` characters, to out; return what is left
    of the budget."""
    if isinstance(x, (list, dict)):
        is_dict = isinstance(x, dict)
        out.append("{" if is_dict else "[")
        budget -= 1
        for i, item in enumerate(x.items() if is_dict else x):
            if budget <= 0:
                return 0
            if i:
                out.append(", ")
                budget -= 2
            if is_dict:
                budget = _repr_into(item[0], out, budget)
                out.append(": ")
                budget = _repr_into(item[1], out, budget - 2)
            else:
                budget = _repr_into(item, out, budget)
        out.append("}" if is_dict else "]")
        return budget - 1
    if isinstance(x, str) and len(x) > budget:
        x = x[:budget]  # its repr is still longer than the budget: the end is cut anyway
    s = repr(x)
    out.append(s)
    return budget - len(s)
