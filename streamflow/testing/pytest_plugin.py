"""The pytest plugin streamflow installs: a ``streamflow_driver`` fixture.

Registered through the ``pytest11`` entry point, so it is there in every project that has
streamflow installed. Tell it which app to drive with a ``streamflow_app`` fixture (an
:class:`~streamflow.App` or a reference such as ``"apps/user_spending.py"``), in the test
module or a ``conftest.py``; ``streamflow_driver`` is then a fresh
:class:`~streamflow.testing.TestDriver` per test, closed afterwards.

Example (``tests/conftest.py`` and a test):
    >>> # import pytest
    >>> # import apps.user_spending
    >>> #
    >>> # @pytest.fixture
    >>> # def streamflow_app():
    >>> #     return apps.user_spending.app
    >>> #
    >>> # def test_paid_orders_count(streamflow_driver):
    >>> #     streamflow_driver.pipe("order_events", "o1", order)
    >>> #     assert streamflow_driver.read("user_spending_summary") == [("u1", "10.50")]

A test that needs another start time (or two drivers) builds them with the
``streamflow_driver_factory`` fixture: ``streamflow_driver_factory(app, start_time=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported when a fixture is used: pytest starts without loading streamflow
    from streamflow.app import App
    from streamflow.testing.driver import TestDriver

__all__ = ["streamflow_app", "streamflow_driver", "streamflow_driver_factory"]


@pytest.fixture
def streamflow_app() -> App | str:
    """The app ``streamflow_driver`` drives: override this fixture in your tests."""
    raise pytest.UsageError(
        "the streamflow_driver fixture needs to know which app to run: define a fixture "
        "named streamflow_app returning your App (or 'apps/my_app.py') in the test module "
        "or a conftest.py"
    )


@pytest.fixture
def streamflow_driver_factory() -> Iterator[Callable[..., TestDriver]]:
    """Builds test drivers (``factory(app, start_time=...)``), all closed after the test."""
    from streamflow.testing.driver import TestDriver

    drivers: list[TestDriver] = []

    def build(app: App | str, **options: Any) -> TestDriver:
        driver = TestDriver(app, **options)
        drivers.append(driver)
        return driver

    yield build
    for driver in drivers:
        driver.close()


@pytest.fixture
def streamflow_driver(
    streamflow_app: App | str, streamflow_driver_factory: Callable[..., TestDriver]
) -> TestDriver:
    """A :class:`~streamflow.testing.TestDriver` of the ``streamflow_app`` fixture's app."""
    return streamflow_driver_factory(streamflow_app)
