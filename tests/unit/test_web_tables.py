"""Table-view helpers: key parsing, cursors, merging the pages of several workers."""

from __future__ import annotations

import pytest

from streamflow.codecs import IntCodec, JsonCodec, StrCodec
from streamflow.web.tables import BadKey, _merge_pages, encode_cursor, parse_key


def _item(key: bytes) -> dict:
    return {"key": key.decode(), "value": 1, "cursor": encode_cursor(key)}


def test_keys_parse_by_codec():
    assert parse_key(StrCodec(), "42") == "42"
    assert parse_key(IntCodec(), "42") == 42
    assert parse_key(JsonCodec(), '{"a": 1}') == {"a": 1}
    with pytest.raises(BadKey, match="not-a-number"):
        parse_key(IntCodec(), "not-a-number")


def test_merged_page_is_in_order_and_cut_at_the_limit():
    pages = [
        {"items": [_item(b"a"), _item(b"d")], "next": None},
        {"items": [_item(b"b"), _item(b"c"), _item(b"e")], "next": None},
    ]
    merged = _merge_pages(pages, limit=3)
    assert [i["key"] for i in merged["items"]] == ["a", "b", "c"]
    assert merged["next"] == encode_cursor(b"c")


def test_nothing_past_a_worker_that_may_have_more_is_returned():
    # Worker 1 stopped at "b" (its page was full); worker 2 is done. "c" and "d" of
    # worker 2 must wait: worker 1 may hold keys between "b" and "c".
    pages = [
        {"items": [_item(b"a"), _item(b"b")], "next": encode_cursor(b"b")},
        {"items": [_item(b"c"), _item(b"d")], "next": None},
    ]
    merged = _merge_pages(pages, limit=10)
    assert [i["key"] for i in merged["items"]] == ["a", "b"]
    assert merged["next"] == encode_cursor(b"b")


def test_last_page_has_no_next():
    merged = _merge_pages([{"items": [_item(b"a")], "next": None}], limit=5)
    assert merged["next"] is None
