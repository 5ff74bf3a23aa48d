"""``streamflow schemas check``: catch an incompatible Avro schema change before deploy.

Example:
    $ streamflow schemas check apps/user_spending.py --against origin/main
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import click

from streamflow.cli.loader import load_app
from streamflow.codecs import AvroCodec
from streamflow.codecs.avro_evolution import (
    MODES,
    EvolutionCheck,
    SchemaSet,
    check_versions,
    current_schemas,
    next_version_name,
)
from streamflow.codecs.avro_schema import SCHEMAS_DIR_ENV, AvroSchema

__all__ = ["CheckFailed", "committed_schemas", "schemas"]

_WIDTH = len("INCOMPATIBLE") + 2


class CheckFailed(click.ClickException):
    """The check could not run (exit code 2): a bad folder, git ref or app.

    >>> CheckFailed("no such folder").exit_code
    2
    """

    exit_code = 2


@click.group()
def schemas() -> None:
    """Avro schemas of an app: check how they evolve.

    Example: streamflow schemas check apps/user_spending.py --against HEAD
    """


@schemas.command()
@click.argument("app_ref", metavar="[APP]", required=False)
@click.option(
    "--schemas",
    "schemas_dir",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Folder of .avsc files (default: ${SCHEMAS_DIR_ENV}, else APP's schemas/ "
    "folder, else ./schemas).",
)
@click.option(
    "--against",
    metavar="REF",
    help="Also check the schema files committed at this git ref (a branch, tag or commit).",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="backward",
    show_default=True,
    help="backward: current schemas read every older version; forward: every older "
    "version reads the current schema; full: both.",
)
def check(app_ref: str | None, schemas_dir: Path | None, against: str | None, mode: str) -> None:
    """Check that current Avro schemas can read the versions older data was written with.

    \b
    A schemas folder keeps each record's current schema (e.g. order_event.avsc) and
    the versions older records were written with (order_event.v1.avsc, ...); versions
    are matched by record full name. For every record with several versions, the
    current schema must read each older one (--mode backward, the default), each
    older one must read the current one (forward), or both (full).

    \b
    With APP, only the records of APP's Avro topics and tables are checked, and
    their current schemas are the ones APP loads.

    \b
    With --against REF, the .avsc files of the same folder committed at REF are
    checked too, so an edited schema that breaks readers of old data is caught.
    A committed version no longer kept in the folder is reported NOT KEPT: records
    written with it in single-object encoding carry its fingerprint, and nothing
    could decode them (records in the Schema Registry format carry a registry id
    instead, whose schema the registry keeps).

    \b
    Prints one line per pair (OK, INCOMPATIBLE with the reasons by field path).
    Exit status: 0 all compatible, 1 something incompatible or not kept, 2 the check
    could not run (unreadable schema file, bad git ref, app that does not load).

    \b
    Examples:
      streamflow schemas check                      # ./schemas, backward
      streamflow schemas check apps/user_spending.py --against origin/main --mode full
    """
    readers = _app_schemas(app_ref) if app_ref else None
    directory = schemas_dir or Path(os.environ.get(SCHEMAS_DIR_ENV) or "schemas")
    if not directory.is_dir():
        raise CheckFailed(f"schemas folder {directory} does not exist (give one with --schemas)")
    folder = SchemaSet.from_folder(directory)
    if readers is None:
        readers = current_schemas(folder.schemas)
    versions, unreadable, gone = list(folder.schemas), list(folder.errors), []
    if against:
        committed = committed_schemas(directory, against)
        unreadable += committed.errors
        kept = {s.fingerprint for s in folder.schemas}
        gone = [s for s in committed.schemas if s.fingerprint not in kept]
        versions += gone

    counts = dict.fromkeys(("OK", "INCOMPATIBLE", "NOT KEPT"), 0)
    for reader in readers:
        found = check_versions([reader], versions, mode)
        if not found:
            _line("OK", f"{reader.fullname}: {reader.source} is its only version")
            counts["OK"] += 1
        for result in found:
            _report(result)
            counts["OK" if result.compatible else "INCOMPATIBLE"] += 1
    for version in gone:
        reader = next((r for r in readers if r.fullname == version.fullname), None)
        if reader is None:  # a record no longer read at all
            continue
        suggested = directory / next_version_name(reader, folder.schemas)
        _line(
            "NOT KEPT",
            f"{version.fullname}: {version.source} is not in {directory}: records written "
            f"with it (fingerprint 0x{version.fingerprint:016x}) could not be decoded; keep "
            f"it: git show {version.source} > {suggested}",
        )
        counts["NOT KEPT"] += 1
    for error in unreadable:
        _line("UNREADABLE", str(error))
    click.echo(
        f"{sum(counts.values())} check(s): {counts['OK']} ok, {counts['INCOMPATIBLE']} "
        f"incompatible, {counts['NOT KEPT']} not kept, {len(unreadable)} unreadable file(s)"
    )
    if unreadable:
        raise click.exceptions.Exit(2)
    if counts["INCOMPATIBLE"] or counts["NOT KEPT"]:
        raise click.exceptions.Exit(1)


def _line(status: str, text: str) -> None:
    click.echo(f"{status:<{_WIDTH}}{text}")


def _report(found: EvolutionCheck) -> None:
    _line(
        "OK" if found.compatible else "INCOMPATIBLE", f"{found.reader.fullname}: {found.describe()}"
    )
    for problem in found.problems:
        click.echo(f"{'':<{_WIDTH}}  - {problem}")


def _app_schemas(app_ref: str) -> list[AvroSchema]:
    """The reader schemas of APP's Avro codecs (topics, then tables), without repeats."""
    try:
        app = load_app(app_ref)
        codecs = [c for t in app.topics.values() for c in (t.key_codec, t.value_codec)]
        codecs += [c for s in app.topology().stores for c in (s.key_codec, s.value_codec)]
    except click.ClickException as exc:
        raise CheckFailed(exc.message) from None
    except Exception as exc:  # a plan that cannot be built
        raise CheckFailed(f"{app_ref}: {type(exc).__name__}: {exc}") from None
    found: dict[tuple[str, int], AvroSchema] = {}
    for codec in codecs:
        if isinstance(codec, AvroCodec):
            schema = codec.avro_schema
            found.setdefault((schema.source, schema.fingerprint), schema)
    if not found:
        raise CheckFailed(f"{app_ref}: app {app.id!r} has no Avro topics or tables")
    return list(found.values())


def committed_schemas(directory: Path, ref: str) -> SchemaSet:
    """The ``*.avsc`` files of ``directory`` as committed at git ``ref``.

    Their sources read ``<ref>:<path from the repository root>``. Git failures (not a
    repository, unknown ref) raise :class:`CheckFailed`.

    >>> [s.source for s in committed_schemas(Path("schemas"), "HEAD").schemas][:1]
    ['HEAD:schemas/order_event.avsc']
    """
    top = Path(_git(["rev-parse", "--show-toplevel"], directory).strip())
    _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top, f"unknown git ref {ref!r}")
    folder = directory.resolve().relative_to(top.resolve()).as_posix()
    listed = _git(["ls-tree", "--name-only", ref, "--", "" if folder == "." else f"{folder}/"], top)
    found = SchemaSet()
    for name in listed.splitlines():
        if name.endswith(".avsc"):
            found.add(f"{ref}:{name}", _git(["show", f"{ref}:{name}"], top))
    return found


def _git(args: list[str], cwd: Path, failure: str | None = None) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise CheckFailed(f"--against needs git: {exc}") from None
    if done.returncode != 0:
        reason = failure or done.stderr.strip() or f"git {' '.join(args)} failed"
        raise CheckFailed(f"--against: {reason}")
    return done.stdout
