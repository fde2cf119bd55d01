"""BrokerClient at the HTTP boundary: golden requests against a recording server on 127.0.0.1.

Every test states the exact requests the broker must see; the ``http_server`` fixture fails a test
that makes a request nobody scripted, and each test checks the recorded list, so a request that is
never made fails too.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from http_recorder import Recorded, RecordingServer, Reply, json_reply

from adapters.core.broker import (
    STATUS_POLICY,
    Action,
    BrokerClient,
    BrokerConfigError,
    encode_entities,
    encode_json,
    policy_for,
    split_batches,
)
from adapters.core.entities import Entity

CONTEXT = "http://context-server/dos-adapters.jsonld"
LINK = f'<{CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
UPSERT = "/ngsi-ld/v1/entityOperations/upsert?options=update"
TOKEN = "static-token-abc123"


def parking(number: int, *, padding: str = "") -> Entity:
    entity: Entity = {
        "id": f"urn:ngsi-ld:OffStreetParking:dortmund:P{number}",
        "type": "OffStreetParking",
        "availableSpotNumber": {"type": "Property", "value": number, "observedAt": "2026-11-22T10:00:00Z"},
    }
    if padding:
        entity["description"] = {"type": "Property", "value": padding}
    return entity


def ids(entities: list[Entity]) -> list[str]:
    return [entity["id"] for entity in entities]


def upserts(server: RecordingServer) -> list[Recorded]:
    return [r for r in server.requests if r.path == "/ngsi-ld/v1/entityOperations/upsert"]


@pytest.fixture
def make_client() -> Iterator[Any]:
    clients: list[BrokerClient] = []

    def make(url: str, **options: Any) -> BrokerClient:
        options.setdefault("context_url", CONTEXT)
        client = BrokerClient(url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# --- the golden request --------------------------------------------------------------------------


def test_golden_upsert_request(http_server: RecordingServer, make_client: Any) -> None:
    http_server.script(Reply(204))
    client = make_client(http_server.url + "/", token=TOKEN)  # a trailing slash must not double up
    entity = {
        "id": "urn:ngsi-ld:OffStreetParking:dortmund:Parkhaus-Sued",
        "type": "OffStreetParking",
        "name": {"type": "Property", "value": "Parkhaus Süd"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.46, 51.51]}},
    }

    result = client.upsert("dortmund", [entity])

    (request,) = http_server.requests
    assert request.method == "POST"
    assert request.target == UPSERT
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["link"] == LINK
    assert request.headers["ngsild-tenant"] == "dortmund"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "fiware-service" not in request.headers  # both headers with different values -> 400
    assert (
        request.body
        == (
            '[{"id":"urn:ngsi-ld:OffStreetParking:dortmund:Parkhaus-Sued","type":"OffStreetParking",'
            '"name":{"type":"Property","value":"Parkhaus Süd"},'
            '"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[7.46,51.51]}}}]'
        ).encode()
    )
    assert "@context" not in request.body.decode()  # Link header and body @context together -> 400
    assert result.requests == 1
    assert result.delivered == [entity["id"]]
    assert (result.pending, result.rejected, result.transient_error) == ([], [], None)


def test_no_tenant_and_no_token_send_neither_header(http_server: RecordingServer, make_client: Any) -> None:
    http_server.script(Reply(204))
    make_client(http_server.url).upsert(None, [parking(1)])
    (request,) = http_server.requests
    assert "ngsild-tenant" not in request.headers
    assert "authorization" not in request.headers
    assert request.headers["link"] == LINK


def test_empty_upsert_sends_nothing(http_server: RecordingServer, make_client: Any) -> None:
    result = make_client(http_server.url).upsert("dortmund", [])
    assert http_server.requests == []
    assert result.requests == 0
    assert result.delivered == []


# --- batch splitting -----------------------------------------------------------------------------


def test_split_at_max_batch_entities(http_server: RecordingServer, make_client: Any) -> None:
    http_server.script(*[Reply(204)] * 3)
    entities = [parking(n) for n in range(7)]
    result = make_client(http_server.url, max_batch_entities=3).upsert("dortmund", entities)
    bodies = [request.json() for request in http_server.requests]
    assert [len(body) for body in bodies] == [3, 3, 1]
    assert [entity for body in bodies for entity in body] == entities
    assert result.requests == 3
    assert result.delivered == ids(entities)


def test_split_at_max_payload_bytes(http_server: RecordingServer, make_client: Any) -> None:
    limit = 2048
    entities = [parking(n, padding="ä" * (50 + 40 * (n % 5))) for n in range(30)]  # multi-byte: count bytes
    http_server.responder = lambda _request: Reply(204)
    result = make_client(http_server.url, max_payload_bytes=limit).upsert("dortmund", entities)

    bodies = [request.body for request in http_server.requests]
    assert len(bodies) > 1
    assert all(len(body) <= limit for body in bodies)
    assert [entity for body in bodies for entity in json.loads(body)] == entities
    # greedy: a batch was only closed because the next entity would not have fitted
    sizes = [len(encode_entities([entity])) - 2 for entity in entities]
    position = 0
    for body in bodies[:-1]:
        position += len(json.loads(body))
        assert len(body) + 1 + sizes[position] > limit
    assert result.delivered == ids(entities)


def test_entity_alone_above_the_byte_limit_is_sent_alone() -> None:
    small, big = parking(1), parking(2, padding="x" * 5000)
    batches = list(split_batches([small, big, parking(3)], 1000, 1024))
    assert batches == [[small], [big], [parking(3)]]


def test_413_halves_the_batch_until_a_single_entity_is_rejected(http_server: RecordingServer, make_client: Any) -> None:
    limit = 700  # the broker's real limit, lower than the configured one
    big = parking(99, padding="x" * 800)
    entities = [parking(1), parking(2), big, parking(3)]

    def broker(request: Recorded) -> Reply:
        if len(request.body) > limit:
            return json_reply(413, {"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData", "title": "too big"})
        return Reply(204)

    http_server.responder = broker
    result = make_client(http_server.url).upsert("dortmund", entities)

    sent = [ids(request.json()) for request in http_server.requests]
    assert sent == [
        ids(entities),
        ids(entities[:2]),
        ids(entities[2:]),
        [big["id"]],
        [entities[3]["id"]],
    ]
    assert result.requests == 5
    assert result.delivered == ids([entities[0], entities[1], entities[3]])
    assert result.pending == []
    ((rejected, problem),) = result.rejected
    assert rejected == big
    assert problem["status"] == 413


# --- status handling -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        json_reply(201, ["urn:ngsi-ld:OffStreetParking:dortmund:P1", "urn:ngsi-ld:OffStreetParking:dortmund:P2"]),
        Reply(204),
        json_reply(207, {"success": ["urn:ngsi-ld:OffStreetParking:dortmund:P1"], "errors": []}),
        json_reply(207, {"success": ["urn:ngsi-ld:OffStreetParking:dortmund:P1"]}),
    ],
    ids=["201", "204", "207-empty-errors", "207-no-errors-key"],
)
def test_success_statuses_deliver_everything(http_server: RecordingServer, make_client: Any, reply: Reply) -> None:
    http_server.script(reply)
    result = make_client(http_server.url).upsert("dortmund", [parking(1), parking(2)])
    assert result.delivered == ids([parking(1), parking(2)])
    assert (result.pending, result.rejected, result.transient_error) == ([], [], None)


def test_207_with_a_400_item_rejects_that_entity_with_its_problem(
    http_server: RecordingServer, make_client: Any
) -> None:
    problem = {
        "type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
        "title": "Invalid attribute",
        "detail": "availableSpotNumber: value missing",
        "status": 400,
    }
    entities = [parking(1), parking(2), parking(3)]
    http_server.script(
        json_reply(
            207,
            {"success": ids([entities[0], entities[2]]), "errors": [{"entityId": entities[1]["id"], "error": problem}]},
        )
    )
    result = make_client(http_server.url).upsert("dortmund", entities)
    assert result.delivered == ids([entities[0], entities[2]])
    assert result.rejected == [(entities[1], problem)]
    assert result.pending == []
    assert result.transient_error is None


def test_207_error_without_status_counts_as_a_rejection(http_server: RecordingServer, make_client: Any) -> None:
    error = {"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData", "title": "bad"}
    http_server.script(json_reply(207, {"success": [], "errors": [{"entityId": parking(1)["id"], "error": error}]}))
    result = make_client(http_server.url).upsert("dortmund", [parking(1)])
    assert result.rejected == [(parking(1), error)]


def test_207_with_a_503_item_keeps_it_pending_and_later_batches_unsent(
    http_server: RecordingServer, make_client: Any
) -> None:
    entities = [parking(n) for n in range(1, 6)]
    http_server.script(
        json_reply(
            207,
            {
                "success": [entities[0]["id"]],
                "errors": [{"entityId": entities[1]["id"], "error": {"title": "context unavailable", "status": 503}}],
            },
        )
    )
    result = make_client(http_server.url, max_batch_entities=2).upsert("dortmund", entities)
    assert len(http_server.requests) == 1  # batches 2 and 3 wait behind the pending entity
    assert result.requests == 1
    assert result.delivered == [entities[0]["id"]]
    assert result.pending == entities[1:]
    assert result.rejected == []
    assert result.transient_error is not None
    assert "503" in result.transient_error


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 599])
def test_transient_status_keeps_everything_pending_in_order(
    http_server: RecordingServer, make_client: Any, status: int
) -> None:
    entities = [parking(n) for n in range(1, 6)]
    http_server.script(Reply(204), Reply(status, b"busy"))
    result = make_client(http_server.url, max_batch_entities=2).upsert("dortmund", entities)
    assert len(http_server.requests) == 2
    assert result.delivered == ids(entities[:2])
    assert result.pending == entities[2:]
    assert result.transient_error is not None
    assert result.transient_error.startswith(str(status))
    assert result.retry_after is None


def test_429_with_retry_after(http_server: RecordingServer, make_client: Any) -> None:
    http_server.script(Reply(429, b"slow down", {"Retry-After": "42"}))
    result = make_client(http_server.url).upsert("dortmund", [parking(1)])
    assert result.pending == [parking(1)]
    assert result.retry_after == 42.0
    assert result.transient_error is not None
    assert "429" in result.transient_error


def test_503_with_retry_after(http_server: RecordingServer, make_client: Any) -> None:
    http_server.script(Reply(503, b"", {"Retry-After": "7"}))
    result = make_client(http_server.url).upsert("dortmund", [parking(1)])
    assert (result.pending, result.retry_after) == ([parking(1)], 7.0)


def test_400_for_the_whole_batch_rejects_every_entity_with_the_problem(
    http_server: RecordingServer, make_client: Any
) -> None:
    body = {"type": "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest", "title": "JSON Parse Error", "detail": "x"}
    http_server.script(json_reply(400, body))
    entities = [parking(1), parking(2)]
    result = make_client(http_server.url).upsert("dortmund", entities)
    assert [entity for entity, _ in result.rejected] == entities
    for _, problem in result.rejected:
        assert problem["type"] == body["type"]
        assert problem["title"] == "JSON Parse Error"
        assert problem["status"] == 400
        assert "hint" in problem
    assert result.delivered == []
    assert result.pending == []


def test_non_json_error_body_still_gives_a_problem(http_server: RecordingServer, make_client: Any) -> None:
    http_server.script(Reply(415, b"<html>unsupported</html>"))
    result = make_client(http_server.url).upsert("dortmund", [parking(1)])
    ((_, problem),) = result.rejected
    assert problem["status"] == 415
    assert "unsupported" in problem["detail"]


def test_connection_refused_is_transient(closed_port_url: str, make_client: Any) -> None:
    entities = [parking(1), parking(2), parking(3)]
    result = make_client(closed_port_url, max_batch_entities=1).upsert("dortmund", entities)
    assert result.pending == entities
    assert result.delivered == []
    assert result.requests == 1  # the first failure stops the attempt
    assert result.transient_error is not None
    assert "unreachable" in result.transient_error


def test_read_timeout_is_transient(http_server: RecordingServer, make_client: Any) -> None:
    def slow(_request: Recorded) -> Reply:
        http_server.stop.wait(1.0)
        return Reply(204)

    http_server.responder = slow
    result = make_client(http_server.url, timeout=0.2).upsert("dortmund", [parking(1)])
    assert result.pending == [parking(1)]
    assert result.transient_error is not None


@pytest.mark.parametrize("status", [401, 403, 404])
def test_config_statuses_raise_broker_config_error(http_server: RecordingServer, make_client: Any, status: int) -> None:
    http_server.script(json_reply(status, {"title": "no"}))
    client = make_client(http_server.url, token=TOKEN)
    with pytest.raises(BrokerConfigError, match=str(status)) as error:
        client.upsert("dortmund", [parking(1)])
    assert len(http_server.requests) == 1  # a static token is not retried
    assert TOKEN not in str(error.value)


def test_status_policy_table() -> None:
    assert STATUS_POLICY[401].action is Action.CONFIG
    assert STATUS_POLICY[413].action is Action.SPLIT
    assert STATUS_POLICY[207].action is Action.PARTIAL
    assert policy_for(429).action is Action.RETRY
    assert policy_for(507).action is Action.RETRY
    assert policy_for(202).action is Action.DELIVERED
    assert policy_for(418).action is Action.REJECT
    assert all(policy.hint for policy in STATUS_POLICY.values())


# --- OAuth2 client credentials -------------------------------------------------------------------


class OAuthBroker:
    """One server playing token endpoint (/token) and broker; the broker accepts only current tokens."""

    def __init__(self, server: RecordingServer, *, expires_in: int = 3600, secret: str = "right") -> None:
        self.server = server
        self.expires_in = expires_in
        self.secret = secret
        self.issued = 0
        self.valid: set[str] = set()
        server.responder = self

    def revoke_all(self) -> None:
        self.valid.clear()

    def __call__(self, request: Recorded) -> Reply:
        if request.path == "/token":
            form = dict(urllib.parse.parse_qsl(request.body.decode()))
            if form.get("client_secret") != self.secret:
                return json_reply(401, {"error": "invalid_client"})
            self.issued += 1
            token = f"tok-{self.issued}"
            self.valid.add(token)
            return json_reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})
        if request.headers.get("authorization", "").removeprefix("Bearer ") in self.valid:
            return Reply(204)
        return json_reply(401, {"title": "Unauthorized"})

    def trace(self) -> list[str]:
        return [
            "token" if r.path == "/token" else r.headers.get("authorization", "-").removeprefix("Bearer ")
            for r in self.server.requests
        ]


def oauth(server: RecordingServer, secret: str = "right") -> dict[str, str]:
    return {"token_url": server.url + "/token", "client_id": "dos", "client_secret": secret, "scope": "entities"}


def test_oauth2_token_is_fetched_once_and_cached(http_server: RecordingServer, make_client: Any) -> None:
    broker = OAuthBroker(http_server)
    client = make_client(http_server.url, oauth2=oauth(http_server))
    assert client.upsert("dortmund", [parking(1)]).delivered == ids([parking(1)])
    assert client.upsert("dortmund", [parking(2)]).delivered == ids([parking(2)])
    assert broker.trace() == ["token", "tok-1", "tok-1"]
    token_request = http_server.requests[0]
    assert token_request.method == "POST"
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert dict(urllib.parse.parse_qsl(token_request.body.decode())) == {
        "grant_type": "client_credentials",
        "client_id": "dos",
        "client_secret": "right",
        "scope": "entities",
    }


def test_oauth2_token_refreshed_when_expired(http_server: RecordingServer, make_client: Any) -> None:
    broker = OAuthBroker(http_server, expires_in=0)
    client = make_client(http_server.url, oauth2=oauth(http_server))
    client.upsert("dortmund", [parking(1)])
    client.upsert("dortmund", [parking(2)])
    assert broker.trace() == ["token", "tok-1", "token", "tok-2"]


def test_oauth2_token_refreshed_once_on_401(http_server: RecordingServer, make_client: Any) -> None:
    broker = OAuthBroker(http_server)
    client = make_client(http_server.url, oauth2=oauth(http_server))
    client.upsert("dortmund", [parking(1)])
    broker.revoke_all()  # e.g. the identity provider restarted
    result = client.upsert("dortmund", [parking(2)])
    assert result.delivered == ids([parking(2)])
    assert broker.trace() == ["token", "tok-1", "tok-1", "token", "tok-2"]
    assert upserts(http_server)[-1].body == upserts(http_server)[-2].body  # the same batch, resent


def test_oauth2_persistent_401_is_a_config_error_after_one_retry(
    http_server: RecordingServer, make_client: Any
) -> None:
    def broker(request: Recorded) -> Reply:
        if request.path == "/token":
            return json_reply(200, {"access_token": "never-good", "expires_in": 3600})
        return json_reply(401, {"title": "Unauthorized"})

    http_server.responder = broker
    client = make_client(http_server.url, oauth2=oauth(http_server))
    with pytest.raises(BrokerConfigError, match="401"):
        client.upsert("dortmund", [parking(1)])
    assert [r.path for r in http_server.requests] == [
        "/token",
        "/ngsi-ld/v1/entityOperations/upsert",
        "/token",
        "/ngsi-ld/v1/entityOperations/upsert",
    ]


def test_oauth2_bad_client_secret_is_a_config_error(http_server: RecordingServer, make_client: Any) -> None:
    OAuthBroker(http_server, secret="right")
    client = make_client(http_server.url, oauth2=oauth(http_server, secret="wrong-secret-value"))
    with pytest.raises(BrokerConfigError, match="oauth2") as error:
        client.upsert("dortmund", [parking(1)])
    assert "wrong-secret-value" not in str(error.value)
    assert [r.path for r in http_server.requests] == ["/token"]  # the broker never saw a request


def test_oauth2_token_endpoint_down_is_transient(http_server: RecordingServer, make_client: Any) -> None:
    def broker(request: Recorded) -> Reply:
        if request.path == "/token":
            return Reply(503, b"maintenance")
        return Reply(204)

    http_server.responder = broker
    client = make_client(http_server.url, oauth2=oauth(http_server))
    result = client.upsert("dortmund", [parking(1), parking(2)])
    assert result.pending == [parking(1), parking(2)]
    assert result.delivered == []
    assert result.transient_error is not None
    assert "token endpoint" in result.transient_error
    assert [r.path for r in http_server.requests] == ["/token"]


def test_oauth2_token_endpoint_unreachable_is_transient(closed_port_url: str, make_client: Any) -> None:
    options = {"token_url": closed_port_url + "/token", "client_id": "dos", "client_secret": "s"}
    result = make_client(closed_port_url, oauth2=options).upsert("dortmund", [parking(1)])
    assert result.pending == [parking(1)]
    assert result.transient_error is not None


@pytest.mark.parametrize("body", [b"<html>login page</html>", b'{"token": "x"}', b"[]"])
def test_oauth2_token_answer_without_access_token_is_a_config_error(
    http_server: RecordingServer, make_client: Any, body: bytes
) -> None:
    http_server.script(Reply(200, body, {"Content-Type": "application/json"}))
    client = make_client(http_server.url, oauth2=oauth(http_server))
    with pytest.raises(BrokerConfigError, match="access_token"):
        client.upsert("dortmund", [parking(1)])
    assert [r.path for r in http_server.requests] == ["/token"]


def test_an_entity_id_appears_at_most_once_per_batch() -> None:
    """Orion-LD merges duplicate ids within a batch into one notification: QuantumLeap would lose readings."""
    from adapters.core.broker import split_batches

    readings = [
        {
            "id": f"urn:ngsi-ld:WasteContainer:dortmund:bin-{n % 2}",
            "type": "WasteContainer",
            "fillingLevel": {"type": "Property", "value": n / 10},
        }
        for n in range(5)
    ]
    batches = list(split_batches(readings, 1000, 1_048_576))
    assert [[e["fillingLevel"]["value"] for e in batch] for batch in batches] == [[0.0, 0.1], [0.2, 0.3], [0.4]]


# --- encoding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        'ü, U+2028 \u2028, emoji 😀, controls \x00\x1f\x7f, quotes " and \\',
        [0.1, 21.0, 1e16, -0.0, 123456789.123, 2**63 - 1, -(2**63), True, None],
        {"nested": {"list": [1, {"a": "b"}]}, "empty": {}, "none": []},
    ],
)
def test_encode_json_writes_what_json_writes(value: Any) -> None:
    assert encode_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def test_encode_json_takes_what_orjson_refuses_from_json() -> None:
    assert encode_json({"big": 2**70, 1: "int key"}) == b'{"big":1180591620717411303424,"1":"int key"}'
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate cannot be sent, with either encoder
        encode_json({"bad": "\ud800"})
