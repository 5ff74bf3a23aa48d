"""User mistakes on the command line get a clear message and exit code 1, never a traceback."""

import pytest
from click.testing import CliRunner

from streamflow.cli.main import cli
from streamflow.cli.produce import LineError, encode_line
from streamflow.codecs import avro
from streamflow.topics import Topic


def _run(*args: str, stdin: str | None = None):
    result = CliRunner().invoke(cli, list(args), input=stdin)
    assert "Traceback" not in result.output
    return result


def test_missing_app_file_is_explained():
    result = _run("topology", "apps/does_not_exist.py")
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_error_inside_the_app_names_file_and_line(tmp_path):
    app = tmp_path / "broken.py"
    app.write_text("import streamflow\n\nx = 1 / 0\n")
    result = _run("topology", str(app))
    assert result.exit_code == 1
    assert "ZeroDivisionError" in result.output
    assert "line 3" in result.output


def test_unreachable_broker_is_explained():
    result = _run("consume", "--broker", "127.0.0.1:1", "--timeout", "1", "anything")
    assert result.exit_code == 1
    assert "cannot reach a Kafka broker at 127.0.0.1:1" in result.output


def test_topology_prints_the_flagship_plan():
    result = _run("topology", "apps/user_spending.py")
    assert result.exit_code == 0
    assert "aggregate into table: user-spending-store" in result.output


ORDERS = Topic("order_events", key="str", value=avro("order_event", schemas_dir="schemas"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"order_id": ', "line 7: not valid JSON"),
        ('{"user_id": "u"}', "line 7: no field 'order_id'"),
        (
            '{"order_id": "o", "user_id": "u", "status": "LOST", "amount": "1.00", "timestamp": 1}',
            "line 7: field 'status'",
        ),
        (
            '{"order_id": "o", "user_id": "u", "status": "PAID", "amount": "1.001",'
            ' "timestamp": 1}',
            "line 7: field 'amount'",
        ),
    ],
)
def test_a_line_that_does_not_fit_names_line_and_field(line, message):
    with pytest.raises(LineError, match=message):
        encode_line(ORDERS, line, 7, "order_id")


def test_json_converts_to_schema_types():
    line = (
        '{"order_id": "o", "user_id": "u", "status": "PAID", "amount": 12.5,'
        ' "timestamp": "2024-05-01T12:00:00Z"}'
    )
    key, value = encode_line(ORDERS, line, 1, "order_id")
    assert key == b"o"
    decoded = ORDERS.value_codec.decode(value)
    assert str(decoded["amount"]) == "12.50"
    assert decoded["timestamp"].year == 2024
