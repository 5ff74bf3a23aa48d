"""The user-facing DSL: streams, grouped streams and tables (Kafka Streams vocabulary)."""

from streamflow.dsl.stream import GroupedStream, GroupedTable, Stream, Table
from streamflow.dsl.topology import Topology

__all__ = ["GroupedStream", "GroupedTable", "Stream", "Table", "Topology"]
