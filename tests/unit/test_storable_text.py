"""Text that can be stored: NUL and lone surrogates are found at any depth."""

from __future__ import annotations

import pytest

from suppression.domain.text import REPLACEMENT, is_storable, storable, unstorable_path


@pytest.mark.parametrize("text", ["", "plain", "jörg ☃ 😀", "tab\tand newline\n", "\x7f\x01"])
def test_ordinary_text_is_storable(text):
    assert is_storable(text)
    assert storable(text) == text


@pytest.mark.parametrize("text", ["\x00", "a\x00b", "\ud800", "x\udfff"])
def test_nul_and_lone_surrogates_are_not(text):
    assert not is_storable(text)
    cleaned = storable(text)
    assert is_storable(cleaned)
    assert REPLACEMENT in cleaned
    assert cleaned.encode("utf-8")


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"form": "signup", "shown": ["text", 3, None, True]}, None),
        ("a\x00", "."),
        ({"k": "v\x00"}, "k"),
        ({"k\x00": "v"}, "k\ufffd"),
        ({"a": {"b": ["ok", {"c": "\ud800"}]}}, "a.b[1].c"),
        ({"a": [[["deep", "\x00"]]]}, "a[0][0][1]"),
        ([{"x": 1}, "\udcff"], "[1]"),
    ],
)
def test_unstorable_path_names_where_in_json_the_bad_text_is(value, where):
    assert unstorable_path(value) == where


def test_a_deep_value_is_walked_without_recursion():
    value: object = "\x00"
    for _ in range(50_000):
        value = {"k": [value]}
    assert unstorable_path(value).endswith("[0]")
