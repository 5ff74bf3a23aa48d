"""streamflow: declarative stream processing for Python.

Declare topics with schemas, build streams and RocksDB-backed tables with a Kafka
Streams-like DSL, and run the app as worker processes with exactly-once commits. Test it
without a broker with :class:`streamflow.testing.TestDriver`.

Example:
    >>> import streamflow
    >>> from streamflow.testing import TestDriver
    >>> app = streamflow.App("hello")
    >>> words = app.stream(app.topic("in", value="str"))
    >>> words.map_values(str.upper).to(app.topic("out", value="str"))
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many("in", [("k1", "hello"), ("k2", "world")])
    ...     driver.read("out")
    [('k1', 'HELLO'), ('k2', 'WORLD')]
"""

from streamflow.app import App
from streamflow.codecs import Codec, avro
from streamflow.dsl import GroupedStream, GroupedTable, Stream, Table, Topology
from streamflow.dsl.policies import DeadLetter, Retry, Stop
from streamflow.dsl.processing import StateStore
from streamflow.dsl.windows import JoinWindows, Windowed, hopping, session, sliding, tumbling
from streamflow.runtime.agents import Event
from streamflow.runtime.processor_api import KeyValueStore, ProcessorContext
from streamflow.topics import Topic

__all__ = [
    "App",
    "Codec",
    "DeadLetter",
    "Event",
    "GroupedStream",
    "GroupedTable",
    "JoinWindows",
    "KeyValueStore",
    "ProcessorContext",
    "Retry",
    "StateStore",
    "Stop",
    "Stream",
    "Table",
    "Topic",
    "Topology",
    "Windowed",
    "avro",
    "hopping",
    "session",
    "sliding",
    "tumbling",
]
__version__ = "0.1.0"
