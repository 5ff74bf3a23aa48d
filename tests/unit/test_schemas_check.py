"""``streamflow schemas check``: evolution of the .avsc files of a folder, an app, a git ref."""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from streamflow.cli.main import cli

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def order_v2() -> dict[str, Any]:
    """The repository's OrderEvent: ``currency`` has a default."""
    return json.loads((REPO_SCHEMAS / "order_event.avsc").read_text())


def without(schema: dict[str, Any], name: str) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    out["fields"] = [f for f in out["fields"] if f["name"] != name]
    return out


def with_field(schema: dict[str, Any], name: str, **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    for f in out["fields"]:
        if f["name"] == name:
            f.update(changes)
            for key in [k for k, v in changes.items() if v is None]:
                del f[key]
    return out


def write(folder: Path, name: str, schema: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(schema, indent=2))
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["schemas", "check", *args])


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture(autouse=True)
def _no_schemas_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMFLOW_SCHEMAS_DIR", raising=False)


# -- one folder ---------------------------------------------------------------------------


def test_added_field_with_default_passes(tmp_path: Path) -> None:
    write(tmp_path, "order_event.avsc", order_v2())
    write(tmp_path, "order_event.v1.avsc", without(order_v2(), "currency"))
    result = run("--schemas", str(tmp_path), "--mode", "full")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "OK",
        "streamflow.examples.OrderEvent:",
        str(tmp_path / "order_event.avsc"),
        "reads",
        str(tmp_path / "order_event.v1.avsc"),
    ]
    assert lines[1].split()[2:] == [
        str(tmp_path / "order_event.v1.avsc"),
        "reads",
        str(tmp_path / "order_event.avsc"),
    ]
    assert lines[-1] == "2 check(s): 2 ok, 0 incompatible, 0 not kept, 0 unreadable file(s)"


def test_added_field_without_default_fails_naming_it(tmp_path: Path) -> None:
    write(tmp_path, "order_event.avsc", with_field(order_v2(), "currency", default=None))
    write(tmp_path, "order_event.v1.avsc", without(order_v2(), "currency"))
    result = run("--schemas", str(tmp_path))
    assert result.exit_code == 1, result.output
    assert result.output.startswith("INCOMPATIBLE  streamflow.examples.OrderEvent: ")
    assert "order_event.avsc cannot read" in result.output
    assert (
        "  - currency: field missing from the writer schema and has no default in the reader schema"
    ) in result.output
    no_traceback(result)


def test_removed_field_without_default_fails_forward_only(tmp_path: Path) -> None:
    write(tmp_path, "order_event.avsc", without(order_v2(), "user_id"))
    write(tmp_path, "order_event.v1.avsc", order_v2())
    # New readers ignore the field old records still carry...
    assert run("--schemas", str(tmp_path)).exit_code == 0
    # ...but old readers cannot read new records, which lack it.
    result = run("--schemas", str(tmp_path), "--mode", "forward")
    assert result.exit_code == 1, result.output
    assert "order_event.v1.avsc cannot read" in result.output
    assert "  - user_id: field missing from the writer schema" in result.output


def test_changed_type_fails_naming_the_field(tmp_path: Path) -> None:
    write(tmp_path, "order_event.avsc", with_field(order_v2(), "timestamp", type="string"))
    write(tmp_path, "order_event.v1.avsc", order_v2())
    result = run("--schemas", str(tmp_path), "--mode", "full")
    assert result.exit_code == 1, result.output
    problems = [line.strip() for line in result.output.splitlines() if line.startswith(" ")]
    assert len(problems) == 2  # one per direction
    assert all(p.startswith("- timestamp: type mismatch") for p in problems)
    assert "0 ok, 2 incompatible" in result.output


def test_changed_decimal_scale_fails(tmp_path: Path) -> None:
    amount = {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 3}
    write(tmp_path, "order_event.avsc", with_field(order_v2(), "amount", type=amount))
    write(tmp_path, "order_event.v1.avsc", order_v2())
    result = run("--schemas", str(tmp_path))
    assert result.exit_code == 1
    assert "- amount: decimal(12,2) written but decimal(12,3) read" in result.output


def test_every_older_version_is_checked_and_records_apart(tmp_path: Path) -> None:
    write(tmp_path, "order_event.avsc", order_v2())
    write(tmp_path, "order_event.v1.avsc", without(order_v2(), "currency"))
    write(tmp_path, "order_event.v2.avsc", with_field(order_v2(), "amount", type="boolean"))
    user = {"type": "record", "name": "User", "fields": [{"name": "id", "type": "string"}]}
    write(tmp_path, "user.avsc", user)
    result = run("--schemas", str(tmp_path))
    assert result.exit_code == 1
    out = result.output
    assert f"OK            User: {tmp_path / 'user.avsc'} is its only version" in out
    assert f"order_event.avsc reads {tmp_path / 'order_event.v1.avsc'}" in out
    assert f"order_event.avsc cannot read {tmp_path / 'order_event.v2.avsc'}" in out
    assert "- amount: type mismatch" in out
    assert out.splitlines()[-1].startswith("3 check(s): 2 ok, 1 incompatible")


def test_only_versioned_files_use_the_highest_as_current(tmp_path: Path) -> None:
    write(tmp_path, "order_event.v9.avsc", without(order_v2(), "currency"))
    write(tmp_path, "order_event.v10.avsc", order_v2())
    result = run("--schemas", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "order_event.v10.avsc reads" in result.output


@pytest.mark.parametrize(
    ("text", "reason"),
    [("{ not json", "invalid JSON"), ('{"type": "record", "name": "X"}', "fields")],
)
def test_unreadable_file_exits_2_naming_it(tmp_path: Path, text: str, reason: str) -> None:
    write(tmp_path, "order_event.avsc", order_v2())
    (tmp_path / "broken.avsc").write_text(text)
    result = run("--schemas", str(tmp_path))
    assert result.exit_code == 2, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("UNREADABLE"))
    assert str(tmp_path / "broken.avsc") in line and reason in line
    no_traceback(result)


def test_missing_folder_exits_2(tmp_path: Path) -> None:
    result = run("--schemas", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert f"schemas folder {tmp_path / 'nope'} does not exist" in result.output
    no_traceback(result)


def test_default_folder_is_env_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "a", "order_event.avsc", order_v2())
    write(tmp_path / "b" / "schemas", "user.avsc", {"type": "record", "name": "U", "fields": []})
    monkeypatch.chdir(tmp_path / "b")
    assert "U: schemas/user.avsc is its only version" in run().output
    monkeypatch.setenv("STREAMFLOW_SCHEMAS_DIR", str(tmp_path / "a"))
    assert "streamflow.examples.OrderEvent:" in run().output


# -- an app -------------------------------------------------------------------------------


def test_app_checks_only_its_records_with_the_schema_it_loads(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    write(schemas, "order_event.avsc", order_v2())
    write(schemas, "order_event.v1.avsc", without(order_v2(), "currency"))
    # A record the app does not use, broken between its versions: not the app's concern.
    write(schemas, "other.avsc", {"type": "record", "name": "O", "fields": []})
    write(
        schemas,
        "other.v1.avsc",
        {"type": "record", "name": "O", "fields": [{"name": "x", "type": "int"}]},
    )
    write(schemas, "other.v2.avsc", {"type": "record", "name": "O", "fields": []})
    module = f"app_{uuid.uuid4().hex[:8]}"
    app = tmp_path / "apps" / f"{module}.py"
    app.parent.mkdir()
    app.write_text(
        "import streamflow\n"
        f"app = streamflow.App({module!r})\n"
        "orders = app.topic('order_events', value=streamflow.avro('order_event'))\n"
    )
    result = run(str(app), "--mode", "full")
    assert result.exit_code == 0, result.output
    assert "O:" not in result.output
    assert result.output.count("streamflow.examples.OrderEvent:") == 2
    assert result.output.splitlines()[-1].startswith("2 check(s): 2 ok")


def test_app_that_does_not_load_exits_2(tmp_path: Path) -> None:
    app = tmp_path / "broken_app.py"
    app.write_text("raise RuntimeError('boom')\n")
    result = run(str(app))
    assert result.exit_code == 2
    assert "RuntimeError: boom" in result.output
    no_traceback(result)


# -- against a git ref --------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose first commit has schemas/order_event.avsc without currency."""
    git(tmp_path, "init", "-q")
    write(tmp_path / "schemas", "order_event.avsc", without(order_v2(), "currency"))
    git(tmp_path, "add", "schemas")
    git(tmp_path, "commit", "-q", "-m", "v1")
    return tmp_path


def test_against_ref_catches_incompatible_edit_in_place(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    write(repo / "schemas", "order_event.avsc", with_field(order_v2(), "currency", default=None))
    assert run().exit_code == 0  # the folder alone holds one version: nothing to compare
    result = run("--against", "HEAD")
    assert result.exit_code == 1, result.output
    out = result.output
    assert "schemas/order_event.avsc cannot read HEAD:schemas/order_event.avsc" in out
    assert "- currency: field missing from the writer schema and has no default" in out
    assert (
        "NOT KEPT      streamflow.examples.OrderEvent: HEAD:schemas/order_event.avsc is not in "
        "schemas: records written with it (fingerprint 0x"
    ) in out
    assert "keep it: git show HEAD:schemas/order_event.avsc > schemas/order_event.v1.avsc" in out
    assert out.splitlines()[-1] == (
        "2 check(s): 0 ok, 1 incompatible, 1 not kept, 0 unreadable file(s)"
    )


def test_against_ref_compatible_edit_must_keep_the_old_version(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    write(repo / "schemas", "order_event.avsc", order_v2())
    result = run("--against", "HEAD")
    assert result.exit_code == 1, result.output
    assert "schemas/order_event.avsc reads HEAD:schemas/order_event.avsc" in result.output
    assert "NOT KEPT" in result.output
    # Doing what the report says makes the check pass.
    committed = git(repo, "show", "HEAD:schemas/order_event.avsc")
    (repo / "schemas" / "order_event.v1.avsc").write_text(committed)
    result = run("--against", "HEAD")
    assert result.exit_code == 0, result.output
    assert "schemas/order_event.avsc reads schemas/order_event.v1.avsc" in result.output
    assert "HEAD:" not in result.output  # the committed version is the kept v1


def test_against_ref_with_schemas_folder_elsewhere(repo: Path) -> None:
    write(repo / "schemas", "order_event.avsc", with_field(order_v2(), "user_id", type="long"))
    result = run("--schemas", str(repo / "schemas"), "--against", "HEAD")
    assert result.exit_code == 1, result.output
    assert "cannot read HEAD:schemas/order_event.avsc" in result.output
    assert "- user_id: type mismatch" in result.output


def test_against_unknown_ref_exits_2(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    result = run("--against", "no-such-branch")
    assert result.exit_code == 2
    assert "unknown git ref 'no-such-branch'" in result.output
    no_traceback(result)


def test_against_outside_a_repository_exits_2(tmp_path: Path) -> None:
    write(tmp_path / "plain" / "schemas", "order_event.avsc", order_v2())
    result = run("--schemas", str(tmp_path / "plain" / "schemas"), "--against", "HEAD")
    assert result.exit_code == 2
    assert "not a git repository" in result.output
    no_traceback(result)
