"""gateway.verbatim: an upstream's JSON object relayed as its text came, one field's value replaced."""

from __future__ import annotations

import json

import pytest

from gateway.verbatim import Verbatim, value_span
from gateway.wire import encode_json


def test_replacing_a_field_changes_only_its_value_in_the_text() -> None:
    text = '{ "a" :[1, 2.50 ,{"modelVersion": "inner"}],\n\t"modelVersion"  :  "theirs" , "z":1e3 }'
    answer = Verbatim.of(text)
    answer.replace("modelVersion", "acme/m\u00e9")
    assert (
        answer.text == '{ "a" :[1, 2.50 ,{"modelVersion": "inner"}],\n\t"modelVersion"  :  "acme/m\u00e9" , "z":1e3 }'
    )
    assert answer["modelVersion"] == "acme/m\u00e9" and json.loads(answer.text) == dict(answer)
    assert encode_json(answer) == answer.text.encode(), "the wire writes the text"


def test_a_field_named_only_inside_a_string_or_a_nested_object_is_left_alone() -> None:
    text = '{"candidates": [{"text": "\\"modelVersion\\": \\"x\\""}], "nested": {"modelVersion": "y"}}'
    answer = Verbatim.of(text)
    answer.replace("modelVersion", "ours")
    assert answer.text == text and "modelVersion" not in answer


def test_the_last_of_duplicate_fields_is_the_one_read_and_replaced() -> None:
    text = '{"m": "first", "m": "second"}'
    assert value_span(text, "m") == (len('{"m": "first", "m": '), len(text) - 1)
    answer = Verbatim.of(text)
    answer.replace("m", "ours")
    assert answer.text == '{"m": "first", "m": "ours"}' and json.loads(answer.text) == {"m": "ours"}


@pytest.mark.parametrize("text", ["[1, 2]", '"text"', "{", ""])
def test_what_is_no_json_object_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Verbatim.of(text)


def test_a_copy_is_plain_json_again() -> None:
    answer = Verbatim.of('{"a":  1}')
    assert type(dict(answer)) is dict and encode_json(dict(answer)) == b'{"a":1}'


@pytest.mark.parametrize(
    "text",
    [
        '{"modelVersion": "top", "a": {"modelVersion": "nested"}}',
        '{"modelVersion": "top", "a": [{"modelVersion": "nested"}], "b": 1}',
        '{"modelVersion": "top", "a\\"modelVersion": "in a key"}',
        '{"modelVersion": "top", "a": "\\"modelVersion\\": \\"in a string\\""}',
    ],
)
def test_a_later_look_alike_of_the_field_is_not_taken_for_it(text: str) -> None:
    answer = Verbatim.of(text)
    answer.replace("modelVersion", "ours")
    assert answer.text == text.replace('"top"', '"ours"', 1)
    assert json.loads(answer.text) == {**json.loads(text), "modelVersion": "ours"}
