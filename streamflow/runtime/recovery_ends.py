"""Where table recovery stops: one past the last committed record of each changelog partition.

Under exactly-once a changelog partition ends with a transaction marker, so its last stable
offset (LSO) is one or more offsets past its last readable record. faust recovers a
partition until it has applied the record at ``highwater - 1``; given the LSO, it waits for
a record that never comes and only gives up after two 5-second idle timeouts, so every
recovery (each rebalance that moves a table partition) stalled processing for ten seconds
or more. Reading the tail of each partition once, under ``read_committed``, finds the last
committed record itself, and recovery ends as soon as that record is applied.

Example:
    >>> # ends = await last_committed_ends("127.0.0.1:9092", [TopicPartition("t-changelog", 0)])
    >>> # ends[TopicPartition("t-changelog", 0)]  # offset of the last readable record + 1
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["last_committed_ends"]

log = logging.getLogger(__name__)

#: Offsets read back from the LSO at first; widened eightfold while nothing committed shows.
FIRST_WINDOW = 16
#: How long the tail reads may take before recovery falls back to the LSO (faust's way).
READ_TIMEOUT = 15.0


async def last_committed_ends(
    bootstrap: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """One past the last committed record below the LSO of each partition.

    A partition without committed records answers its first offset (nothing to recover).
    If the tails cannot be read in time, the LSO is answered: recovery is then slower,
    never wrong.
    """
    partitions = list(partitions)
    probe = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await probe.start()
    try:
        stable = await probe.end_offsets(partitions)
        first = await probe.beginning_offsets(partitions)
        try:
            return await _read_tails(probe, first, stable)
        except TimeoutError:
            log.warning("Reading changelog tails timed out: recovering up to the LSO instead")
            return dict(stable)
    finally:
        await probe.stop()


async def _read_tails(
    probe: AIOKafkaConsumer,
    first: dict[TopicPartition, int],
    stable: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    ends = {tp: first[tp] for tp in stable if stable[tp] <= first[tp]}
    upper = {tp: stable[tp] for tp in stable if tp not in ends}
    window = FIRST_WINDOW
    deadline = time.monotonic() + READ_TIMEOUT
    while upper:
        lower = {tp: max(first[tp], hi - window) for tp, hi in upper.items()}
        last = await _last_offsets(probe, lower, upper, deadline)
        for tp in list(upper):
            if tp in last:
                ends[tp] = last[tp] + 1
            elif lower[tp] == first[tp]:
                ends[tp] = first[tp]  # only markers and aborted records
            else:
                upper[tp] = lower[tp]  # look further back
                continue
            del upper[tp]
        window *= 8
    return ends


async def _last_offsets(
    probe: AIOKafkaConsumer,
    lower: dict[TopicPartition, int],
    upper: dict[TopicPartition, int],
    deadline: float,
) -> dict[TopicPartition, int]:
    """The offset of the last committed record in ``[lower, upper)`` of each partition."""
    probe.assign(list(lower))
    for tp, offset in lower.items():
        probe.seek(tp, offset)
    last: dict[TopicPartition, int] = {}
    waiting = set(lower)
    while waiting:
        if time.monotonic() > deadline:
            raise TimeoutError
        fetched = await probe.getmany(*waiting, timeout_ms=200)
        for tp, records in fetched.items():
            offsets = [r.offset for r in records if r.offset < upper[tp]]
            if offsets:
                last[tp] = max(offsets[-1], last.get(tp, -1))
        # Markers and aborted records are skipped, but the position moves past them.
        waiting = {tp for tp in waiting if await probe.position(tp) < upper[tp]}
    return last
