"""How ``streamflow dlq inspect`` shows dead letters, and its errors without a broker."""

import doctest

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from click.testing import CliRunner

import streamflow.cli.dlq
from streamflow.cli.dlq import describe_letter, format_letter
from streamflow.cli.main import cli
from streamflow.codecs import DecodeError, avro
from streamflow.runtime.dead_letters import (
    REPLAYED_FROM,
    error_headers,
    read_error_headers,
    replay_headers,
)
from streamflow.topics import Topic

ORDERS = Topic("orders", key="str", value=avro("order_event", schemas_dir="schemas"))
TOPICS = {"orders": ORDERS}
GARBAGE = b"\x00\xffnot an order\n"


def _letter(value: bytes, key: bytes = b"o-1", source: str = "orders", **kw) -> ConsumerRecord:
    error = kw.pop("error", DecodeError("not Avro"))
    headers = [("trace", b"t-1"), *error_headers("shop", source, 2, 41, error, "decode")]
    return ConsumerRecord(
        "shop-dlq", 1, 7, 1714560000000, 0, key, value, None, len(key), len(value), headers
    )


def test_undecodable_value_shows_length_escaped_bytes_and_hex():
    letter = describe_letter(_letter(GARBAGE), TOPICS)
    assert letter["value"] == {
        "codec": "avro:streamflow.examples.OrderEvent",
        "error": letter["value"]["error"],
        "bytes": 15,
        "escaped": r"\x00\xffnot an order\n",
        "hex": "00ff6e6f7420616e206f726465720a",
    }
    assert letter["value"]["error"].startswith("DecodeError: not Avro single-object encoding")
    assert letter["key"] == {"codec": "str", "decoded": "o-1"}
    assert letter["source"] == {"topic": "orders", "partition": 2, "offset": 41}
    assert letter["dlq"] == {"topic": "shop-dlq", "partition": 1, "offset": 7}
    assert letter["time"] == "2024-05-01T10:40:00.000+00:00"
    assert letter["headers"] == {"trace": "t-1"}
    assert orjson.loads(orjson.dumps(letter)) == letter

    text = format_letter(letter).splitlines()
    assert text == [
        "shop-dlq[1]@7  2024-05-01T10:40:00.000+00:00",
        "  source     orders[2]@41",
        "  step       decode",
        "  exception  streamflow.codecs.errors.DecodeError",
        "  error      not Avro",
        '  key        "o-1"',
        "  value      15 bytes, not decodable as avro:streamflow.examples.OrderEvent",
        r"             escaped  \x00\xffnot an order\n",
        "             hex      00ff6e6f7420616e206f726465720a",
        "  headers    trace=t-1",
    ]


def test_long_undecodable_values_are_cut_in_the_text_view_only():
    value = bytes(range(256)) * 4
    letter = describe_letter(_letter(value), TOPICS)
    assert bytes.fromhex(letter["value"]["hex"]) == value
    text = format_letter(letter)
    assert "1024 bytes, not decodable" in text
    assert "… (first 256)" in text
    assert "000102030405" in text and "… (first 64)" in text
    assert value.hex()[:130] not in text


def test_a_value_that_decodes_is_shown_decoded():
    order = {
        "order_id": "o-1",
        "user_id": "u-1",
        "status": "PAID",
        "amount": "12.50",
        "timestamp": 1714560000000,
    }
    value = ORDERS.value_codec.encode(ORDERS.value_codec.from_json(order))
    letter = describe_letter(_letter(value, error=ZeroDivisionError("boom")), TOPICS)
    assert letter["value"]["decoded"]["amount"] == "12.50"
    assert letter["exception"] == "builtins.ZeroDivisionError"
    assert '"amount":"12.50"' in format_letter(letter)


def test_a_topic_the_app_does_not_read_shows_bytes_without_codec():
    letter = describe_letter(_letter(b"\x01", key=b"\xfe", source="elsewhere"), TOPICS)
    assert letter["key"]["codec"] is None and letter["key"]["escaped"] == r"\xfe"
    assert "1 bytes, no codec known" in format_letter(letter)


def test_a_replayed_letter_that_fails_again_keeps_its_history():
    once = replay_headers(_letter(GARBAGE).headers, "shop-dlq", 1, 7)
    failed_again = [*once, *error_headers("shop", "orders", 2, 99, ValueError("x"), "decode")]
    info = read_error_headers(failed_again)
    assert info.source_offset == 99
    assert replay_headers(failed_again, "shop-dlq", 0, 3) == [
        ("trace", b"t-1"),
        (REPLAYED_FROM, b"shop-dlq:1:7"),
        (REPLAYED_FROM, b"shop-dlq:0:3"),
    ]


@pytest.mark.parametrize("command", ["inspect", "replay"])
def test_unreachable_broker_is_explained(command):
    result = CliRunner().invoke(
        cli, ["dlq", command, "apps/user_spending.py", "--broker", "127.0.0.1:1"]
    )
    assert result.exit_code == 1
    assert "cannot reach a Kafka broker at 127.0.0.1:1" in result.output
    assert "Traceback" not in result.output


def test_docstring_examples():
    result = doctest.testmod(streamflow.cli.dlq, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
