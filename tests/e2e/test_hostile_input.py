"""Hostile input through the public API of a running fleet: the findings that opened issue 10 as
tests, what public answers may carry, and a bounded fuzz run against the gateway."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import grpc
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.client import FleetClient, build_request
from fleet.v1 import gateway_pb2, inference_pb2
from services.local.processes import LocalFleet
from tests.conftest import OTHER_KEY, PACKAGES, TEST_KEY
from tests.fuzz.strategies import VALID_IMAGES, class_names, examples, floats, hostile_bytes, hostile_urls

JPEG = VALID_IMAGES[".jpg"]
ANSWERS = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
MAX_DETAILS = 512


@pytest.fixture(scope="module")
def shared_client(fleet: LocalFleet) -> Iterator[FleetClient]:
    """One client for every example of a property (hypothesis runs them all in one test call)."""
    with FleetClient(fleet.gateway.address, TEST_KEY) as c:
        yield c


def internal_addresses(fleet: LocalFleet) -> list[str]:
    return [p.address for p in fleet.processes if p.name != "gateway"] + [str(PACKAGES), "file://"]


def call(client: FleetClient, request: inference_pb2.InferRequest, key: str = TEST_KEY) -> grpc.RpcError | None:
    try:
        client.stub.Infer(request, metadata=(("authorization", f"Bearer {key}"),), timeout=30)
    except grpc.RpcError as exc:
        return exc
    return None


def assert_clear(error: grpc.RpcError | None, fleet: LocalFleet, what: object) -> None:
    if error is None:
        return
    assert error.code() in ANSWERS, f"{what!r}: {error.code().name}: {error.details()}"
    details = error.details() or ""
    assert len(details) <= MAX_DETAILS, what
    for secret in internal_addresses(fleet) + [TEST_KEY]:
        assert secret not in details, f"{what!r}: {details}"


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/", "http://[::1/", "http://[::1]:99999/a.jpg",
                                 "http://127.0.0.1:0/", "https://user:pw@127.0.0.1/x.jpg"])
def test_malformed_image_urls_answer_invalid_argument(fleet: LocalFleet, client: FleetClient, url: str) -> None:
    error = call(client, inference_pb2.InferRequest(model_id="shapes-det/1", image=inference_pb2.Image(url=url)))
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert_clear(error, fleet, url)


def test_many_unknown_class_names_answer_a_short_invalid_argument(fleet: LocalFleet, client: FleetClient) -> None:
    names = [f"class-{i:05d}-{'x' * 40}" for i in range(2_000)]  # 100 KB of names: far over a trailer's 8 KiB
    error = call(client, build_request("shapes-det/1", JPEG, class_filter=names))
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "2000 unknown classes: 'class-00000-" in error.details() and "(1997 more)" in error.details()
    assert len(error.details()) <= MAX_DETAILS


def test_a_model_id_with_a_trailing_newline_is_invalid(client: FleetClient) -> None:
    error = call(client, build_request("shapes-det/1\n", JPEG))
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error


def test_public_answers_carry_no_artifact_path_internal_address_or_other_workspace(
        fleet: LocalFleet, client: FleetClient) -> None:
    added = client.stub.AddModel(gateway_pb2.AddModelRequest(model_id="shapes-det/1"), metadata=client.metadata,
                                 timeout=60)
    replies = [added, client.server_info(), client.describe_models(),
               client.stub.Infer(build_request("shapes-det/1", JPEG), metadata=client.metadata, timeout=30)]
    for reply in replies:
        wire = reply.SerializeToString()
        for secret in internal_addresses(fleet):
            assert secret.encode() not in wire, (type(reply).__name__, secret)
    assert client.server_info().workers and all(not w.address for w in client.server_info().workers)
    with FleetClient(fleet.gateway.address, OTHER_KEY) as other:  # a caller of another workspace
        assert not other.describe_models().models  # demo's models are not theirs to see
        assert all(not w.address for w in other.server_info().workers)


def test_the_worker_port_answers_only_to_what_it_is_sent(fleet: LocalFleet) -> None:
    """Errors from the internal plane reach callers without the worker's or the registry's address."""
    with FleetClient(fleet.gateway.address, "fk_not_a_key") as stranger:
        with pytest.raises(grpc.RpcError) as err:
            stranger.infer("shapes-det/1", JPEG)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert not re.search(r"\d+\.\d+\.\d+\.\d+:\d+", err.value.details())


@st.composite
def hostile_request(draw: st.DrawFn) -> tuple[inference_pb2.InferRequest, str]:
    model_id = draw(st.one_of(st.sampled_from(["shapes-det/1", "shapes-cls/1", "shapes-seg/1", "shapes-detector",
                                               "nope/1", "shapes-det/1\n", "", "../../etc", "a" * 200]),
                              st.text(max_size=80)))
    image = draw(st.one_of(
        hostile_bytes.map(lambda data: inference_pb2.Image(encoded=data)),
        st.just(inference_pb2.Image(encoded=JPEG)),
        hostile_urls.map(lambda url: inference_pb2.Image(url=url)),
        st.builds(lambda data, w, h, c, order: inference_pb2.Image(raw=inference_pb2.RawImage(
            data=data, width=w, height=h, channels=c, color_order=order)),
            st.binary(max_size=300), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 8),
            st.integers(0, 5)),
        st.just(inference_pb2.Image()),
    ))
    params = inference_pb2.InferenceParameters(class_filter=draw(class_names),
                                               class_agnostic_nms=draw(st.booleans()), visualize=draw(st.booleans()))
    if draw(st.booleans()):
        params.confidence, params.iou_threshold = draw(floats), draw(floats)
    if draw(st.booleans()):
        params.max_detections, params.max_candidates = draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1))
    key = draw(st.sampled_from([TEST_KEY] * 6 + [OTHER_KEY, "nope", "", "x" * 600, " " + TEST_KEY, TEST_KEY + "=="]))
    return inference_pb2.InferRequest(model_id=model_id, image=image, parameters=params,
                                      bypass_cache=draw(st.booleans())), key


@pytest.mark.fuzz
@examples(300)
@given(hostile_request())
def test_the_gateway_answers_hostile_requests_clearly_and_serves_on(
        fleet: LocalFleet, shared_client: FleetClient, case: tuple[inference_pb2.InferRequest, str]) -> None:
    request, key, client = *case, shared_client
    error = call(client, request, key)
    assert_clear(error, fleet, request.model_id)
    assert call(client, build_request("shapes-det/1", JPEG, confidence=0.5)) is None  # and a valid one succeeds


@pytest.mark.fuzz
@examples(40)
@given(st.lists(hostile_request(), min_size=1, max_size=6))
def test_streams_answer_every_hostile_item_and_go_on(fleet: LocalFleet, shared_client: FleetClient,
                                                     cases: list[tuple[inference_pb2.InferRequest, str]]) -> None:
    client = shared_client
    items = [gateway_pb2.InferStreamRequest(correlation_id=str(i), request=r) for i, (r, _) in enumerate(cases)]
    items.append(gateway_pb2.InferStreamRequest(correlation_id="valid", request=build_request("shapes-det/1", JPEG)))
    replies = {r.correlation_id: r for r in client.stub.InferStream(iter(items), metadata=client.metadata,
                                                                   timeout=60)}
    assert set(replies) == {item.correlation_id for item in items}
    for reply in replies.values():
        if reply.WhichOneof("outcome") == "error":
            assert grpc.StatusCode(next(c for c in grpc.StatusCode if c.value[0] == reply.error.code)) in ANSWERS
            assert len(reply.error.message) <= MAX_DETAILS
    assert replies["valid"].WhichOneof("outcome") == "response"


json_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70) | floats | st.text(max_size=30),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                       max_size=4), max_leaves=12)


@st.composite
def hostile_http_body(draw: st.DrawFn) -> dict:
    """A Roboflow v1 JSON body with any field replaced by something odd."""
    image = draw(st.one_of(st.builds(lambda u: {"type": "url", "value": u}, hostile_urls),
                           st.builds(lambda t: {"type": "base64", "value": t}, st.text(max_size=60)),
                           st.builds(lambda b: {"type": "base64", "value": base64.b64encode(b).decode()},
                                     hostile_bytes),
                           json_values))
    body = {"model_id": draw(st.one_of(st.sampled_from(["shapes-det/1", "shapes-det/1\n", "nope/1"]), json_values)),
            "image": image}
    for name in ("confidence", "iou_threshold", "class_filter", "max_detections", "max_candidates",
                 "class_agnostic_nms", "visualize_predictions"):
        if draw(st.booleans()):
            body[name] = draw(st.one_of(json_values, class_names))
    return body


HTTP_ANSWERS = {200, 400, 401, 403, 404, 413}


@pytest.mark.fuzz
@examples(60)
@given(hostile_http_body())
def test_the_http_api_answers_hostile_bodies_clearly_and_serves_on(fleet: LocalFleet, body: dict) -> None:
    url = f"{fleet.gateway.http_url}/infer/object_detection"
    headers = {"Authorization": f"Bearer {TEST_KEY}"}
    # Encoded here, NaN and Infinity included (as a hostile client may send them): httpx's own JSON encoder
    # refuses them, which would fail the test on the client side.
    raw = json.dumps(body, allow_nan=True)
    reply = httpx.post(url, content=raw, headers={**headers, "Content-Type": "application/json"}, timeout=30)
    assert reply.status_code in HTTP_ANSWERS, (raw[:300], reply.status_code, reply.text[:300])
    if reply.status_code != 200:
        message = reply.json()["message"]
        assert len(message) <= MAX_DETAILS and not any(s in message for s in internal_addresses(fleet))
    valid = {"model_id": "shapes-det/1", "image": {"type": "base64", "value": base64.b64encode(JPEG).decode()}}
    assert httpx.post(url, json=valid, headers=headers, timeout=30).status_code == 200
