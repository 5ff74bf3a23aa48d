"""Wire framing, the advertised API table, and request decoding / response encoding.

All message bodies are encoded and decoded by kafka-python's ``kafka.protocol`` classes; this
module only picks the class for an (api key, version) pair and builds responses from plain
dicts.

Example:
    >>> from kafka.protocol.metadata import ApiVersionsRequest
    >>> req = ApiVersionsRequest[0]()
    >>> req.with_header(correlation_id=7, client_id="doc")
    >>> decoded = decode_request(bytes(req.encode(header=True)))
    >>> (decoded.api_key, decoded.version, decoded.correlation_id)
    (18, 0, 7)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from kafka.protocol.admin import (
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteRecordsRequest,
    DeleteRecordsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)
from kafka.protocol.api_header import RequestHeader
from kafka.protocol.consumer import (
    FetchRequest,
    FetchResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)
from kafka.protocol.metadata import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    MetadataRequest,
    MetadataResponse,
)
from kafka.protocol.producer import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    EndTxnRequest,
    EndTxnResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    ProduceRequest,
    ProduceResponse,
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
)

from .errors import ErrorCode


@dataclass(frozen=True)
class ApiSpec:
    """One API the broker implements, with the version range it advertises.

    Example:
        >>> API_TABLE[0].name, API_TABLE[0].min_version, API_TABLE[0].max_version
        ('produce', 3, 7)
    """

    key: int
    name: str
    request: Any
    response: Any
    min_version: int
    max_version: int


_SPECS = [
    ApiSpec(0, "produce", ProduceRequest, ProduceResponse, 3, 7),
    ApiSpec(1, "fetch", FetchRequest, FetchResponse, 4, 11),
    ApiSpec(2, "list_offsets", ListOffsetsRequest, ListOffsetsResponse, 1, 3),
    ApiSpec(3, "metadata", MetadataRequest, MetadataResponse, 1, 5),
    ApiSpec(8, "offset_commit", OffsetCommitRequest, OffsetCommitResponse, 2, 3),
    ApiSpec(9, "offset_fetch", OffsetFetchRequest, OffsetFetchResponse, 1, 3),
    ApiSpec(10, "find_coordinator", FindCoordinatorRequest, FindCoordinatorResponse, 0, 1),
    ApiSpec(11, "join_group", JoinGroupRequest, JoinGroupResponse, 0, 5),
    ApiSpec(12, "heartbeat", HeartbeatRequest, HeartbeatResponse, 0, 3),
    ApiSpec(13, "leave_group", LeaveGroupRequest, LeaveGroupResponse, 0, 3),
    ApiSpec(14, "sync_group", SyncGroupRequest, SyncGroupResponse, 0, 3),
    ApiSpec(18, "api_versions", ApiVersionsRequest, ApiVersionsResponse, 0, 2),
    ApiSpec(19, "create_topics", CreateTopicsRequest, CreateTopicsResponse, 1, 4),
    ApiSpec(20, "delete_topics", DeleteTopicsRequest, DeleteTopicsResponse, 1, 3),
    ApiSpec(21, "delete_records", DeleteRecordsRequest, DeleteRecordsResponse, 0, 1),
    ApiSpec(22, "init_producer_id", InitProducerIdRequest, InitProducerIdResponse, 0, 1),
    ApiSpec(
        24, "add_partitions_to_txn", AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, 0, 2
    ),
    ApiSpec(25, "add_offsets_to_txn", AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, 0, 2),
    ApiSpec(26, "end_txn", EndTxnRequest, EndTxnResponse, 0, 2),
    ApiSpec(28, "txn_offset_commit", TxnOffsetCommitRequest, TxnOffsetCommitResponse, 0, 2),
    ApiSpec(32, "describe_configs", DescribeConfigsRequest, DescribeConfigsResponse, 1, 2),
]

API_TABLE: dict[int, ApiSpec] = {s.key: s for s in _SPECS}
"""Advertised APIs by key; ApiVersions answers exactly this table."""

API_VERSIONS_KEY = 18


class ProtocolError(Exception):
    """The request cannot be decoded; the connection gets closed (as Kafka does).

    Example:
        >>> try:
        ...     decode_request(b"x")
        ... except ProtocolError:
        ...     print("closed")
        closed
    """


@dataclass
class DecodedRequest:
    """A request frame after header (and, if supported, body) decoding.

    Example:
        >>> DecodedRequest(3, 1, 9, "cli", None).supported
        False
    """

    api_key: int
    version: int
    correlation_id: int
    client_id: str | None
    body: Any

    @property
    def supported(self) -> bool:
        return self.body is not None


def decode_request(payload: bytes) -> DecodedRequest:
    """Decode one request frame (without the 4-byte length prefix).

    Unsupported (key, version) pairs come back with ``body=None``.

    Example:
        >>> from kafka.protocol.metadata import ApiVersionsRequest
        >>> r = ApiVersionsRequest[0]()
        >>> r.with_header(correlation_id=1, client_id="x")
        >>> decode_request(bytes(r.encode(header=True))).supported
        True
    """
    try:
        header = RequestHeader.decode(io.BytesIO(payload), flexible=False)
    except Exception as e:
        raise ProtocolError(f"undecodable request header: {e!r}") from e
    key, version = header.request_api_key, header.request_api_version
    spec = API_TABLE.get(key)
    if spec is None or not spec.min_version <= version <= spec.max_version:
        return DecodedRequest(key, version, header.correlation_id, header.client_id, None)
    try:
        body = spec.request.decode(payload, version=version, header=True)
    except Exception as e:
        raise ProtocolError(f"undecodable {spec.name} v{version} request: {e!r}") from e
    return DecodedRequest(key, version, header.correlation_id, header.client_id, body)


def _build(cls: Any, values: dict[str, Any], version: int | None) -> Any:
    fields = cls._struct.fields
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        f = fields[name]
        if value is not None and f.is_struct_array():
            value = [_build(f.data_class, v, None) if isinstance(v, dict) else v for v in value]
        elif value is not None and f.is_struct() and isinstance(value, dict):
            value = _build(f.data_class, value, None)
        kwargs[name] = value
    if version is None:
        return cls(**kwargs)
    return cls[version](**kwargs)


def make_response(spec: ApiSpec, version: int, values: dict[str, Any]) -> Any:
    """Build a response object of ``spec`` at ``version`` from nested plain dicts.

    Example:
        >>> r = make_response(API_TABLE[12], 1, {"throttle_time_ms": 0, "error_code": 0})
        >>> r.error_code
        0
    """
    return _build(spec.response, values, version)


def encode_response(response: Any, correlation_id: int) -> bytes:
    """Frame a response (length prefix + header + body).

    Example:
        >>> r = make_response(API_TABLE[12], 0, {"error_code": 0})
        >>> len(encode_response(r, 5))
        10
    """
    response.with_header(correlation_id=correlation_id)
    return bytes(response.encode(header=True, framed=True))


def api_versions_body() -> list[dict[str, int]]:
    """The advertised version table as ApiVersions entries.

    Example:
        >>> api_versions_body()[0]
        {'api_key': 0, 'min_version': 3, 'max_version': 7}
    """
    return [
        {"api_key": s.key, "min_version": s.min_version, "max_version": s.max_version}
        for s in _SPECS
    ]


def unsupported_api_versions(correlation_id: int) -> bytes:
    """Kafka's answer to an ApiVersions version it does not know: v0 body, error 35.

    Example:
        >>> unsupported_api_versions(1)[8:10] == (35).to_bytes(2, "big")
        True
    """
    resp = ApiVersionsResponse[0](
        error_code=ErrorCode.UNSUPPORTED_VERSION,
        api_keys=[
            _build(ApiVersionsResponse._struct.fields["api_keys"].data_class, e, None)
            for e in api_versions_body()
        ],
    )
    return encode_response(resp, correlation_id)
