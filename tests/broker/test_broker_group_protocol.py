"""The classic group protocol request by request, on both brokers.

The rules client groups depend on, pinned down without a client library in between:
member ids handed out with MEMBER_ID_REQUIRED (KIP-394), a follower's repeated JoinGroup
answered from the current generation, the leader's JoinGroup starting a rebalance, the
order of Heartbeat's checks, pending members holding a rebalance, batched LeaveGroup.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from broker_helpers import RawConnection
from conftest import unique
from kafka.protocol.consumer import (
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)

NONE = 0
ILLEGAL_GENERATION = 22
UNKNOWN_MEMBER_ID = 25
REBALANCE_IN_PROGRESS = 27
MEMBER_ID_REQUIRED = 79

JOIN_VERSION = 5  # the first version with KIP-394 and KIP-345 fields, on both brokers
PROTOCOL_TYPE = "conformance"
TIMEOUT_MS = 10000  # session and rebalance timeouts: nothing expires during a test
ANSWER_WITHIN = 5.0  # seconds a request that must not wait for a rebalance may take


@dataclass
class Member:
    """A group member driven by hand over its own connection."""

    conn: RawConnection
    group: str
    member_id: str = ""
    generation: int = -1

    async def join(self, version: int = JOIN_VERSION, metadata: bytes = b"v1") -> Any:
        request = JoinGroupRequest[version](
            group_id=self.group,
            session_timeout_ms=TIMEOUT_MS,
            rebalance_timeout_ms=TIMEOUT_MS,
            member_id=self.member_id,
            group_instance_id=None,
            protocol_type=PROTOCOL_TYPE,
            protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="p", metadata=metadata)],
        )
        response = await self.conn.send(request, JoinGroupResponse, version)
        if response.error_code in (NONE, MEMBER_ID_REQUIRED):
            self.member_id = response.member_id
        if response.error_code == NONE:
            self.generation = response.generation_id
        return response

    async def join_with_member_id(self) -> Any:
        """JoinGroup without an id, then again with the id the coordinator requires."""
        first = await self.join()
        assert first.error_code == MEMBER_ID_REQUIRED, first
        assert first.member_id, "MEMBER_ID_REQUIRED comes with the id to join with"
        return await self.join()

    async def sync(self, assignments: dict[str, bytes] | None = None) -> Any:
        request = SyncGroupRequest[3](
            group_id=self.group,
            generation_id=self.generation,
            member_id=self.member_id,
            group_instance_id=None,
            assignments=[
                SyncGroupRequest.SyncGroupRequestAssignment(member_id=m, assignment=a)
                for m, a in (assignments or {}).items()
            ],
        )
        return await self.conn.send(request, SyncGroupResponse, 3)

    async def heartbeat(self, generation: int | None = None) -> int:
        request = HeartbeatRequest[3](
            group_id=self.group,
            generation_id=self.generation if generation is None else generation,
            member_id=self.member_id,
            group_instance_id=None,
        )
        return (await self.conn.send(request, HeartbeatResponse, 3)).error_code

    async def leave(self, member_ids: list[str]) -> Any:
        request = LeaveGroupRequest[3](
            group_id=self.group,
            members=[
                LeaveGroupRequest.MemberIdentity(member_id=m, group_instance_id=None)
                for m in member_ids
            ],
        )
        return await self.conn.send(request, LeaveGroupResponse, 3)


class Group:
    """Members of one fresh group, each on its own connection."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.group_id = unique("proto")
        self.members: list[Member] = []

    async def new_member(self) -> Member:
        member = Member(await RawConnection.open(self.bootstrap), self.group_id)
        self.members.append(member)
        return member

    async def close(self) -> None:
        for member in self.members:
            await member.conn.close()


@pytest_asyncio.fixture
async def group(broker: str) -> AsyncIterator[Group]:
    g = Group(broker)
    yield g
    await g.close()


async def answered(request: Any) -> Any:
    """The answer to a request that must not wait for a rebalance."""
    return await asyncio.wait_for(request, ANSWER_WITHIN)


async def wait_for_heartbeat(member: Member, error: int) -> None:
    """Heartbeat until the answer is ``error`` (another member's JoinGroup is in flight)."""
    for _ in range(50):
        if await member.heartbeat() == error:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"heartbeat never answered {error}")


async def stable_pair(group: Group) -> tuple[Member, Member]:
    """A leader and a follower in one stable generation, each with its assignment."""
    leader, follower = await group.new_member(), await group.new_member()
    alone = await answered(leader.join_with_member_id())
    assert alone.error_code == NONE and alone.leader == leader.member_id
    assert (await answered(leader.sync({leader.member_id: b"all"}))).assignment == b"all"

    first = await answered(follower.join())
    assert first.error_code == MEMBER_ID_REQUIRED
    follower_joined = asyncio.create_task(follower.join())
    await wait_for_heartbeat(leader, REBALANCE_IN_PROGRESS)
    rejoined = await answered(leader.join())
    joined = await answered(follower_joined)
    assert rejoined.error_code == joined.error_code == NONE
    assert rejoined.generation_id == joined.generation_id > alone.generation_id
    assert sorted(m.member_id for m in rejoined.members) == sorted(
        [leader.member_id, follower.member_id]
    )
    assert joined.members == [], "only the leader gets the member list"

    follower_synced = asyncio.create_task(follower.sync())
    assignments = {leader.member_id: b"a", follower.member_id: b"b"}
    assert (await answered(leader.sync(assignments))).assignment == b"a"
    assert (await answered(follower_synced)).assignment == b"b"
    return leader, follower


async def test_a_join_without_member_id_is_asked_to_come_back_with_one(group: Group) -> None:
    member = await group.new_member()
    first = await answered(member.join())
    assert (first.error_code, first.generation_id) == (MEMBER_ID_REQUIRED, -1)
    joined = await answered(member.join())
    assert joined.error_code == NONE
    assert joined.member_id == first.member_id == joined.leader
    assert joined.generation_id >= 1


async def test_a_join_v3_without_member_id_joins_at_once(group: Group) -> None:
    """Before KIP-394 (JoinGroup v0-v3) the coordinator assigns the id and joins the member."""
    member = await group.new_member()
    joined = await answered(member.join(version=3))
    assert joined.error_code == NONE and joined.member_id


async def test_a_follower_joining_again_unchanged_gets_the_current_generation(
    group: Group,
) -> None:
    """No rebalance: clients send JoinGroup again when they lost or gave up on the answer."""
    leader, follower = await stable_pair(group)
    generation = follower.generation
    again = await answered(follower.join())
    assert (again.error_code, again.generation_id) == (NONE, generation)
    assert again.leader == leader.member_id and again.members == []
    assert (await answered(follower.sync())).assignment == b"b"
    assert await leader.heartbeat() == NONE, "the leader is not asked to rejoin"
    assert await follower.heartbeat() == NONE


async def test_a_follower_joining_with_new_metadata_starts_a_rebalance(group: Group) -> None:
    leader, follower = await stable_pair(group)
    follower_joined = asyncio.create_task(follower.join(metadata=b"v2"))
    await wait_for_heartbeat(leader, REBALANCE_IN_PROGRESS)
    rejoined = await answered(leader.join())
    assert (await answered(follower_joined)).generation_id == rejoined.generation_id
    assert dict((m.member_id, m.metadata) for m in rejoined.members)[follower.member_id] == b"v2"


async def test_the_leader_joining_again_starts_a_rebalance(group: Group) -> None:
    leader, follower = await stable_pair(group)
    generation = leader.generation
    leader_joined = asyncio.create_task(leader.join())
    await wait_for_heartbeat(follower, REBALANCE_IN_PROGRESS)
    # Heartbeat checks the generation before the rebalance: an older one is illegal.
    assert await follower.heartbeat(generation - 1) == ILLEGAL_GENERATION
    assert (await answered(follower.sync())).error_code == REBALANCE_IN_PROGRESS
    joined = await answered(follower.join())
    assert (await answered(leader_joined)).generation_id == joined.generation_id > generation


async def test_a_pending_member_holds_the_rebalance_until_it_joins(group: Group) -> None:
    leader, follower = await stable_pair(group)
    late = await group.new_member()
    assert (await answered(late.join())).error_code == MEMBER_ID_REQUIRED
    # The leader starts a rebalance; the follower rejoins; the pending member is awaited.
    leader_joined = asyncio.create_task(leader.join())
    await wait_for_heartbeat(follower, REBALANCE_IN_PROGRESS)
    follower_joined = asyncio.create_task(follower.join())
    await asyncio.sleep(1.0)
    assert not leader_joined.done(), "the rebalance did not wait for the pending member"
    late_joined = await answered(late.join())
    rejoined = await answered(leader_joined)
    await answered(follower_joined)
    assert late_joined.generation_id == rejoined.generation_id
    assert len(rejoined.members) == 3


async def test_leave_group_v3_leaves_a_batch_of_members(group: Group) -> None:
    leader, follower = await stable_pair(group)
    pending = await group.new_member()
    assert (await answered(pending.join())).error_code == MEMBER_ID_REQUIRED
    left = await answered(leader.leave([leader.member_id, pending.member_id, "nobody"]))
    assert left.error_code == NONE
    assert [m.error_code for m in left.members] == [NONE, NONE, UNKNOWN_MEMBER_ID]
    assert await follower.heartbeat() == REBALANCE_IN_PROGRESS
    alone = await answered(follower.join())
    assert alone.error_code == NONE and alone.leader == follower.member_id
    assert [m.member_id for m in alone.members] == [follower.member_id]
