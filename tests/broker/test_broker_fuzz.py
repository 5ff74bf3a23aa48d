"""Random request bodies for every advertised API never take the broker down."""

from __future__ import annotations

import contextlib
import random
import socket
import struct

from broker_helpers import raw_request
from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse

from streamflow.broker.protocol import API_TABLE


def _frame(key: int, version: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", key, version, 7, 4) + b"fuzz"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def test_fuzzed_requests_do_not_crash(embedded) -> None:
    host, port = embedded.bootstrap.rsplit(":", 1)
    rng = random.Random(1234)
    for i in range(400):
        spec = rng.choice(list(API_TABLE.values()))
        version = rng.randint(spec.min_version, spec.max_version)
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
        if i % 3 == 0:  # mostly-valid prefix: small counts and lengths
            body = b"\x00\x00\x00\x01" * rng.randint(1, 8) + body
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(_frame(spec.key, version, body))
            s.settimeout(0.5)
            with contextlib.suppress(OSError):
                s.recv(65536)
    assert embedded.running
    resp = raw_request(embedded.bootstrap, ApiVersionsRequest[0](), ApiVersionsResponse, 0)
    assert resp.error_code == 0
