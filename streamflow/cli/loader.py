"""Loading an app from the command line: a file path or a ``module:attribute`` reference.

Example:
    >>> from streamflow.cli.loader import split_reference
    >>> split_reference("apps.user_spending:app")
    ('apps.user_spending', 'app')
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path

import click

from streamflow.app import App

__all__ = ["load_app", "split_reference"]

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


def split_reference(reference: str) -> tuple[str, str | None]:
    """Split ``module:attr`` into its parts (``attr`` is ``None`` when absent).

    >>> split_reference("apps/x.py")
    ('apps/x.py', None)
    """
    if ":" in reference and not reference.endswith(".py"):
        module, attribute = reference.rsplit(":", 1)
        return module, attribute or None
    return reference, None


def load_app(reference: str) -> App:
    """Import the app module named by ``reference`` and return its :class:`App`.

    ``reference`` is a file (``apps/user_spending.py``) or a module reference
    (``apps.user_spending`` or ``apps.user_spending:app``). Without an attribute the module
    must hold exactly one ``App``. Mistakes raise :class:`click.ClickException` with a
    message saying how to fix them.
    """
    target, attribute = split_reference(reference)
    if target.endswith(".py") or os.sep in target:
        module = _import_file(Path(target))
    else:
        module = _import_module(target)
    if attribute is not None:
        app = getattr(module, attribute, None)
        if not isinstance(app, App):
            raise click.ClickException(
                f"{reference}: {attribute!r} is not a streamflow App in {module.__name__}"
            )
        return app
    apps = [value for value in vars(module).values() if isinstance(value, App)]
    if len(apps) != 1:
        found = "no App" if not apps else f"{len(apps)} Apps"
        raise click.ClickException(
            f"{reference}: found {found}; declare one `app = streamflow.App(...)` "
            f"or name it: {reference}:NAME"
        )
    return apps[0]


def _import_file(path: Path):
    if not path.is_file():
        raise click.ClickException(
            f"app file {path} does not exist (give a path like apps/user_spending.py "
            "or a module like apps.user_spending)"
        )
    path = path.resolve()
    project = path.parent.parent if path.parent.name == "apps" else path.parent
    _prepare_environment(project)
    name = path.stem if path.parent.name != "apps" else f"apps.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    _execute(lambda: spec.loader.exec_module(module), str(path))
    return module


def _import_module(name: str):
    _prepare_environment(Path.cwd())
    modules = []
    _execute(lambda: modules.append(importlib.import_module(name)), name)
    return modules[0]


def _prepare_environment(project: Path) -> None:
    """Make the project's modules importable and its ``schemas/`` the default."""
    if str(project) not in sys.path:
        sys.path.insert(0, str(project))
    if not os.environ.get("STREAMFLOW_SCHEMAS_DIR") and (project / "schemas").is_dir():
        os.environ["STREAMFLOW_SCHEMAS_DIR"] = str(project / "schemas")


def _execute(run, label: str) -> None:
    try:
        run()
    except click.ClickException:
        raise
    except ModuleNotFoundError as exc:
        raise click.ClickException(f"cannot import {label}: {exc}") from None
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        user_frames = [f for f in frames if not f.filename.startswith(_PACKAGE_DIR)]
        where = (
            f" ({user_frames[-1].filename}, line {user_frames[-1].lineno})" if user_frames else ""
        )
        raise click.ClickException(
            f"error while loading {label}: {type(exc).__name__}: {exc}{where}"
        ) from None
