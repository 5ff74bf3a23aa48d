"""Protocol edge cases: version negotiation and bad client input, on both brokers."""

from __future__ import annotations

import os
import time

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from broker_helpers import create_topic, produce_raw, raw_request, send_raw
from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse


def _produce_raw(bootstrap: str, topic: str, records: bytes) -> int:
    return produce_raw(bootstrap, topic, records)[0]


def test_api_versions_v0_lists_apis(bootstrap: str) -> None:
    resp = raw_request(bootstrap, ApiVersionsRequest[0](), ApiVersionsResponse, 0)
    assert resp.error_code == 0
    keys = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
    for key in (0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20, 22, 24, 25, 26, 28, 32):
        assert key in keys


def test_api_versions_unknown_version_gets_v0_error_35(bootstrap: str) -> None:
    # a flexible (v4) request re-labelled with a version no broker knows
    req = ApiVersionsRequest[4](client_software_name="conformance", client_software_version="1")
    req.with_header(correlation_id=9, client_id="conformance")
    frame = bytearray(req.encode(header=True, framed=True))
    frame[6:8] = (99).to_bytes(2, "big")  # an ApiVersions version nobody supports
    body = send_raw(bootstrap, bytes(frame))
    assert body is not None
    resp = ApiVersionsResponse.decode(body, version=0, header=True)
    assert resp.error_code == 35
    assert any(k.api_key == 18 for k in resp.api_keys)


async def test_corrupt_batch_rejected_broker_survives(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic)
    b = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 20)
    b.append(0, int(time.time() * 1000), None, b"payload", [])
    good = bytearray(b.build())
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    assert _produce_raw(bootstrap, topic, bytes(bad)) == 2  # CORRUPT_MESSAGE
    assert _produce_raw(bootstrap, topic, bytes(good[:40])) in (2, 87)
    assert _produce_raw(bootstrap, topic, bytes(good)) == 0
    # garbage frames close the connection; the broker keeps serving
    send_raw(bootstrap, (20).to_bytes(4, "big") + os.urandom(20))
    send_raw(bootstrap, (2**31 - 1).to_bytes(4, "big") + b"xx", read=False)
    resp = raw_request(bootstrap, ApiVersionsRequest[0](), ApiVersionsResponse, 0)
    assert resp.error_code == 0
