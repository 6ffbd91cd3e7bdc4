"""The pure field-merge and compression modules: unit tests and property tests (hypothesis)."""

import gzip
import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redux_idb_sync_server.compression import BodyTooLarge, CorruptBody, UnsupportedEncoding, accepts_gzip, compress, decode_body
from redux_idb_sync_server.merge import apply_merge_patch, malformed_patch, merge_patch_onto, pointer, three_way_merge


def test_a_patch_onto_its_base_is_rfc_7396_application():
    base = {"id": "a", "title": "x", "body": "b" * 10_000, "meta": {"tags": ["a"], "n": 1}}
    patch = {"title": "y", "meta": {"n": 2}, "gone": None}
    old = {"title": "x", "meta": {"n": 1}, "gone": None}
    merged, conflicts = merge_patch_onto(base, patch, old)
    assert conflicts == []
    assert merged == apply_merge_patch(base, patch) == {**base, "title": "y", "meta": {"tags": ["a"], "n": 2}}


def test_fields_changed_on_one_side_merge_and_the_same_field_conflicts():
    base = {"title": "x", "body": "b"}
    mine = ({"title": "mine"}, {"title": "x"})
    assert merge_patch_onto({**base, "body": "theirs"}, *mine) == ({"title": "mine", "body": "theirs"}, [])
    assert merge_patch_onto({**base, "title": "theirs"}, *mine) == ({**base, "title": "theirs"}, [["title"]])
    assert merge_patch_onto({**base, "title": "mine"}, *mine) == ({**base, "title": "mine"}, [])
    assert merge_patch_onto({**base, "title": "theirs"}, *mine, force=True)[0] == {**base, "title": "mine"}


def test_a_container_removed_or_replaced_by_the_server_is_a_conflict_on_the_container():
    patch, old = {"meta": {"a": 2}}, {"meta": {"a": 1}}
    assert merge_patch_onto({}, patch, old)[1] == [["meta"]]
    assert merge_patch_onto({"meta": 5}, patch, old)[1] == [["meta"]]
    assert pointer(["a/b", "~c"]) == "/a~1b/~0c"


def test_json_equality_keeps_true_apart_from_1():
    assert merge_patch_onto({"f": 1}, {"f": 2}, {"f": True})[1] == [["f"]]
    assert merge_patch_onto({"f": 1.0}, {"f": 2}, {"f": 1})[1] == []


def test_malformed_patches_are_named():
    assert malformed_patch({"a": {"b": 1}}, {"a": {"b": 2}}) is None
    assert "patch must be a JSON object" in malformed_patch([], {})
    assert "base must be a JSON object" in malformed_patch({}, None)
    assert "same fields" in malformed_patch({"a": 1}, {})
    assert "same fields at /a" in malformed_patch({"a": {"b": 1}}, {"a": {"c": 1}})
    assert "forbidden" in malformed_patch({"__proto__": 1}, {"__proto__": None})


# --- property: two clients edit one item; either arrives first ---------------------------------

leaf = st.one_of(st.integers(0, 3), st.sampled_from(["a", "b", "c"]), st.lists(st.integers(0, 2), max_size=2))
nested = st.fixed_dictionaries({}, optional={"x": leaf, "y": leaf})
item = st.fixed_dictionaries({"id": st.just("k")}, optional={"t": leaf, "b": leaf, "c": leaf, "m": nested})


def edits(base):
    changes = st.fixed_dictionaries({}, optional={k: st.one_of(st.none(), nested if k == "m" else leaf) for k in ("t", "b", "c", "m")})

    def apply(ch):
        out = dict(base)
        for k, v in ch.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out

    return changes.map(apply)


def field_patch(base, nxt):
    """What the client sends (src/utils/fieldPatch.ts), for values without nulls."""
    patch, old = {}, {}
    for key in set(base) | set(nxt):
        before, after = base.get(key), nxt.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            p, o = field_patch(before, after)
            if p:
                patch[key], old[key] = p, o
        elif json.dumps(before) != json.dumps(after):
            patch[key], old[key] = after, before
    return patch, old


scenario = item.flatmap(lambda base: st.tuples(st.just(base), edits(base), edits(base), st.booleans()))


def leaf_paths(value, at=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaf_paths(v, at + (k,))
    elif at:
        yield at


def at_path(value, path):
    for k in path:
        if not isinstance(value, dict) or k not in value:
            return "<absent>"
        value = value[k]
    return value


@settings(max_examples=300, deadline=None)
@given(scenario)
def test_concurrent_field_edits_equal_the_reference_merge_and_keep_every_one_sided_edit(case):
    base, a, b, a_first = case
    first, second = (a, b) if a_first else (b, a)
    after_first, c1 = merge_patch_onto(base, *field_patch(base, first))
    assert (after_first, c1) == (first, [])
    merged, conflicts = merge_patch_onto(after_first, *field_patch(base, second))
    reference, ref_conflicts = three_way_merge(base, second, first, lambda path: "server")
    assert merged == reference
    assert sorted(map(pointer, conflicts)) == sorted(map(pointer, ref_conflicts))
    for path in {*leaf_paths(base), *leaf_paths(first), *leaf_paths(second)}:
        if any(path[: len(c)] == tuple(c) for c in conflicts):
            continue
        was = at_path(base, path)
        for side, other in ((first, second), (second, first)):
            if at_path(side, path) != was and at_path(other, path) == was:
                assert at_path(merged, path) == at_path(side, path), path


# --- compression ---------------------------------------------------------------------------------


def test_a_gzip_body_is_inflated_and_identity_passes_through():
    body = json.dumps({"ops": ["x" * 5000]}).encode()
    assert decode_body(gzip.compress(body), "gzip", 1 << 20) == body
    assert decode_body(gzip.compress(body), "X-Gzip", 1 << 20) == body
    assert decode_body(body, None, 1 << 20) == body
    assert decode_body(body, "identity", 1 << 20) == body


def test_a_zip_bomb_is_refused_after_inflating_at_most_the_limit():
    bomb = gzip.compress(b"0" * (64 << 20))  # 64 MiB of zeros is about 64 kB compressed
    assert len(bomb) < 100_000
    with pytest.raises(BodyTooLarge):
        decode_body(bomb, "gzip", 2 << 20)
    with pytest.raises(BodyTooLarge):
        decode_body(b"x" * 11, None, 10)


def test_other_encodings_and_broken_streams_are_refused():
    with pytest.raises(UnsupportedEncoding):
        decode_body(b"{}", "br", 100)
    with pytest.raises(UnsupportedEncoding):
        decode_body(zlib.compress(b"{}"), "deflate", 100)
    with pytest.raises(CorruptBody):
        decode_body(b"{}", "gzip", 100)
    with pytest.raises(CorruptBody):
        decode_body(gzip.compress(b"{}" * 100)[:-9], "gzip", 1000)
    with pytest.raises(CorruptBody):
        decode_body(gzip.compress(b"{}") + b"junk", "gzip", 1000)


def test_responses_are_compressed_only_when_accepted_and_large_enough():
    big = b"x" * 5000
    assert accepts_gzip("gzip, deflate, br") and accepts_gzip("*") and accepts_gzip("br;q=1, gzip;q=0.5")
    assert not accepts_gzip(None) and not accepts_gzip("gzip;q=0") and not accepts_gzip("br") and not accepts_gzip("*;q=0")
    out, encoding = compress(big, "gzip")
    assert encoding == "gzip" and gzip.decompress(out) == big and len(out) < 100
    assert compress(big, "identity") == (big, None)
    assert compress(b"{}", "gzip") == (b"{}", None)
