"""Testing streamflow apps without a broker: :class:`TestDriver`.

The driver runs an app's real operators, codecs, tables and error policies on in-memory
topics; see :mod:`streamflow.testing.driver`. pytest users get the ``streamflow_driver``
fixture (see :mod:`streamflow.testing.pytest_plugin`).

Example:
    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("hello")
    >>> app.stream(app.topic("in", value="str")).map_values(str.title).to(
    ...     app.topic("out", value="str"))
    >>> with TestDriver(app) as driver:
    ...     driver.pipe("in", "k", "hello world")
    ...     driver.read("out")
    [('k', 'Hello World')]
"""

from streamflow.runtime.agents import AgentBroken, AgentStream, Event
from streamflow.runtime.failures import ProcessingStopped
from streamflow.testing.driver import TestDriver
from streamflow.testing.records import DeadLetterRecord, TestRecord
from streamflow.testing.tables import TableView

__all__ = [
    "AgentBroken",
    "AgentStream",
    "DeadLetterRecord",
    "Event",
    "ProcessingStopped",
    "TableView",
    "TestDriver",
    "TestRecord",
]
