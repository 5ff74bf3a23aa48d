"""The user-facing DSL: streams, grouped streams and tables (Kafka Streams vocabulary)."""

from streamflow.dsl.stream import GlobalTable, GroupedStream, GroupedTable, Stream, Table
from streamflow.dsl.topology import Topology

__all__ = ["GlobalTable", "GroupedStream", "GroupedTable", "Stream", "Table", "Topology"]
