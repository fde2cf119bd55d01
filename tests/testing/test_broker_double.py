"""The broker double against real HTTP: every Orion-LD rule it claims, as assertions that can fail.

Expected bodies quoted from Orion-LD's functional tests are marked with the test's name.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from adapters.testing import BrokerDouble, ProblemDetail, ProblemType

CTX = "https://example.org/ctx.jsonld"
LINK = f'<{CTX}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
JSON = {"Content-Type": "application/json", "Link": LINK}
LD = {"Content-Type": "application/ld+json"}
BAD = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


def spot(n: int, **attributes: Any) -> dict[str, Any]:
    """A normalized ParkingSpot as the adapters emit it."""
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:ParkingSpot:lyon:{n}",
        "type": "ParkingSpot",
        "status": {"type": "Property", "value": "free", "observedAt": "2026-11-22T10:00:00Z"},
    }
    entity.update(attributes)
    return entity


def sid(n: int) -> str:
    return f"urn:ngsi-ld:ParkingSpot:lyon:{n}"


@pytest.fixture
def broker() -> Iterator[BrokerDouble]:
    with BrokerDouble() as double:
        yield double


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


class Api:
    """Short calls against one double."""

    def __init__(self, broker: BrokerDouble, session: requests.Session) -> None:
        self.base = f"{broker.url}/ngsi-ld/v1"
        self.session = session

    def upsert(
        self, entities: Any, options: str | None = "update", headers: dict[str, str] | None = None
    ) -> requests.Response:
        query = "" if options is None else f"?options={options}"
        return self.post(f"/entityOperations/upsert{query}", entities, headers)

    def create(self, entities: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return self.post("/entityOperations/create", entities, headers)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.session.post(self.base + path, data=data, headers=JSON if headers is None else headers)

    def get(self, path: str, headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.get(self.base + path, headers=headers or {})

    def patch(self, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.patch(self.base + path, data=json.dumps(body), headers=headers or JSON)

    def delete(self, path: str, headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.delete(self.base + path, headers=headers or {})


@pytest.fixture
def api(broker: BrokerDouble, http: requests.Session) -> Api:
    return Api(broker, http)


def problem(response: requests.Response, status: int) -> dict[str, Any]:
    """Assert an Orion-LD style ProblemDetails answer and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert "status" not in body, "Orion-LD omits the top-level status"
    return body


def tenant(name: str, **headers: str) -> dict[str, str]:
    return {**JSON, "NGSILD-Tenant": name, **headers}


# --------------------------------------------------------------------------------- batch upsert


def test_upsert_of_new_entities_answers_201_with_the_created_ids(api: Api, broker: BrokerDouble) -> None:
    response = api.upsert([spot(1), spot(2)])

    assert response.status_code == 201
    assert response.json() == [sid(1), sid(2)]
    assert broker.entities() == {sid(1): spot(1), sid(2): spot(2)}


def test_upsert_of_existing_entities_answers_204_without_body(api: Api) -> None:
    api.upsert([spot(1), spot(2)])

    response = api.upsert([spot(1), spot(2)])

    assert response.status_code == 204
    assert response.content == b""


def test_upsert_mixing_new_and_existing_answers_207_without_errors(api: Api) -> None:
    api.upsert([spot(1)])

    response = api.upsert([spot(2), spot(1)])

    assert response.status_code == 207
    # legacyPostBatchUpsert.cpp: updated ids first, then created ones.
    assert response.json() == {"success": [sid(1), sid(2)], "errors": []}


def test_options_update_merges_attributes_and_replace_replaces_the_entity(api: Api, broker: BrokerDouble) -> None:
    api.upsert([spot(1, name={"type": "Property", "value": "A1"})])
    changed = {"type": "Property", "value": "occupied", "observedAt": "2026-11-22T11:00:00Z"}

    api.upsert([{"id": sid(1), "type": "ParkingSpot", "status": changed}], options="update")
    assert broker.entities()[sid(1)] == spot(1, name={"type": "Property", "value": "A1"}, status=changed)

    assert api.upsert([{"id": sid(1), "type": "ParkingSpot", "status": changed}], options="replace").status_code == 204
    assert broker.entities()[sid(1)] == {"id": sid(1), "type": "ParkingSpot", "status": changed}


def test_default_upsert_mode_is_replace(api: Api, broker: BrokerDouble) -> None:
    api.upsert([spot(1, name={"type": "Property", "value": "A1"})])

    api.upsert([spot(1)], options=None)

    assert "name" not in broker.entities()[sid(1)]


def test_duplicate_ids_in_one_batch_merge_with_update_and_last_wins_with_replace(
    api: Api, broker: BrokerDouble
) -> None:
    # ngsild_batch_upsert_duplicate_ids.test
    first = {
        "id": sid(1),
        "type": "T",
        "A": {"type": "Property", "value": "a1"},
        "C": {"type": "Property", "value": "c1"},
    }
    second = {
        "id": sid(1),
        "type": "T",
        "B": {"type": "Property", "value": "b1"},
        "C": {"type": "Property", "value": "c2"},
    }

    merged = api.upsert([first, second], options="update")
    assert merged.status_code == 201
    assert merged.json() == [sid(1)]
    assert broker.entities()[sid(1)] == {"id": sid(1), "type": "T", "A": first["A"], "B": second["B"], "C": second["C"]}

    third = {"id": sid(2), "type": "T", "A": {"type": "Property", "value": "x"}}
    fourth = {"id": sid(2), "type": "T", "B": {"type": "Property", "value": "y"}}
    api.upsert([third, fourth], options=None)
    assert broker.entities()[sid(2)] == fourth


def test_upsert_may_omit_the_type_of_an_existing_entity(api: Api, broker: BrokerDouble) -> None:
    api.upsert([spot(1)])

    response = api.upsert([{"id": sid(1), "name": {"type": "Property", "value": "A1"}}])

    assert response.status_code == 204
    assert broker.entities()[sid(1)]["type"] == "ParkingSpot"


def test_upsert_refuses_a_type_change_unless_replace_is_explicit(api: Api, broker: BrokerDouble) -> None:
    api.upsert([spot(1)])
    renamed = {**spot(1), "type": "OffStreetParking"}

    refused = api.upsert([renamed], options="update")
    allowed = api.upsert([renamed], options="replace")

    assert refused.json() == {
        "success": [],
        "errors": [
            {
                "entityId": sid(1),
                "error": {
                    "type": BAD,
                    "title": "non-matching entity type",
                    "detail": "OffStreetParking",
                    "status": 400,
                },
            }
        ],
    }
    assert allowed.status_code == 204
    assert broker.entities()[sid(1)]["type"] == "OffStreetParking"


def test_update_and_replace_together_are_refused(api: Api) -> None:
    body = problem(api.upsert([spot(1)], options="update,replace"), 400)

    assert body == {"type": BAD, "title": "URI Param Error", "detail": "options: both /update/ and /replace/ present"}


def test_invalid_entities_in_a_batch_get_207_items_and_the_valid_ones_are_stored(
    api: Api, broker: BrokerDouble
) -> None:
    batch = [spot(1), {"id": "spot-2", "type": "ParkingSpot"}, spot(3, status={"type": "Property"}), 42]

    response = api.upsert(batch)

    assert response.status_code == 207
    assert response.json() == {
        "success": [sid(1)],
        "errors": [
            {
                "entityId": "spot-2",
                "error": {
                    "type": BAD,
                    "title": "Invalid URI - no colon found",
                    "detail": "id: 'spot-2'",
                    "status": 400,
                },
            },
            {
                "entityId": sid(3),
                "error": {
                    "type": BAD,
                    "title": "Missing /value/ field for Property at creation time",
                    "detail": "status",
                    "status": 400,
                },
            },
            {
                "entityId": "No entity::id",
                "error": {"type": BAD, "title": "Invalid Entity", "detail": "must be a JSON Object", "status": 400},
            },
        ],
    }
    assert list(broker.entities()) == [sid(1)]


def test_a_batch_whose_entities_all_fail_answers_207_and_creates_no_tenant(api: Api, broker: BrokerDouble) -> None:
    response = api.upsert([{"id": "bad"}], headers=tenant("lyon"))

    assert response.status_code == 207
    assert response.json()["success"] == []
    assert broker.tenants() == set()


def test_a_batch_above_the_entity_limit_is_refused_whole(http: requests.Session) -> None:
    with BrokerDouble(max_batch_entities=2) as double:
        api = Api(double, http)

        body = problem(api.upsert([spot(1), spot(2), spot(3)]), 400)
        within = api.upsert([spot(1), spot(2)])

        assert body["title"] == "Too many entities in batch"
        assert "at most 2" in body["detail"]
        assert "split" in body["detail"]
        assert within.status_code == 201


def test_a_batch_body_must_be_an_array(api: Api) -> None:
    body = problem(api.upsert(spot(1)), 400)

    assert body == {"type": BAD, "title": "Not a JSON Array", "detail": "payload body must be a JSON Array"}


# --------------------------------------------------------------------------------- batch create


def test_batch_create_answers_201_and_409_items_for_existing_and_repeated_ids(api: Api, broker: BrokerDouble) -> None:
    assert api.create([spot(1)]).json() == [sid(1)]

    # ngsild_batch_create_duplicate_ids.test: the first occurrence wins.
    response = api.create([spot(1), spot(2), spot(2, status={"type": "Property", "value": "second"})])

    already = "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"
    assert response.status_code == 207
    assert response.json() == {
        "success": [sid(2)],
        "errors": [
            {
                "entityId": sid(1),
                "error": {
                    "type": already,
                    "title": "Entity already exists",
                    "detail": "Cannot create an existing entity",
                    "status": 409,
                },
            },
            {
                "entityId": sid(2),
                "error": {
                    "type": already,
                    "title": "Entity already exists",
                    "detail": "Created as part of the same request",
                    "status": 409,
                },
            },
        ],
    }
    assert broker.entities()[sid(2)]["status"]["value"] == "free"


# ----------------------------------------------------------------------------- entity validation

_POINT = {"type": "Point", "coordinates": [7.4653, 51.5136]}
DROP = object()

INVALID: list[tuple[dict[str, Any], str]] = [
    ({"id": DROP}, "Entity id is missing"),
    ({"id": "spot-1", "type": "T"}, "Invalid URI - no colon found"),
    ({"id": "urn:ngsi-ld:T:a b", "type": "T"}, "Invalid URI - invalid character"),
    ({"id": "1:2", "type": "T"}, "Invalid URI - no scheme"),
    ({"id": 5, "type": "T"}, "Invalid JSON type"),
    ({"id": "urn:x:1", "type": DROP}, "Entity - urn:x:1"),
    ({"id": "urn:x:1", "type": ["T"]}, "Invalid JSON type"),
    ({"id": "urn:x:1", "type": "Parking Spot"}, "Invalid URI/Shortname - whitespace present"),
    ({"p": 5}, "Invalid attribute"),
    ({"p": {"value": 5}}, "Invalid attribute"),
    ({"p": {"type": "Prop", "value": 5}}, "Invalid value for attribute /type/"),
    ({"p": {"type": "Property"}}, "Missing /value/ field for Property at creation time"),
    (
        {"p": {"type": "Property", "value": None}},
        "The use of NULL value is not recommended for JSON-LD (the whole attribute gets ignored)",
    ),
    ({"p": {"type": "Property", "value": 1, "object": "urn:x:2"}}, "Forbidden field for a Property: object"),
    ({"r": {"type": "Relationship"}}, "Missing /object/ field for Relationship at creation time"),
    ({"r": {"type": "Relationship", "value": "urn:x:2"}}, "Forbidden field for a Relationship: value"),
    ({"r": {"type": "Relationship", "object": "site-2"}}, "Invalid URI - no colon found"),
    ({"r": {"type": "Relationship", "object": 5}}, "Invalid Relationship object - not a string nor an array"),
    (
        {"r": {"type": "Relationship", "object": ["urn:x:2", 5]}},
        "Invalid Relationship object array item - not a String",
    ),
    ({"g": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [181, 0]}}}, "Invalid GeoJSON"),
    ({"g": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.4]}}}, "Invalid GeoJSON"),
    ({"g": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": ["7", "51"]}}}, "Invalid GeoJSON"),
    ({"g": {"type": "GeoProperty", "value": {"type": "LineString", "coordinates": [[7, 51]]}}}, "Invalid GeoJSON"),
    (
        {"g": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}}},
        "Invalid GeoJSON",
    ),
    ({"g": {"type": "GeoProperty", "value": {"type": "GeometryCollection", "geometries": []}}}, "Invalid geometry"),
    ({"g": {"type": "GeoProperty", "value": "51.5,7.4"}}, "Invalid GeoJSON"),
    ({"location": {"type": "Property", "value": _POINT}}, "Invalid type for special GeoProperty attribute"),
    ({"p": {"type": "Property", "value": 1, "observedAt": "yesterday"}}, "Invalid ISO8601 timestamp"),
    ({"p": {"type": "Property", "value": 1, "observedAt": "2026-11-22T10:00:00"}}, "Invalid ISO8601 timestamp"),
    ({"p": {"type": "Property", "value": 1, "observedAt": "2026-13-22T10:00:00Z"}}, "Invalid ISO8601 timestamp"),
    (
        {"p": {"type": "Property", "value": 1, "observedAt": 1700000000}},
        "Invalid JSON type - not a string (so, not a valid timestamp)",
    ),
    ({"p": {"type": "Property", "value": 1, "unitCode": 5}}, "Invalid JSON type - not a string"),
    ({"r": {"type": "Relationship", "object": "urn:x:2", "unitCode": "CEL"}}, "Invalid member /unitCode/"),
    ({"my attr": {"type": "Property", "value": 1}}, "Invalid attribute name"),
    ({"a=b": {"type": "Property", "value": 1}}, "Invalid attribute name"),
    ({"a;b": {"type": "Property", "value": 1}}, "Invalid attribute name"),
    ({"a(b)": {"type": "Property", "value": 1}}, "Invalid attribute name"),
    ({"p": {"type": "Property", "value": 1, "quality": 0.5}}, "Invalid attribute"),
    ({"p": [{"type": "Property", "value": 1}, {"type": "Property", "value": 2}]}, "Invalid attribute"),
    (
        {
            "p": [
                {"type": "Property", "value": 1, "datasetId": "urn:d:1"},
                {"type": "Property", "value": 2, "datasetId": "urn:d:1"},
            ]
        },
        "More than one attribute instance with one and the same datasetId",
    ),
    (
        {"l": {"type": "LanguageProperty", "languageMap": "Halle"}},
        "The languageMap of a LanguageProperty attribute must be a JSON Object",
    ),
]


@pytest.mark.parametrize(("fields", "title"), INVALID)
def test_post_entities_rejects_what_orion_ld_rejects_with_400(
    api: Api, broker: BrokerDouble, fields: dict[str, Any], title: str
) -> None:
    entity = {k: v for k, v in {"id": "urn:ngsi-ld:T:1", "type": "T", **fields}.items() if v is not DROP}

    body = problem(api.post("/entities", entity), 400)

    assert body["type"] == BAD
    assert body["title"] == title
    assert body["detail"]
    assert broker.entities() == {}


@pytest.mark.parametrize(("fields", "title"), [case for case in INVALID if not {"id", "type"} & case[0].keys()])
def test_the_same_rules_give_207_items_in_batches(api: Api, fields: dict[str, Any], title: str) -> None:
    response = api.upsert([{"id": "urn:ngsi-ld:T:1", "type": "T", **fields}, spot(1)])

    assert response.status_code == 207
    assert response.json()["success"] == [sid(1)]
    assert [e["error"]["title"] for e in response.json()["errors"]] == [title]


def test_geo_errors_name_the_problem(api: Api) -> None:
    swapped = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [51.5, 97.4]}}

    body = problem(api.post("/entities", spot(1, location=swapped)), 400)

    assert body["detail"] == "latitude outside of range -90 to 90"


def test_a_valid_entity_round_trips_unchanged(api: Api, broker: BrokerDouble) -> None:
    entity = spot(
        1,
        location={"type": "GeoProperty", "value": _POINT},
        area={
            "type": "GeoProperty",
            "value": {"type": "Polygon", "coordinates": [[[7, 51], [7.1, 51], [7.1, 51.1], [7, 51]]]},
        },
        route={"type": "GeoProperty", "value": {"type": "MultiLineString", "coordinates": [[[7, 51], [7.1, 51]]]}},
        occupancy={
            "type": "Property",
            "value": 0.25,
            "unitCode": "P1",
            "observedAt": "2026-11-22T10:00:00+01:00",
            "quality": {"type": "Property", "value": 0.9},
        },
        refParkingSite={"type": "Relationship", "object": "urn:ngsi-ld:ParkingSite:lyon:a"},
        refDevices={"type": "Relationship", "object": ["urn:ngsi-ld:Device:1", "urn:ngsi-ld:Device:2"]},
        name={"type": "LanguageProperty", "languageMap": {"fr": "Place A", "de": "Platz A"}},
        category={"type": "VocabProperty", "vocab": "onStreet"},
        extra={"type": "JsonProperty", "json": {"any": ["thing", None]}},
        levels={"type": "ListProperty", "valueList": [1, 2]},
        temperature=[
            {"type": "Property", "value": 20.5, "unitCode": "CEL"},
            {"type": "Property", "value": 21.0, "unitCode": "CEL", "datasetId": "urn:ngsi-ld:Dataset:b"},
        ],
    )

    assert api.post("/entities", entity).status_code == 201

    assert broker.entities()[sid(1)] == entity
    assert api.get(f"/entities/{sid(1)}").json() == entity


def test_system_members_are_not_stored(api: Api, broker: BrokerDouble) -> None:
    entity = spot(1, createdAt="2020-01-01T00:00:00Z", modifiedAt="2020-01-01T00:00:00Z")

    api.upsert([entity])

    assert broker.entities()[sid(1)] == spot(1)


# ---------------------------------------------------------------------------- POST /entities


def test_post_entities_answers_201_with_location_and_409_for_a_duplicate(api: Api) -> None:
    created = api.post("/entities", spot(1))
    duplicate = api.post("/entities", spot(1))

    assert created.status_code == 201
    assert created.content == b""
    assert created.headers["Location"] == f"/ngsi-ld/v1/entities/{sid(1)}"
    assert problem(duplicate, 409) == {
        "type": "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists",
        "title": "Entity already exists",
        "detail": sid(1),
    }


def test_relationships_read_back_with_their_type(api: Api) -> None:
    site = {"type": "Relationship", "object": "urn:ngsi-ld:ParkingSite:lyon:a"}
    api.post("/entities", spot(1, refParkingSite=site))

    assert api.get(f"/entities/{sid(1)}").json()["refParkingSite"] == {
        "type": "Relationship",
        "object": "urn:ngsi-ld:ParkingSite:lyon:a",
    }


# --------------------------------------------------------------------- content type and @context


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
def test_a_body_that_is_not_json_is_415(api: Api, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}

    body = problem(api.post("/entityOperations/upsert", [spot(1)], headers), 415)

    assert body == {
        "type": BAD,
        "title": "unsupported format of payload",
        "detail": "only application/json and application/ld+json are supported",
    }


def test_content_type_parameters_are_allowed(api: Api) -> None:
    response = api.upsert([spot(1)], headers={"Content-Type": "application/json; charset=utf-8", "Link": LINK})

    assert response.status_code == 201


def test_ld_json_with_a_link_header_is_400(api: Api, broker: BrokerDouble) -> None:
    item = {**spot(1), "@context": CTX}

    body = problem(api.upsert([item], headers={**LD, "Link": LINK}), 400)

    # ngsild_batch_upsert_crash_with_and_without_link_header.test
    assert body == {
        "type": BAD,
        "title": "invalid combination of HTTP headers Content-Type and Link",
        "detail": "Content-Type is 'application/ld+json' AND Link header is present - not allowed",
    }
    assert broker.entities() == {}


def test_ld_json_object_without_context_is_400(api: Api) -> None:
    body = problem(api.post("/entities", spot(1), LD), 400)

    assert body == {
        "type": BAD,
        "title": "@context missing in JSON payload",
        "detail": "For application/ld+json, the @context must be present in the JSON payload",
    }


def test_json_object_with_context_is_400(api: Api) -> None:
    body = problem(api.post("/entities", {**spot(1), "@context": CTX}), 400)

    assert body == {
        "type": BAD,
        "title": "Mismatch between /Content-Type/ and contents of the request payload body",
        "detail": "Content-Type is application/json, yet a '@context' item was present in the payload body",
    }


def test_context_mismatches_in_batches_are_207_items(api: Api, broker: BrokerDouble) -> None:
    # ngsild_batch_upsert-context_in_payload_data.test, steps 01 and 02
    with_context = api.upsert([{**spot(1), "@context": CTX}, spot(2)], headers={"Content-Type": "application/json"})
    without_context = api.upsert([spot(3), {**spot(4), "@context": CTX}], headers=LD)

    assert with_context.status_code == 207
    assert with_context.json() == {
        "success": [sid(2)],
        "errors": [
            {
                "entityId": sid(1),
                "error": {
                    "type": BAD,
                    "title": "Invalid payload",
                    "status": 400,
                    "detail": "Content-Type is 'application/json', and an @context is present in the payload data"
                    " array item",
                },
            }
        ],
    }
    assert without_context.json() == {
        "success": [sid(4)],
        "errors": [
            {
                "entityId": sid(3),
                "error": {
                    "type": BAD,
                    "title": "Invalid payload",
                    "status": 400,
                    "detail": "Content-Type is 'application/ld+json', but no @context in payload data array item",
                },
            }
        ],
    }
    assert sorted(broker.entities()) == [sid(2), sid(4)]


@pytest.mark.parametrize(
    "link",
    [
        LINK,
        f"<{CTX}>; rel=http://www.w3.org/ns/json-ld#context; type=application/ld+json",
        f"<{CTX}>",
        f'< {CTX} >;rel="http://www.w3.org/ns/json-ld#context"',
    ],
)
def test_the_link_header_is_read_leniently_and_its_context_recorded(api: Api, broker: BrokerDouble, link: str) -> None:
    api.upsert([spot(1)], headers={"Content-Type": "application/json", "Link": link})

    assert broker.context_of(sid(1)) == CTX


def test_the_context_of_each_entity_is_recorded(api: Api, broker: BrokerDouble) -> None:
    inline = [CTX, "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"]
    api.upsert([{**spot(1), "@context": inline}, {**spot(2), "@context": CTX}], headers=LD)
    api.upsert([spot(3)], headers={"Content-Type": "application/json"})

    assert broker.context_of(sid(1)) == inline
    assert broker.context_of(sid(2)) == CTX
    assert broker.context_of(sid(3)) is None
    assert "@context" not in broker.entities()[sid(1)]
    with pytest.raises(KeyError):
        broker.context_of(sid(9))


def test_a_link_header_without_url_is_400(api: Api) -> None:
    body = problem(api.upsert([spot(1)], headers={"Content-Type": "application/json", "Link": CTX}), 400)

    assert body["title"] == "Invalid Link HTTP Header"


# ------------------------------------------------------------------------------------ Accept


def test_accept_without_json_is_406(api: Api) -> None:
    api.upsert([spot(1)])

    body = problem(api.get(f"/entities/{sid(1)}", {"Accept": "text/plain"}), 406)

    assert body["type"] == BAD
    assert body["title"] == "Invalid Accept mime-type"


@pytest.mark.parametrize(
    "accept", ["application/json", "*/*", "text/html, application/*;q=0.5", "application/json;q=0.9"]
)
def test_accept_admitting_json_answers_json_with_a_link_header(api: Api, accept: str) -> None:
    api.upsert([spot(1)])

    response = api.get(f"/entities/{sid(1)}", {"Accept": accept})

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Link"].startswith(f"<{CORE}>")
    assert "@context" not in response.json()


def test_accept_ld_json_puts_the_context_in_the_body(api: Api) -> None:
    api.upsert([spot(1)])

    response = api.get(f"/entities/{sid(1)}", {"Accept": "application/ld+json", "Link": LINK})

    assert response.headers["Content-Type"] == "application/ld+json"
    assert response.json()["@context"] == CTX


def test_accept_ld_json_on_a_write_is_fine(api: Api) -> None:
    response = api.upsert([spot(1)], headers={**JSON, "Accept": "application/ld+json"})

    assert response.status_code == 201


# ------------------------------------------------------------------------ payload size and JSON


def test_a_body_above_the_limit_is_413_and_the_connection_stays_usable(http: requests.Session) -> None:
    with BrokerDouble(max_payload_bytes=2000) as double:
        api = Api(double, http)
        big = [spot(n) for n in range(30)]
        size = len(json.dumps(big).encode())

        body = problem(api.upsert(big), 413)
        after = api.upsert([spot(1)])

        assert body == {
            "type": BAD,
            "title": "Request Entity too large",
            "detail": f"payload size: {size}, max size supported: 2000",
        }
        assert after.status_code == 201
        assert list(double.entities()) == [sid(1)]
        refused = double.requests[0]
        assert (refused.status, refused.body) == (413, b"")


def test_a_chunked_body_above_the_limit_is_413(http: requests.Session) -> None:
    with BrokerDouble(max_payload_bytes=2000) as double:
        chunks = (json.dumps(spot(n)).encode() for n in range(40))
        url = f"{double.url}/ngsi-ld/v1/entityOperations/upsert"

        response = http.post(url, data=chunks, headers=JSON)

        assert response.status_code == 413
        assert double.entities() == {}


def test_a_chunked_body_within_the_limit_is_read(api: Api, http: requests.Session, broker: BrokerDouble) -> None:
    parts = (part.encode() for part in ("[", json.dumps(spot(1)), "]"))

    response = http.post(f"{api.base}/entityOperations/upsert", data=parts, headers=JSON)

    assert response.status_code == 201
    assert list(broker.entities()) == [sid(1)]


@pytest.mark.parametrize("raw", [b"[{", b"[NaN]", b"\xff\xfe"])
def test_unparsable_json_is_400_invalid_request(api: Api, raw: bytes) -> None:
    body = problem(api.post("/entityOperations/upsert", raw), 400)

    assert body == {
        "type": "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest",
        "title": "JSON Parse Error",
        "detail": "Invalid JSON payload",
    }


@pytest.mark.parametrize(
    ("raw", "title"), [(b"", "payload missing"), (b"[]", "Invalid Payload Body"), (b"42", "Invalid Payload")]
)
def test_empty_or_scalar_bodies_are_400(api: Api, raw: bytes, title: str) -> None:
    assert problem(api.post("/entityOperations/upsert", raw), 400)["title"] == title


# ---------------------------------------------------------------------------------- tenants


def test_tenants_are_isolated(api: Api, broker: BrokerDouble) -> None:
    api.upsert([spot(1)], headers=tenant("lyon"))
    api.upsert([spot(1, status={"type": "Property", "value": "occupied"})], headers=tenant("paris"))

    lyon = api.get("/entities?type=ParkingSpot", tenant("lyon"))
    default = api.get("/entities?type=ParkingSpot")

    assert broker.entities("lyon")[sid(1)]["status"]["value"] == "free"
    assert broker.entities("paris")[sid(1)]["status"]["value"] == "occupied"
    assert broker.entities() == {}
    assert [e["status"]["value"] for e in lyon.json()] == ["free"]
    assert lyon.headers["NGSILD-Tenant"] == "lyon"
    assert default.json() == []
    assert broker.tenants() == {"lyon", "paris"}


def test_fiware_service_is_the_same_tenant_and_names_are_lowercased(api: Api, broker: BrokerDouble) -> None:
    api.upsert([spot(1)], headers={**JSON, "Fiware-Service": "Lyon"})

    response = api.get(f"/entities/{sid(1)}", {"NGSILD-Tenant": "LYON"})
    both = api.get(f"/entities/{sid(1)}", {"NGSILD-Tenant": "lyon", "Fiware-Service": "Lyon"})

    assert response.status_code == 200
    assert both.status_code == 200
    assert broker.tenants() == {"lyon"}
    assert broker.entities("LYON") == broker.entities("lyon") == {sid(1): spot(1)}


def test_two_different_tenant_headers_are_400(api: Api) -> None:
    body = problem(api.upsert([spot(1)], headers=tenant("lyon", **{"Fiware-Service": "paris"})), 400)

    assert body == {
        "type": BAD,
        "title": "HTTP header duplication",
        "detail": "Tenant set twice (or perhaps both Fiware-Service and NGSILD-Tenant?)",
    }


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("x" * 51, "a tenant name can be max 50 characters long"),
        (
            "lyon.city",
            "invalid character in tenant name - only underscore, hyphen, and alphanumeric characters are allowed",
        ),
        (
            "lyon city",
            "invalid character in tenant name - only underscore, hyphen, and alphanumeric characters are allowed",
        ),
    ],
)
def test_bad_tenant_names_are_400(api: Api, broker: BrokerDouble, name: str, detail: str) -> None:
    body = problem(api.upsert([spot(1)], headers=tenant(name)), 400)

    assert body == {"type": BAD, "title": "Invalid Tenant", "detail": detail}
    assert broker.tenants() == set()


def test_a_fifty_character_tenant_with_hyphen_and_underscore_is_fine(api: Api, broker: BrokerDouble) -> None:
    name = "city_of-" + "x" * 42

    assert api.upsert([spot(1)], headers=tenant(name)).status_code == 201
    assert broker.tenants() == {name}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/entities?type=ParkingSpot"),
        ("GET", f"/entities/{sid(1)}"),
        ("DELETE", f"/entities/{sid(1)}"),
        ("PATCH", f"/entities/{sid(1)}/attrs"),
        ("GET", "/types"),
        ("GET", "/subscriptions"),
    ],
)
def test_other_requests_naming_an_unknown_tenant_are_404(api: Api, method: str, path: str) -> None:
    api.upsert([spot(1)], headers=tenant("lyon"))

    response = api.session.request(
        method,
        api.base + path,
        headers=tenant("paris"),
        data=json.dumps({"status": spot(1)["status"]}) if method == "PATCH" else None,
    )

    assert problem(response, 404) == {
        "type": "https://uri.etsi.org/ngsi-ld/errors/NonExistingTenant",
        "title": "No such tenant",
        "detail": "paris",
    }


def test_creates_and_subscriptions_create_tenants(api: Api, broker: BrokerDouble) -> None:
    api.create([spot(1)], headers=tenant("a"))
    api.post("/entities", spot(1), tenant("b"))
    api.post("/subscriptions", subscription(), tenant("c"))

    assert broker.tenants() == {"a", "b", "c"}
    assert api.get("/types", tenant("c")).json()["typeList"] == []


# ------------------------------------------------------------------------------ GET /entities


@pytest.fixture
def five_spots(api: Api) -> None:
    occupancy = [0.0, 0.25, 0.5, 0.75, 1.0]
    api.upsert(
        [
            spot(
                n,
                status={
                    "type": "Property",
                    "value": "free" if n % 2 else "occupied",
                    "observedAt": f"2026-11-22T1{n}:00:00Z",
                },
                occupancy={"type": "Property", "value": occupancy[n]},
                refParkingSite={"type": "Relationship", "object": f"urn:ngsi-ld:ParkingSite:{'a' if n < 2 else 'b'}"},
            )
            for n in range(5)
        ]
        + [{"id": "urn:ngsi-ld:ParkingSite:a", "type": "ParkingSite", "name": {"type": "Property", "value": "A"}}]
    )


def ids(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [entity["id"] for entity in response.json()]


def test_a_query_without_id_type_attrs_or_q_is_too_broad(api: Api) -> None:
    assert problem(api.get("/entities"), 400) == {
        "type": BAD,
        "title": "Too broad query",
        "detail": "Need at least one of: entity-id, entity-type, geo-location, attribute-list, Q-filter, local=true",
    }


@pytest.mark.usefixtures("five_spots")
def test_type_and_id_filters_take_comma_lists(api: Api) -> None:
    assert ids(api.get("/entities?type=ParkingSite")) == ["urn:ngsi-ld:ParkingSite:a"]
    assert len(ids(api.get("/entities?type=ParkingSite,ParkingSpot"))) == 6
    assert ids(api.get(f"/entities?id={sid(3)},{sid(1)}")) == [sid(1), sid(3)]
    assert ids(api.get(f"/entities?id={sid(3)}&type=ParkingSite")) == []


@pytest.mark.usefixtures("five_spots")
@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("occupancy==0.5", [2]),
        ("occupancy>0.5", [3, 4]),
        ("occupancy>=0.5", [2, 3, 4]),
        ("occupancy<0.25", [0]),
        ("occupancy<=0.25", [0, 1]),
        ("occupancy!=0.5", [0, 1, 3, 4]),
        ("occupancy==1", [4]),
        ('status=="free"', [1, 3]),
        ('status!="free"', [0, 2, 4]),
        ('status=="free";occupancy>0.5', [3]),
        ("occupancy==0.25..0.75", [1, 2, 3]),
        ("occupancy==0,1", [0, 4]),
        ('refParkingSite=="urn:ngsi-ld:ParkingSite:a"', [0, 1]),
        ("status.observedAt>=2026-11-22T13:00:00Z", [3, 4]),
        ("occupancy", [0, 1, 2, 3, 4]),
        ('status>"free"', [0, 2, 4]),
        ('occupancy=="0.5"', []),
    ],
)
def test_q_filters(api: Api, q: str, expected: list[int]) -> None:
    assert ids(api.get(f"/entities?type=ParkingSpot&q={q}")) == [sid(n) for n in expected]


def test_unsupported_q_syntax_is_refused_not_guessed(api: Api) -> None:
    body = problem(api.get("/entities?type=T&q=a==1|b==2"), 400)

    assert body["title"] == "Invalid Q-Filter"


@pytest.mark.usefixtures("five_spots")
def test_attrs_projects_and_keeps_only_entities_having_one_of_them(api: Api) -> None:
    response = api.get("/entities?attrs=name,nothing")

    assert response.json() == [
        {"id": "urn:ngsi-ld:ParkingSite:a", "type": "ParkingSite", "name": {"type": "Property", "value": "A"}}
    ]
    assert api.get(f"/entities/{sid(1)}?attrs=occupancy").json() == {
        "id": sid(1),
        "type": "ParkingSpot",
        "occupancy": {"type": "Property", "value": 0.25},
    }


def test_paging_defaults_to_20_and_counts(api: Api) -> None:
    api.upsert([spot(n) for n in range(25)])

    first = api.get("/entities?type=ParkingSpot")
    rest = api.get("/entities?type=ParkingSpot&offset=20")
    window = api.get("/entities?type=ParkingSpot&limit=3&offset=4&count=true")
    only_count = api.get("/entities?type=ParkingSpot&limit=0&count=true")

    assert ids(first) == [sid(n) for n in range(20)]
    assert "NGSILD-Results-Count" not in first.headers
    assert ids(rest) == [sid(n) for n in range(20, 25)]
    assert ids(window) == [sid(4), sid(5), sid(6)]
    assert window.headers["NGSILD-Results-Count"] == "25"
    assert only_count.json() == []
    assert only_count.headers["NGSILD-Results-Count"] == "25"


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("limit=1001", "Bad value for URI parameter /limit/ (valid range: 0-1000)"),
        ("limit=0", "Invalid value for URI parameter /limit/"),
        ("limit=ten", "Invalid value for URI parameter /limit/"),
        ("offset=-1", "Bad value for URI parameter /offset/"),
        ("count=yes", "Bad value for URI parameter /count/"),
        ("colour=red", "Unknown URI parameter"),
        ("attrs=", "Empty right-hand-side for a URI parameter"),
        ("options=fast", "Invalid value for URI param /options/"),
    ],
)
def test_bad_uri_parameters_are_400(api: Api, query: str, title: str) -> None:
    assert problem(api.get(f"/entities?type=ParkingSpot&{query}"), 400)["title"] == title


def test_sys_attrs_and_key_values(api: Api) -> None:
    api.upsert([spot(1, refParkingSite={"type": "Relationship", "object": "urn:ngsi-ld:ParkingSite:a"})])

    with_sys = api.get(f"/entities/{sid(1)}?options=sysAttrs").json()
    simplified = api.get(f"/entities/{sid(1)}?options=keyValues").json()

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", with_sys["createdAt"])
    assert with_sys["status"]["modifiedAt"] == with_sys["modifiedAt"]
    assert simplified == {
        "id": sid(1),
        "type": "ParkingSpot",
        "status": "free",
        "refParkingSite": "urn:ngsi-ld:ParkingSite:a",
    }


# -------------------------------------------------------------------- GET/DELETE /entities/{id}


def test_get_and_delete_of_one_entity(api: Api) -> None:
    api.upsert([spot(1)])

    found = api.get(f"/entities/{sid(1)}")
    encoded = api.get("/entities/urn%3Angsi-ld%3AParkingSpot%3Alyon%3A1")
    deleted = api.delete(f"/entities/{sid(1)}")
    gone = api.get(f"/entities/{sid(1)}")
    again = api.delete(f"/entities/{sid(1)}")

    assert found.json() == spot(1)
    assert encoded.json() == spot(1)
    assert deleted.status_code == 204
    not_found = "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
    assert problem(gone, 404) == {"type": not_found, "title": "Entity Not Found", "detail": sid(1)}
    assert problem(again, 404) == {"type": not_found, "title": "Entity not found", "detail": sid(1)}


# ------------------------------------------------------------------- PATCH /entities/{id}/attrs


def test_patch_of_existing_attributes_answers_204(api: Api, broker: BrokerDouble) -> None:
    api.upsert([spot(1, name={"type": "Property", "value": "A1"})])
    occupied = {"type": "Property", "value": "occupied", "observedAt": "2026-11-22T11:00:00Z"}

    response = api.patch(f"/entities/{sid(1)}/attrs", {"status": occupied})

    assert response.status_code == 204
    assert broker.entities()[sid(1)] == spot(1, name={"type": "Property", "value": "A1"}, status=occupied)


def test_patch_reports_attributes_it_could_not_update_in_a_207(api: Api, broker: BrokerDouble) -> None:
    api.upsert([spot(1, name={"type": "Property", "value": "A1"})])
    occupied = {"type": "Property", "value": "occupied"}

    response = api.patch(
        f"/entities/{sid(1)}/attrs",
        {
            "status": occupied,
            "nope": {"type": "Property", "value": 1},
            "name": {"type": "Property"},
        },
    )
    retyped = api.patch(f"/entities/{sid(1)}/attrs", {"name": {"type": "Relationship", "object": "urn:x:1"}})

    assert response.status_code == 207
    assert response.json() == {
        "updated": ["status"],
        "notUpdated": [
            {"attributeName": "nope", "reason": "attribute doesn't exist"},
            {"attributeName": "name", "reason": "Missing /value/ field for Property at creation time: name"},
        ],
    }
    assert retyped.json()["notUpdated"] == [
        {"attributeName": "name", "reason": "Attempt to transform a Property into a Relationship: name"}
    ]
    assert broker.entities()[sid(1)]["status"] == occupied
    assert broker.entities()[sid(1)]["name"] == {"type": "Property", "value": "A1"}


def test_patch_of_an_unknown_entity_is_404(api: Api) -> None:
    body = problem(api.patch(f"/entities/{sid(1)}/attrs", {"status": spot(1)["status"]}), 404)

    assert body == {
        "type": "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound",
        "title": "Entity does not exist",
        "detail": sid(1),
    }


# ------------------------------------------------------------------------------------- types


@pytest.mark.usefixtures("five_spots")
def test_types_lists_the_entity_types(api: Api) -> None:
    body = api.get("/types").json()

    assert re.fullmatch(r"urn:ngsi-ld:EntityTypeList:[0-9a-f-]+", body.pop("id"))
    assert body == {"type": "EntityTypeList", "typeList": ["ParkingSite", "ParkingSpot"]}


# ----------------------------------------------------------------------------- subscriptions


def subscription(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "ParkingSpot"}],
        "notification": {"endpoint": {"uri": "http://quantumleap:8668/v2/notify", "accept": "application/json"}},
    }
    body.update(fields)
    return body


def test_subscriptions_are_created_listed_read_and_deleted(api: Api) -> None:
    named = api.post("/subscriptions", subscription(id="urn:ngsi-ld:Subscription:ql-spots"))
    generated = api.post("/subscriptions", subscription(watchedAttributes=["status"]))

    assert named.status_code == 201
    assert named.content == b""
    assert named.headers["Location"] == "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:ql-spots"
    generated_id = generated.headers["Location"].rsplit("/", 1)[1]
    assert re.fullmatch(r"urn:ngsi-ld:Subscription:[0-9a-f-]{36}", generated_id)
    listed = api.get("/subscriptions").json()
    assert [s["id"] for s in listed] == ["urn:ngsi-ld:Subscription:ql-spots", generated_id]
    assert api.get("/subscriptions/urn:ngsi-ld:Subscription:ql-spots").json() == subscription(
        id="urn:ngsi-ld:Subscription:ql-spots"
    )
    assert api.delete("/subscriptions/urn:ngsi-ld:Subscription:ql-spots").status_code == 204
    assert (
        problem(api.get("/subscriptions/urn:ngsi-ld:Subscription:ql-spots"), 404)["title"] == "Subscription not found"
    )
    assert problem(api.post("/subscriptions", subscription(id=generated_id)), 409)["detail"] == generated_id


@pytest.mark.parametrize(
    ("body", "title"),
    [
        ({k: v for k, v in subscription().items() if k != "type"}, "Mandatory field missing"),
        (subscription(type="Subscriptions"), "Invalid value for Subscription::type"),
        (
            {k: v for k, v in subscription().items() if k != "entities"},
            "At least one of 'entities' and 'watchedAttributes' must be present",
        ),
        (subscription(entities=[{"id": "urn:x:1"}]), "Invalid Subscription::entities"),
        ({k: v for k, v in subscription().items() if k != "notification"}, "Mandatory field missing"),
        (subscription(notification={"endpoint": {}}), "Mandatory field missing"),
        (subscription(notification={"endpoint": {"uri": "quantumleap/v2/notify"}}), "Invalid URI - no colon found"),
        (subscription(id="sub-1"), "Invalid URI - no colon found"),
    ],
)
def test_invalid_subscriptions_are_400(api: Api, broker: BrokerDouble, body: dict[str, Any], title: str) -> None:
    assert problem(api.post("/subscriptions", body, tenant("lyon")), 400)["title"] == title
    assert broker.tenants() == set()


# ---------------------------------------------------------------------- unknown paths, methods


def test_unknown_paths_methods_and_unimplemented_endpoints(api: Api) -> None:
    unknown = api.get("/nothing")
    wrong_method = api.delete("/entities")
    unimplemented = api.session.put(f"{api.base}/entities/{sid(1)}", data=b"{}", headers=JSON)

    assert problem(unknown, 404) == {
        "type": "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound",
        "title": "Service Not Found",
        "detail": "/ngsi-ld/v1/nothing",
    }
    assert problem(wrong_method, 405)["title"] == "Method not allowed"
    assert wrong_method.headers["Allow"] == "GET, POST"
    assert problem(unimplemented, 501)["type"] == "https://uri.etsi.org/ngsi-ld/errors/OperationNotSupported"


# ------------------------------------------------------------------------------ fault injection


def test_go_down_refuses_connections_and_come_up_keeps_port_and_state(api: Api, broker: BrokerDouble) -> None:
    api.upsert([spot(1)], headers=tenant("lyon"))
    port = broker.port

    broker.go_down()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(requests.ConnectionError):
        api.upsert([spot(2)])
    broker.come_up()

    assert broker.port == port
    assert api.get(f"/entities/{sid(1)}", tenant("lyon")).json() == spot(1)


def test_go_down_cuts_open_keep_alive_connections(api: Api, broker: BrokerDouble) -> None:
    assert api.get("/types").status_code == 200

    broker.go_down()

    with pytest.raises(requests.ConnectionError):
        api.get("/types")


def test_fail_next_fails_the_next_writes_and_stores_nothing(api: Api, broker: BrokerDouble) -> None:
    broker.fail_next(2, 503)

    first = api.upsert([spot(1)])
    read = api.get("/types")
    second = api.post("/entities", spot(2))
    third = api.upsert([spot(3)])

    assert problem(first, 503) == {
        "type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",
        "title": "Injected failure",
        "detail": "fail_next() made this request answer 503",
    }
    assert read.status_code == 200
    assert second.status_code == 503
    assert third.status_code == 201
    assert list(broker.entities()) == [sid(3)]
    assert [r.status for r in broker.requests] == [503, 200, 503, 201]


def test_fail_next_defaults_to_500(api: Api, broker: BrokerDouble) -> None:
    broker.fail_next(1)

    assert api.upsert([spot(1)]).status_code == 500
    with pytest.raises(ValueError, match="HTTP error status"):
        broker.fail_next(1, 200)


def test_delay_makes_the_broker_slow(api: Api, broker: BrokerDouble) -> None:
    broker.delay_seconds = 0.3

    started = time.monotonic()
    answered = api.get("/types")
    elapsed = time.monotonic() - started

    assert answered.status_code == 200
    assert elapsed >= 0.3
    with pytest.raises(requests.ReadTimeout):
        api.session.get(f"{api.base}/types", timeout=0.05)


def test_reject_entities_fails_single_entities_of_a_batch(api: Api, broker: BrokerDouble) -> None:
    def reject_second(entity: dict[str, Any]) -> ProblemDetail | None:
        if entity["id"].endswith(":2"):
            return ProblemDetail(ProblemType.INTERNAL_ERROR, "Database Error", "injected", 503)
        return None

    broker.reject_entities(reject_second)
    rejected = api.upsert([spot(1), spot(2)])
    broker.reject_entities(None)
    accepted = api.upsert([spot(2)])

    assert rejected.status_code == 207
    assert rejected.json() == {
        "success": [sid(1)],
        "errors": [
            {
                "entityId": sid(2),
                "error": {
                    "type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",
                    "title": "Database Error",
                    "detail": "injected",
                    "status": 503,
                },
            }
        ],
    }
    assert accepted.status_code == 201


def test_a_failing_predicate_answers_500_instead_of_hanging_up(api: Api, broker: BrokerDouble) -> None:
    def broken(entity: dict[str, Any]) -> ProblemDetail | None:
        raise RuntimeError("bug in the test's predicate")

    broker.reject_entities(broken)

    assert problem(api.upsert([spot(1)]), 500)["type"] == "https://uri.etsi.org/ngsi-ld/errors/InternalError"
    assert broker.entities() == {}


# -------------------------------------------------------------------------------- authorization


def test_a_required_token_is_checked_and_can_be_rotated(http: requests.Session) -> None:
    with BrokerDouble(required_token="s3cret") as double:
        api = Api(double, http)

        missing = api.upsert([spot(1)])
        wrong = api.upsert([spot(1)], headers={**JSON, "Authorization": "Bearer nope"})
        right = api.upsert([spot(1)], headers={**JSON, "Authorization": "Bearer s3cret"})
        double.valid_tokens = {"rotated"}
        old = api.get("/types", {"Authorization": "Bearer s3cret"})
        new = api.get("/types", {"Authorization": "Bearer rotated"})

        assert problem(missing, 401)["title"] == "Unauthorized"
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        assert wrong.status_code == 401
        assert right.status_code == 201
        assert old.status_code == 401
        assert new.status_code == 200
        assert list(double.entities()) == [sid(1)]


# ------------------------------------------------------------------------------------ recording


def test_every_request_is_recorded(api: Api, broker: BrokerDouble) -> None:
    api.upsert([spot(1)], headers=tenant("Lyon"))
    api.get("/entities?type=ParkingSpot&limit=5", tenant("lyon"))

    upsert, query = broker.requests

    assert (upsert.method, upsert.path, upsert.query, upsert.status) == (
        "POST",
        "/ngsi-ld/v1/entityOperations/upsert",
        {"options": "update"},
        201,
    )
    assert upsert.headers["ngsild-tenant"] == "Lyon"
    assert upsert.headers["LINK"] == LINK
    assert upsert.json() == [spot(1)]
    assert (query.method, query.query, query.body, query.status) == (
        "GET",
        {"type": "ParkingSpot", "limit": "5"},
        b"",
        200,
    )


# -------------------------------------------------------------------------------- lifecycle


def test_lifecycle_leaves_no_thread_or_socket_behind(http: requests.Session) -> None:
    before = set(threading.enumerate())
    double = BrokerDouble()
    double.start()
    try:
        assert double.port != 0
        assert double.url == f"http://127.0.0.1:{double.port}"
        with pytest.raises(RuntimeError):
            double.start()
        assert http.get(f"{double.url}/ngsi-ld/v1/types").status_code == 200
        started = time.monotonic()
    finally:
        double.stop()

    assert time.monotonic() - started < 2, "stop must not wait for idle keep-alive connections"
    assert set(threading.enumerate()) - before == set()
    double.stop()
    with pytest.raises(RuntimeError):
        double.go_down()


def test_stop_interrupts_a_slow_answer(http: requests.Session) -> None:
    double = BrokerDouble().start()
    double.delay_seconds = 30
    caught: list[BaseException] = []

    def call() -> None:
        try:
            http.get(f"{double.url}/ngsi-ld/v1/types", timeout=10)
        except requests.RequestException as exc:
            caught.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.2)
    started = time.monotonic()
    double.stop()
    caller.join()

    assert time.monotonic() - started < 2
    assert caught


def test_concurrent_writers(broker: BrokerDouble) -> None:
    def write(n: int) -> int:
        with requests.Session() as session:
            return Api(broker, session).upsert([spot(n)]).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(write, range(40)))

    assert statuses == [201] * 40
    assert len(broker.entities()) == 40


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_command_line_serves_until_a_signal(stop_signal: signal.Signals) -> None:
    command = [sys.executable, "-m", "adapters.testing", "--port", "0", "--max-payload-bytes", "100"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        try:
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
            with requests.Session() as session:
                assert session.get(f"{url}/ngsi-ld/v1/types").status_code == 200
                big = session.post(
                    f"{url}/ngsi-ld/v1/entityOperations/upsert", data=json.dumps([spot(1)]), headers=JSON
                )
                assert big.status_code == 413
        finally:
            process.send_signal(stop_signal)
        _, errors = process.communicate(timeout=10)

    assert process.returncode == 0, errors
