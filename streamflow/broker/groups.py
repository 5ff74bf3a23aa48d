"""Consumer-group coordinator: membership, rebalances, heartbeats and session expiry.

Protocol metadata and assignments are opaque bytes passed between members, so any client
assignor (including faust's and librdkafka's cooperative-sticky) works.

The rules follow Apache Kafka's classic group coordinator:

* a JoinGroup v4+ without a member id is answered ``MEMBER_ID_REQUIRED`` with a pending
  member id to join with (KIP-394); the rebalance waits for pending members;
* a follower that sends JoinGroup again with unchanged metadata while the group is stable or
  awaiting the leader's SyncGroup gets the current generation back instead of starting a new
  rebalance (kafka-python resends JoinGroup when a poll timed out while its join went on);
* a rebalance waits for every member to rejoin, at most the largest rebalance timeout of the
  members; members that did not rejoin are dropped;
* Heartbeat checks member, then generation, then answers ``REBALANCE_IN_PROGRESS`` while
  members must rejoin.

Each group's last stable generation (members, their assignments) is saved when it changes
and restored at start-up, as Kafka keeps group metadata: members that were in a group before
a broker restart go on heartbeating in their generation instead of rejoining one by one (the
first to rejoin would take every partition and fence the others' transactional producers).
Restored members whose sessions lapse are removed as usual. Committed offsets live in
:mod:`streamflow.broker.offsets`.

Example:
    >>> import asyncio
    >>> async def demo():
    ...     gc = GroupCoordinator()
    ...     r = await gc.join("g", "", "c1", 10000, 10000, "consumer", [("range", b"m")])
    ...     s = await gc.sync("g", r.generation, r.member_id, {r.member_id: b"a"})
    ...     return r.error, r.generation, s
    >>> asyncio.run(demo())
    (0, 1, (0, b'a'))
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ErrorCode
from .log import fsync_dir

log = logging.getLogger(__name__)

EMPTY = "Empty"
PREPARING = "PreparingRebalance"
COMPLETING = "CompletingRebalance"
STABLE = "Stable"


@dataclass
class JoinResult:
    """Outcome of a JoinGroup for one member.

    Example:
        >>> JoinResult(error=27).generation
        -1
    """

    error: int = 0
    generation: int = -1
    protocol: str | None = None
    leader: str = ""
    member_id: str = ""
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)


@dataclass
class Member:
    """One group member as the coordinator sees it.

    Example:
        >>> Member("m-1", "client", None, 10.0, 30.0, [("range", b"meta")]).metadata_for("range")
        b'meta'
    """

    member_id: str
    client_id: str
    instance_id: str | None
    session_timeout: float
    rebalance_timeout: float
    protocols: list[tuple[str, bytes]]
    last_seen: float = field(default_factory=time.monotonic)
    assignment: bytes = b""
    join_future: asyncio.Future[JoinResult] | None = None
    sync_future: asyncio.Future[tuple[int, bytes]] | None = None

    def metadata_for(self, protocol: str) -> bytes:
        for name, meta in self.protocols:
            if name == protocol:
                return meta
        return b""


class Group:
    """State machine of one group (Empty -> PreparingRebalance -> CompletingRebalance -> Stable).

    Example:
        >>> Group("g").state
        'Empty'
    """

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.state = EMPTY
        self.generation = 0
        self.protocol_type: str | None = None
        self.protocol: str | None = None
        self.leader: str | None = None
        self.members: dict[str, Member] = {}
        # KIP-394 member ids handed out with MEMBER_ID_REQUIRED, by expiry (monotonic) time
        self.pending: dict[str, float] = {}
        self.timer: asyncio.TimerHandle | None = None

    def supported_protocols(self) -> set[str]:
        sets = [{name for name, _ in m.protocols} for m in self.members.values()]
        return set.intersection(*sets) if sets else set()

    def member_list(self) -> list[tuple[str, str | None, bytes]]:
        """The members and their metadata for the chosen protocol, as the leader sees them."""
        protocol = self.protocol or ""
        return [
            (m.member_id, m.instance_id, m.metadata_for(protocol)) for m in self.members.values()
        ]

    def current_join_result(self, member_id: str) -> JoinResult:
        """The JoinGroup answer of the current generation, for ``member_id``."""
        return JoinResult(
            0,
            self.generation,
            self.protocol,
            self.leader or "",
            member_id,
            self.member_list() if member_id == self.leader else [],
        )

    def to_json(self) -> dict[str, Any]:
        """The group's generation and members, as saved (a stable group)."""

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        return {
            "group": self.group_id,
            "generation": self.generation,
            "protocol_type": self.protocol_type,
            "protocol": self.protocol,
            "leader": self.leader,
            "members": [
                {
                    "id": m.member_id,
                    "client": m.client_id,
                    "instance": m.instance_id,
                    "session": m.session_timeout,
                    "rebalance": m.rebalance_timeout,
                    "protocols": [[name, b64(meta)] for name, meta in m.protocols],
                    "assignment": b64(m.assignment),
                }
                for m in self.members.values()
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Group:
        """A stable group as saved; its members' sessions start now.

        >>> Group.from_json(Group("g").to_json()).state
        'Empty'
        """
        group = cls(data["group"])
        group.generation = int(data["generation"])
        group.protocol_type = data["protocol_type"]
        group.protocol = data["protocol"]
        group.leader = data["leader"]
        for m in data["members"]:
            group.members[m["id"]] = Member(
                m["id"],
                m["client"],
                m["instance"],
                float(m["session"]),
                float(m["rebalance"]),
                [(name, base64.b64decode(meta)) for name, meta in m["protocols"]],
                assignment=base64.b64decode(m["assignment"]),
            )
        group.state = STABLE if group.members else EMPTY
        return group


class GroupCoordinator:
    """All groups of the broker.

    Example:
        >>> GroupCoordinator().groups
        {}
    """

    def __init__(
        self,
        initial_rebalance_delay_ms: int = 0,
        min_session_timeout_ms: int = 1000,
        max_session_timeout_ms: int = 1_800_000,
        state_dir: Path | None = None,
    ) -> None:
        self.groups: dict[str, Group] = {}
        self.initial_delay = initial_rebalance_delay_ms / 1000.0
        self.min_session = min_session_timeout_ms
        self.max_session = max_session_timeout_ms
        self._task: asyncio.Task[None] | None = None
        # Where stable generations are saved (None: in memory only).
        self.path = None if state_dir is None else state_dir / "groups.json"
        self._saved: dict[str, dict[str, Any]] = {}
        if self.path is not None and self.path.exists():
            self._saved = json.loads(self.path.read_text())
            for data in self._saved.values():
                group = Group.from_json(data)
                self.groups[group.group_id] = group

    def _save(self, group: Group) -> None:
        """Record ``group``'s stable generation (or that it is empty) on disk."""
        if self.path is None:
            return
        if group.members:
            self._saved[group.group_id] = group.to_json()
        elif self._saved.pop(group.group_id, None) is None:
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as out:
            json.dump(self._saved, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)

    def start(self) -> None:
        """Start the session-expiry checker."""
        self._task = asyncio.get_running_loop().create_task(self._expiry_loop(), name="groups")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for g in self.groups.values():
            if g.timer:
                g.timer.cancel()
            for m in g.members.values():
                for fut in (m.join_future, m.sync_future):
                    if fut is not None and not fut.done():
                        fut.cancel()

    # -- join / sync ----------------------------------------------------------------------
    async def join(
        self,
        group_id: str,
        member_id: str,
        client_id: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        instance_id: str | None = None,
        require_known_member_id: bool = False,
    ) -> JoinResult:
        """Handle JoinGroup; resolves when the rebalance completes.

        ``require_known_member_id`` (JoinGroup v4+) makes a dynamic member without a member id
        come back with the id it is given (``MEMBER_ID_REQUIRED``), as Kafka does since KIP-394.
        """
        if not group_id:
            return JoinResult(error=ErrorCode.INVALID_GROUP_ID, member_id=member_id)
        if not self.min_session <= session_timeout_ms <= self.max_session:
            return JoinResult(error=ErrorCode.INVALID_SESSION_TIMEOUT, member_id=member_id)
        if not protocols or not protocol_type:
            return JoinResult(error=ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id=member_id)
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = Group(group_id)
        if group.members:
            names = {n for n, _ in protocols}
            if protocol_type != group.protocol_type or not (names & group.supported_protocols()):
                return JoinResult(error=ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id=member_id)
        if instance_id and not member_id:
            for m in group.members.values():
                if m.instance_id == instance_id:
                    member_id = m.member_id
                    break
        session = session_timeout_ms / 1000.0
        rebalance = rebalance_timeout_ms / 1000.0
        if not member_id:
            member_id = f"{client_id or 'member'}-{uuid.uuid4()}"
            if require_known_member_id and not instance_id:
                group.pending[member_id] = time.monotonic() + session
                return JoinResult(error=ErrorCode.MEMBER_ID_REQUIRED, member_id=member_id)
        elif group.pending.pop(member_id, None) is None and member_id not in group.members:
            return JoinResult(error=ErrorCode.UNKNOWN_MEMBER_ID, member_id=member_id)
        member = group.members.get(member_id)
        if member is None:
            member = Member(member_id, client_id, instance_id, session, rebalance, protocols)
            group.members[member_id] = member
            log.info("group %s: member %s joined", group_id, member_id)
        elif member.protocols == protocols and (
            group.state == COMPLETING or (group.state == STABLE and member_id != group.leader)
        ):
            # The member lost (or gave up waiting for) its JoinGroup answer: it gets the current
            # generation again; a rebalance now would only start another round for everyone.
            member.last_seen = time.monotonic()
            return group.current_join_result(member_id)
        else:
            member.protocols = protocols
            member.session_timeout = session
            member.rebalance_timeout = rebalance
        group.protocol_type = protocol_type
        member.last_seen = time.monotonic()
        if member.join_future is not None and not member.join_future.done():
            member.join_future.set_result(JoinResult(error=ErrorCode.REBALANCE_IN_PROGRESS))
        fut: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()
        member.join_future = fut
        if group.state != PREPARING:
            self._prepare_rebalance(group)
        self._maybe_complete_join(group)
        return await fut

    def _prepare_rebalance(self, group: Group) -> None:
        if group.state == COMPLETING:
            for m in group.members.values():
                if m.sync_future is not None and not m.sync_future.done():
                    m.sync_future.set_result((ErrorCode.REBALANCE_IN_PROGRESS, b""))
                m.sync_future = None
        initial = group.state == EMPTY
        group.state = PREPARING
        timeout = max((m.rebalance_timeout for m in group.members.values()), default=0.0)
        if initial and self.initial_delay > 0:
            timeout = self.initial_delay
        if group.timer:
            group.timer.cancel()
        loop = asyncio.get_running_loop()
        group.timer = loop.call_later(timeout, self._complete_join, group, True)

    def _maybe_complete_join(self, group: Group) -> None:
        if group.state != PREPARING:
            return
        if group.timer is not None and self.initial_delay > 0 and group.generation == 0:
            return  # wait out the initial delay so a burst of members lands in one generation
        # Pending members (KIP-394) are about to join: wait for them as Kafka does.
        if not group.pending and all(m.join_future is not None for m in group.members.values()):
            self._complete_join(group, False)

    def _complete_join(self, group: Group, forced: bool) -> None:
        if group.state != PREPARING:
            return
        if group.timer:
            group.timer.cancel()
            group.timer = None
        for mid in [mid for mid, m in group.members.items() if m.join_future is None]:
            log.info("group %s: member %s did not rejoin in time; removing", group.group_id, mid)
            del group.members[mid]
        group.generation += 1
        if not group.members:
            group.state = EMPTY
            group.protocol = None
            group.leader = None
            self._save(group)
            return
        candidates = group.supported_protocols()
        votes: dict[str, int] = {}
        for m in group.members.values():
            for name, _ in m.protocols:
                if name in candidates:
                    votes[name] = votes.get(name, 0) + 1
                    break
        leader_protocols = [n for n, _ in group.members[next(iter(group.members))].protocols]
        if not votes:  # cannot happen after the join-time check; never leave a group stuck
            votes = {leader_protocols[0]: 1}
        protocol = max(votes, key=lambda n: (votes[n], -leader_protocols.index(n)))
        group.protocol = protocol
        if group.leader not in group.members:
            group.leader = next(iter(group.members))
        group.state = COMPLETING
        now = time.monotonic()
        for m in group.members.values():
            fut, m.join_future = m.join_future, None
            m.last_seen = now
            m.assignment = b""
            if fut is not None and not fut.done():
                fut.set_result(group.current_join_result(m.member_id))
        log.info(
            "group %s: generation %d with %d member(s), protocol %s",
            group.group_id,
            group.generation,
            len(group.members),
            protocol,
        )

    async def sync(
        self, group_id: str, generation: int, member_id: str, assignments: dict[str, bytes]
    ) -> tuple[int, bytes]:
        """Handle SyncGroup; followers wait for the leader's assignments."""
        group = self.groups.get(group_id)
        if group is None or member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID, b""
        if generation != group.generation:
            return ErrorCode.ILLEGAL_GENERATION, b""
        member = group.members[member_id]
        member.last_seen = time.monotonic()
        if group.state == PREPARING:
            return ErrorCode.REBALANCE_IN_PROGRESS, b""
        if group.state == STABLE:
            return 0, member.assignment
        if member_id == group.leader:
            for m in group.members.values():
                m.assignment = assignments.get(m.member_id, b"")
            group.state = STABLE
            self._save(group)
            for m in group.members.values():
                fut, m.sync_future = m.sync_future, None
                if fut is not None and not fut.done():
                    fut.set_result((0, m.assignment))
            return 0, member.assignment
        fut: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        member.sync_future = fut
        return await fut

    def heartbeat(self, group_id: str, generation: int, member_id: str) -> int:
        """Handle Heartbeat; tells members when a rebalance is under way."""
        group = self.groups.get(group_id)
        if group is None or member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if generation != group.generation:
            return ErrorCode.ILLEGAL_GENERATION
        group.members[member_id].last_seen = time.monotonic()
        if group.state == PREPARING:
            return ErrorCode.REBALANCE_IN_PROGRESS
        return 0

    def leave(self, group_id: str, member_id: str, instance_id: str | None = None) -> int:
        """Handle one member of a LeaveGroup: drop it and rebalance the rest.

        A static member may leave by its ``instance_id`` alone (LeaveGroup v3+).
        """
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.pending.pop(member_id, None) is not None:
            if group.state == PREPARING:
                self._maybe_complete_join(group)
            return 0
        if instance_id and not member_id:
            member_id = next(
                (m.member_id for m in group.members.values() if m.instance_id == instance_id), ""
            )
        if member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        log.info("group %s: member %s left", group_id, member_id)
        self._remove(group, member_id)
        return 0

    def _remove(self, group: Group, member_id: str) -> None:
        member = group.members.pop(member_id)
        for fut in (member.join_future, member.sync_future):
            if fut is not None and not fut.done():
                fut.set_result(
                    JoinResult(error=ErrorCode.UNKNOWN_MEMBER_ID)  # type: ignore[arg-type]
                    if fut is member.join_future
                    else (ErrorCode.UNKNOWN_MEMBER_ID, b"")
                )
        if group.state == PREPARING:
            self._maybe_complete_join(group)
        elif group.members:
            self._prepare_rebalance(group)
            self._maybe_complete_join(group)
        else:
            if group.timer:
                group.timer.cancel()
                group.timer = None
            group.state = EMPTY
            group.generation += 1
            group.leader = None
            group.protocol = None
            self._save(group)

    def check_commit(self, group_id: str, generation: int, member_id: str) -> int:
        """Validate the generation/member of an OffsetCommit (-1 generation = simple commit)."""
        if generation < 0 and not member_id:
            return 0
        group = self.groups.get(group_id)
        if group is None or member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID if member_id else ErrorCode.ILLEGAL_GENERATION
        if generation != group.generation:
            return ErrorCode.ILLEGAL_GENERATION
        if group.state == COMPLETING:
            return ErrorCode.REBALANCE_IN_PROGRESS
        group.members[member_id].last_seen = time.monotonic()
        return 0

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for group in list(self.groups.values()):
                lapsed = [mid for mid, deadline in group.pending.items() if now > deadline]
                for mid in lapsed:
                    log.info("group %s: pending member %s never joined", group.group_id, mid)
                    del group.pending[mid]
                if lapsed and group.state == PREPARING:
                    self._maybe_complete_join(group)
                expired = [
                    m.member_id
                    for m in group.members.values()
                    if m.join_future is None
                    and m.sync_future is None
                    and now - m.last_seen > m.session_timeout
                ]
                for mid in expired:
                    if mid in group.members:
                        log.info("group %s: member %s session expired", group.group_id, mid)
                        self._remove(group, mid)
