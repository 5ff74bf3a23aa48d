"""Consumer groups of kafka-python 3 and confluent-kafka consumers, on both brokers.

Every test bounds how long the group may take to settle, and checks that each record was
read once and that the committed offsets cover the whole topic. kafka-python consumers poll
in a thread each (see ``KafkaPythonMember``); confluent-kafka consumers are polled in turn
from the test's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
from broker_helpers import (
    ConfluentMember,
    GroupMember,
    KafkaPythonMember,
    SubprocessMember,
    committed_and_end_offsets,
    create_topic,
    on_each,
    poll_until,
    produce_values,
    read_values,
    shares_partitions,
)
from conftest import unique

# Short enough to keep a killed member's test fast, long enough for a loaded CI machine.
SESSION_TIMEOUT_MS = 6000
# Members learn of a rebalance (heartbeats) and rejoin (short fetch waits) well within the
# leader's poll() timeout; see KafkaPythonMember.
KAFKA_PYTHON_CONFIG = {
    "session_timeout_ms": SESSION_TIMEOUT_MS,
    "heartbeat_interval_ms": 300,
    "fetch_max_wait_ms": 100,
}


@pytest.fixture
def members() -> Iterator[list[GroupMember]]:
    """The group members a test starts; whatever is still open is closed afterwards."""
    started: list[GroupMember] = []
    yield started

    def close(member: GroupMember) -> None:
        with contextlib.suppress(Exception):
            member.close()

    on_each(started, close)


def new_topic(bootstrap: str, partitions: int) -> tuple[str, str]:
    """A fresh topic with ``partitions`` partitions and a fresh group id."""
    topic = unique("groups")
    asyncio.run(create_topic(bootstrap, topic, partitions))
    return topic, unique("grp")


def read_everything(members: list[GroupMember], expected: list[bytes], timeout: float) -> None:
    """Poll until the members read ``expected``; then each value must have come once."""
    poll_until(
        members,
        lambda: len(read_values(members)) >= len(expected),
        timeout,
        f"reading {len(expected)} records",
    )
    assert read_values(members) == sorted(expected), "a record was lost or read twice"


def assert_commits_cover_topic(
    bootstrap: str, topic: str, group: str, partitions: int, members: list[GroupMember]
) -> None:
    on_each(members, lambda member: member.commit())
    committed, ends = committed_and_end_offsets(bootstrap, topic, group, partitions)
    assert committed == ends


@pytest.mark.parametrize("size", [2, 3])
def test_kafka_python_group_shares_the_topic_and_reads_each_record_once(
    broker: str, members: list[GroupMember], size: int
) -> None:
    """The reported case: records already there when the members join one after the other."""
    partitions = 2 * size
    topic, group = new_topic(broker, partitions)
    expected = produce_values(broker, topic, partitions, range(200))
    members.extend(
        KafkaPythonMember(broker, topic, group, **KAFKA_PYTHON_CONFIG) for _ in range(size)
    )

    poll_until(members, lambda: shares_partitions(members, partitions), 15, "sharing")
    read_everything(members, expected, 10)
    assert_commits_cover_topic(broker, topic, group, partitions, members)


def test_kafka_python_member_leaving_hands_its_partitions_to_the_others(
    broker: str, members: list[GroupMember]
) -> None:
    topic, group = new_topic(broker, 6)
    members.extend(KafkaPythonMember(broker, topic, group, **KAFKA_PYTHON_CONFIG) for _ in range(3))
    poll_until(members, lambda: shares_partitions(members, 6), 15, "sharing among three")

    members.pop().close()  # LeaveGroup: no need to wait for its session to time out
    poll_until(members, lambda: shares_partitions(members, 6), 8, "sharing among two")
    expected = produce_values(broker, topic, 6, range(120))
    read_everything(members, expected, 10)
    assert_commits_cover_topic(broker, topic, group, 6, members)


def test_kafka_python_killed_member_loses_its_partitions_after_its_session_timeout(
    broker: str, members: list[GroupMember]
) -> None:
    topic, group = new_topic(broker, 4)
    survivor = KafkaPythonMember(broker, topic, group, **KAFKA_PYTHON_CONFIG)
    victim = SubprocessMember(broker, topic, group, **KAFKA_PYTHON_CONFIG)
    members.extend([survivor, victim])
    poll_until(members, lambda: shares_partitions(members, 4), 20, "sharing")

    victim.kill()
    took = poll_until(
        [survivor],
        lambda: survivor.partitions() == set(range(4)),
        SESSION_TIMEOUT_MS / 1000 + 10,
        "taking over the killed member's partitions",
    )
    # No LeaveGroup was sent: only the expired session can have moved the partitions.
    assert took > SESSION_TIMEOUT_MS / 2000
    expected = produce_values(broker, topic, 4, range(80))
    read_everything([survivor], expected, 10)
    assert_commits_cover_topic(broker, topic, group, 4, [survivor])


@pytest.mark.parametrize("strategy", ["range", "roundrobin"])
def test_confluent_group_shares_the_topic_and_takes_over_a_leaving_member(
    broker: str, members: list[GroupMember], strategy: str
) -> None:
    topic, group = new_topic(broker, 6)
    expected = produce_values(broker, topic, 6, range(150))
    members.extend(ConfluentMember(broker, topic, group, strategy) for _ in range(3))
    poll_until(members, lambda: shares_partitions(members, 6), 15, "sharing among three")
    read_everything(members, expected, 10)

    leaving = members.pop()
    leaving.commit()
    leaving.close()
    poll_until(members, lambda: shares_partitions(members, 6), 10, "sharing among two")
    for member in members:
        member.records.clear()
    expected = produce_values(broker, topic, 6, range(150, 300))
    read_everything(members, expected, 10)
    assert_commits_cover_topic(broker, topic, group, 6, members)


def test_confluent_cooperative_sticky_group_moves_only_partitions_that_change_owner(
    broker: str, members: list[GroupMember]
) -> None:
    """Incremental rebalances (KIP-429) over the classic JoinGroup/SyncGroup protocol."""
    topic, group = new_topic(broker, 4)
    first = ConfluentMember(broker, topic, group, "cooperative-sticky")
    members.append(first)
    poll_until(members, lambda: first.partitions() == set(range(4)), 15, "first member")

    second = ConfluentMember(broker, topic, group, "cooperative-sticky")
    members.append(second)
    poll_until(members, lambda: shares_partitions(members, 4), 15, "sharing")
    # first gave up exactly what second took, and kept the rest all along
    assert [p for p in first.revoked if p] == [second.partitions()]
    assert [p for p in first.assigned if p] == [set(range(4))]
    expected = produce_values(broker, topic, 4, range(100))
    read_everything(members, expected, 10)

    taken_back = second.partitions()
    second.commit()
    members.pop().close()
    took = poll_until(members, lambda: first.partitions() == set(range(4)), 10, "taking back")
    assert [p for p in first.revoked if p] == [taken_back], "nothing more was revoked"
    assert [p for p in first.assigned if p][-1] == taken_back, "only the increment came"
    assert took < SESSION_TIMEOUT_MS / 1000, "the LeaveGroup, not a session expiry, moved them"
    assert_commits_cover_topic(broker, topic, group, 4, members)
