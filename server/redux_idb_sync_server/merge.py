"""Field patches and the server's three-way field merge (docs/protocol.md, "Patches"). Pure:
no Flask, no storage; the same rules as the client's src/utils/fieldPatch.ts.

A field patch is an RFC 7396 merge patch (``patch``) plus the base's values of the fields it
changes (``base``, same keys at every level, ``None`` standing for "absent"). Objects are
containers; everything else (numbers, strings, booleans, lists) is a leaf, replaced whole. Both
``patch[k]`` and ``base[k]`` are objects exactly when the change is inside ``k``.

Merging a patch onto the server's current item needs no old versions: a changed field whose
current value is still the base's takes the patch's value; one already holding the patch's value
is agreed; anything else is a conflict at that path. Every other field keeps the server's value,
so fields changed on only one side merge without a conflict.
"""

UNSAFE_KEYS = frozenset(("__proto__", "constructor", "prototype"))

__all__ = ["apply_merge_patch", "malformed_patch", "merge_patch_onto", "pointer", "three_way_merge"]


def _is_object(value):
    return isinstance(value, dict)


def _same(a, b):
    # JSON equality: 1 == 1.0 as JSON numbers, but True is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return a == b  # numbers, None


def apply_merge_patch(target, patch):
    """RFC 7396."""
    if not _is_object(patch):
        return patch
    result = dict(target) if _is_object(target) else {}
    for key, value in patch.items():
        if key in UNSAFE_KEYS:
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def malformed_patch(patch, base):
    """Why ``patch`` and ``base`` are not a well-formed field patch, or None. Iterative."""
    if not _is_object(patch):
        return "patch must be a JSON object"
    if not _is_object(base):
        return "base must be a JSON object"
    stack = [(patch, base, "")]
    while stack:
        p, b, at = stack.pop()
        if p.keys() != b.keys():
            return "patch and base must name the same fields" + (f" at {at}" if at else "")
        for key in p:
            if key in UNSAFE_KEYS:
                return f'patch names a forbidden key "{key}"'
            if _is_object(p[key]) and _is_object(b[key]):
                stack.append((p[key], b[key], f"{at}/{key}"))
    return None


_ABSENT = object()


def merge_patch_onto(current, patch, base, force=False):
    """Merges a well-formed field patch onto ``current`` (the server's item; None when it has
    none). Returns ``(merged, conflicts)``: ``conflicts`` lists the paths (lists of keys) changed
    on both sides to different values, where ``merged`` keeps the server's value. ``force`` takes
    the patch's value everywhere."""
    conflicts = []
    merged = _merge_level(current if _is_object(current) else {}, patch, base, [], conflicts, force)
    return merged, conflicts


def _merge_level(current, patch, base, at, conflicts, force):
    result = dict(current)
    for key, change in patch.items():
        old = base[key]
        path = at + [key]
        now = current.get(key, _ABSENT)
        if _is_object(change) and _is_object(now):
            # Both sides hold an object here: merge inside it. A base that was not an object
            # means every field inside is new on both sides.
            inner_base = old if _is_object(old) else {k: None for k in change}
            result[key] = _merge_level(now, change, inner_base, path, conflicts, force)
            continue
        if _is_object(change) and _is_object(old):
            # The server removed the container, or replaced it with a leaf, while this side
            # changed inside it.
            if force:
                result[key] = apply_merge_patch(None if now is _ABSENT else now, change)
            else:
                conflicts.append(path)
            continue
        wanted = _ABSENT if change is None else apply_merge_patch(None, change)
        unchanged = (now is _ABSENT) if old is None else (now is not _ABSENT and _same(now, old))
        agreed = (now is _ABSENT) if wanted is _ABSENT else (now is not _ABSENT and _same(now, wanted))
        if force or unchanged or agreed:
            if wanted is _ABSENT:
                result.pop(key, None)
            else:
                result[key] = wanted
        else:
            conflicts.append(path)
    return result


def three_way_merge(base, local, server, choose):
    """Three-way merge of whole values at field level (the reference the tests compare with):
    a path changed on one side takes that side's value; changed on both sides to different
    values, ``choose(path)`` returns "local" or "server". ``_ABSENT``-free: pass None for a
    missing item. Returns ``(merged, conflicts)``."""
    conflicts = []
    merged = _merge3(_ABSENT if base is None else base, _ABSENT if local is None else local, _ABSENT if server is None else server, [], conflicts, choose)
    return (None if merged is _ABSENT else merged), conflicts


def _same3(a, b):
    if a is _ABSENT or b is _ABSENT:
        return a is b
    return _same(a, b)


def _merge3(base, local, server, at, conflicts, choose):
    if _same3(local, server):
        return local
    if _same3(base, local):
        return server
    if _same3(base, server):
        return local
    if _is_object(local) and _is_object(server):
        b = base if _is_object(base) else {}
        result = {}
        for key in list(server) + [k for k in local if k not in server]:
            if key in UNSAFE_KEYS:
                continue
            merged = _merge3(b.get(key, _ABSENT), local.get(key, _ABSENT), server.get(key, _ABSENT), at + [key], conflicts, choose)
            if merged is not _ABSENT:
                result[key] = merged
        return result
    conflicts.append(at)
    return local if choose(at) == "local" else server


def pointer(path):
    """A path as a JSON Pointer (RFC 6901)."""
    return "".join("/" + k.replace("~", "~0").replace("/", "~1") for k in path)
