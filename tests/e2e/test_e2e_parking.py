"""The first vertical slice end to end: recorded Dortmund parking feed -> dos-adapters -> Orion-LD double.

Each test runs the installed ``dos-adapters`` script (or, for conditional requests, the in-process
Runtime) against a fake Opendatasoft portal and the strict broker double over real HTTP, and counts
readings in (records fetched) and out (entities stored, requests sent, dead letters written).
"""

from __future__ import annotations

import json

import requests
from e2e_support import (
    CONTEXT_URL,
    GARAGE_WITHOUT_COORDINATES,
    RECORDS_IN,
    RECORDS_PATH,
    RECORDS_PAYLOAD,
    UPSERT_PATH,
    VALID_GARAGES,
    ArrivalWatchingDouble,
    Cli,
    FakeOpendatasoft,
    Site,
    Summary,
    cli_env,
    expected_ids,
    garage_id,
    read_ndjson,
    summaries,
    upserts,
)

from adapters.core.adapter import discover_adapters
from adapters.core.config import load_config
from adapters.core.metrics import REGISTRY
from adapters.core.normalize import CHUNK_RECORDS, REJECTION_KINDS
from adapters.core.runner import Runtime
from adapters.testing.fake_source import FakeSource, Fault, etag_of


def _query(double: ArrivalWatchingDouble, tenant: str, **params: str) -> list[dict[str, object]]:
    """GET /ngsi-ld/v1/entities as an analyst would, in ``tenant``."""
    with requests.get(
        f"{double.url}/ngsi-ld/v1/entities",
        params={"limit": "1000", **params},
        headers={"NGSILD-Tenant": tenant, "Accept": "application/json", "Link": f"<{CONTEXT_URL}>"},
        timeout=10,
    ) as response:
        assert response.status_code == 200, response.text
        found: list[dict[str, object]] = response.json()
        return found


def test_run_once_delivers_the_23_valid_garages_in_one_upsert_to_tenant_dortmund(
    source: FakeOpendatasoft, broker: ArrivalWatchingDouble, site: Site, cli: Cli
) -> None:
    site.write_config(broker_url=broker.url, source_url=source.records_url)
    # normalize reads only the file, so it runs alongside (each start of the script costs seconds).
    run = cli.start("run", "--once", "--config", str(site.config))
    normalize = cli.start(
        "normalize", "dortmund-parkhaeuser", "--input", str(RECORDS_PAYLOAD), "--config", str(site.config)
    )
    code, stdout, stderr = cli.finish(run)
    normalized = cli.finish(normalize)

    assert code == 0, stderr
    # In: one GET of the records endpoint, 24 records.
    assert [(r.path, r.status) for r in source.requests] == [(RECORDS_PATH, 200)]
    assert source.requests[0].headers["User-Agent"].startswith("dos-adapters/")
    assert summaries(stdout) == [
        Summary("parking", "dortmund-parkhaeuser", "dortmund", RECORDS_IN, VALID_GARAGES, rejected=1, state="ok")
    ]
    assert "outbox:" not in stdout  # nothing waits

    # Out: exactly the 23 valid garages, in tenant dortmund only.
    stored = broker.entities("dortmund")
    assert set(stored) == expected_ids("dortmund")
    assert len(stored) == VALID_GARAGES
    assert broker.tenants() == {"dortmund"}
    assert broker.entities(None) == {}

    # One batch upsert, as Orion-LD wants it.
    assert len(broker.requests) == 1
    (upsert,) = upserts(broker)
    assert upsert.method == "POST"
    assert upsert.path == UPSERT_PATH
    assert upsert.query == {"options": "update"}
    assert upsert.headers["Content-Type"] == "application/json"
    assert upsert.headers["Link"].startswith(f"<{CONTEXT_URL}>")
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in upsert.headers["Link"]
    assert upsert.headers["NGSILD-Tenant"] == "dortmund"
    assert "Authorization" not in upsert.headers
    assert upsert.status == 201
    assert len(upsert.json()) == VALID_GARAGES
    assert all(broker.context_of(i, "dortmund") == CONTEXT_URL for i in stored)

    # What the broker stores is what 'normalize' prints for the same payload, attribute by attribute.
    assert normalized.returncode == 3, normalized.stderr  # 3: some records rejected
    lines = [json.loads(line) for line in normalized.stdout.splitlines()]
    assert len(lines) == VALID_GARAGES
    for entity in lines:
        assert stored[entity["id"]].keys() == entity.keys(), entity["id"]
        for name, attribute in entity.items():
            assert stored[entity["id"]][name] == attribute, (entity["id"], name)
    assert GARAGE_WITHOUT_COORDINATES in normalized.stderr

    # The garage without coordinates is a dead letter with its reason; nothing else is.
    (dead,) = read_ndjson(site.dead_letter)
    assert dead["adapter"] == "parking"
    assert dead["source"] == "dortmund-parkhaeuser"
    assert dead["tenant"] == "dortmund"
    assert dead["record"]["id"] == GARAGE_WITHOUT_COORDINATES
    assert "no coordinates" in dead["reason"]
    assert f'[adapters.parking.locations] "{GARAGE_WITHOUT_COORDINATES}"' in dead["reason"]
    assert garage_id("dortmund", GARAGE_WITHOUT_COORDINATES) not in stored
    assert str(site.dead_letter) in stdout


def test_tenants_are_isolated(source: FakeOpendatasoft, broker: ArrivalWatchingDouble, site: Site, cli: Cli) -> None:
    schwerte = Site(site.root.parent / "schwerte")
    site.write_config(broker_url=broker.url, source_url=source.records_url)
    schwerte.write_config(broker_url=broker.url, source_url=source.records_url)
    # The same deployment for Schwerte, switched by the environment alone; both run at once.
    dortmund_run = cli.start("run", "--once", "--config", str(site.config))
    schwerte_run = cli.start(
        "run", "--once", "--config", str(schwerte.config), cwd=schwerte.root,
        env=cli_env(DOS_ADAPTERS_PARKING_TENANT="schwerte"),
    )  # fmt: skip
    for run, tenant in ((dortmund_run, "dortmund"), (schwerte_run, "schwerte")):
        code, stdout, stderr = cli.finish(run)
        assert code == 0, stderr
        (summary,) = summaries(stdout)
        assert (summary.tenant, summary.records, summary.entities, summary.rejected) == (tenant, 24, 23, 1)

    assert len(source.requests) == 2
    assert broker.tenants() == {"dortmund", "schwerte"}
    assert set(broker.entities("schwerte")) == expected_ids("schwerte")
    assert set(broker.entities("dortmund")) == expected_ids("dortmund")
    assert sorted(r.headers["NGSILD-Tenant"] for r in upserts(broker)) == ["dortmund", "schwerte"]
    for request in upserts(broker):
        tenant = request.headers["NGSILD-Tenant"]
        assert {e["id"] for e in request.json()} == expected_ids(tenant)

    # An analyst of one city does not see the other's garages, by type or by id.
    seen = {
        tenant: {e["id"] for e in _query(broker, tenant, type="OffStreetParking")}
        for tenant in ("dortmund", "schwerte")
    }
    assert seen == {"dortmund": expected_ids("dortmund"), "schwerte": expected_ids("schwerte")}
    assert _query(broker, "dortmund", id=garage_id("schwerte", "107394")) == []
    assert _query(broker, "schwerte", id=garage_id("dortmund", "107394")) == []
    assert read_ndjson(schwerte.dead_letter)[0]["tenant"] == "schwerte"


def test_running_twice_is_idempotent(
    source: FakeOpendatasoft, broker: ArrivalWatchingDouble, site: Site, cli: Cli
) -> None:
    site.write_config(broker_url=broker.url, source_url=source.records_url)
    first = cli("run", "--once", "--config", str(site.config))
    assert first.returncode == 0, first.stderr
    after_first = broker.entities("dortmund")
    second = cli("run", "--once", "--config", str(site.config))
    assert second.returncode == 0, second.stderr

    assert [s.entities for s in summaries(first.stdout) + summaries(second.stdout)] == [23, 23]
    assert len(source.requests) == 2  # a new process has no ETag to send
    assert broker.entities("dortmund") == after_first
    assert len(after_first) == VALID_GARAGES
    assert [(r.query, r.status) for r in upserts(broker)] == [
        ({"options": "update"}, 201),
        ({"options": "update"}, 204),
    ]
    assert len(read_ndjson(site.dead_letter)) == 2  # the garage without coordinates, once per run


def test_unchanged_source_costs_one_304_and_no_upsert(
    source: FakeOpendatasoft, broker: ArrivalWatchingDouble, site: Site
) -> None:
    site.write_config(broker_url=broker.url, source_url=source.records_url)
    adapters = discover_adapters()
    config = load_config(site.config, {n: a.section_schema() for n, a in adapters.items()}, environ={})
    runtime = Runtime(config, adapters)
    rejected_before = {reason: _rejected(reason) for reason in REJECTION_KINDS}
    try:
        (first,), first_report = runtime.run_once()
        (second,), second_report = runtime.run_once()
    finally:
        runtime.close()

    assert (first.records, first.entities, first.rejected, first.not_modified) == (24, 23, 1, False)
    assert (first_report.delivered, first_report.pending, first_report.requests) == (23, 0, 1)
    assert (second.records, second.entities, second.rejected, second.not_modified) == (0, 0, 0, True)
    assert second.error is None
    assert (second_report.delivered, second_report.pending, second_report.requests) == (0, 0, 0)

    initial, conditional = source.requests
    assert "If-None-Match" not in initial.headers
    assert initial.status == 200
    assert conditional.headers["If-None-Match"].startswith('"')
    assert conditional.status == 304
    assert len(upserts(broker)) == 1
    assert len(broker.entities("dortmund")) == VALID_GARAGES
    assert len(read_ndjson(site.dead_letter)) == 1  # not rejected again on the 304
    rejected = {reason: _rejected(reason) - before for reason, before in rejected_before.items()}
    assert rejected == {reason: 1 if reason == "record_invalid" else 0 for reason in REJECTION_KINDS}  # no coordinates


def _rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("dos_rejected_total", {"adapter": "parking", "reason": reason}) or 0.0


def test_a_payload_cut_midway_fails_the_poll_after_writing_the_chunks_before_it(
    broker: ArrivalWatchingDouble, site: Site
) -> None:
    """2,400 garages (the recorded 24, a hundred times with distinct ids), the first answer cut in half.

    The chunks read before the cut are written (valid states), the poll fails and its ETag is not
    remembered: the next poll reads the whole payload again, and only the one after that gets a 304.
    """
    garages: list[dict[str, object]] = []
    for copy in range(100):
        for record in json.loads(RECORDS_PAYLOAD.read_bytes())["results"]:
            garages.append({**record, "id": f"{record['id']}-{copy}"})
    document = json.dumps({"total_count": len(garages), "results": garages}, ensure_ascii=False).encode()
    adapters = discover_adapters()
    with FakeSource({RECORDS_PATH: document}) as portal:
        portal.fail_next(RECORDS_PATH, Fault(truncate=True))
        site.write_config(broker_url=broker.url, source_url=portal.url(RECORDS_PATH))
        config = load_config(site.config, {n: a.section_schema() for n, a in adapters.items()}, environ={})
        runtime = Runtime(config, adapters)
        try:
            (cut,), cut_report = runtime.run_once()
            stored_after_cut = len(broker.entities("dortmund"))
            (complete,), _ = runtime.run_once()
            (unchanged,), _ = runtime.run_once()
        finally:
            runtime.close()
        requests_seen = portal.requests

    assert cut.error is not None and cut.error.startswith("not JSON"), cut.error
    assert cut.records == 2 * CHUNK_RECORDS  # the chunk the cut fell into is not written
    assert cut.entities == stored_after_cut == cut_report.delivered == 2 * CHUNK_RECORDS * VALID_GARAGES // RECORDS_IN
    assert (complete.error, complete.records, complete.entities) == (None, 2400, 2300)
    assert unchanged.not_modified
    assert len(broker.entities("dortmund")) == 2300
    assert [r.status for r in requests_seen] == [200, 200, 304]
    assert "If-None-Match" not in requests_seen[1].headers
    assert requests_seen[2].headers["If-None-Match"] == etag_of(document)


def test_offline_run_without_broker_writes_valid_ndjson(site: Site, cli: Cli) -> None:
    # No config file and no DOS_* variable: the embedded defaults, i.e. the file sink in ./out.
    code, stdout, stderr = cli("run", "--once", "--offline")
    assert code == 0, stderr
    (summary,) = summaries(stdout)
    assert (summary.tenant, summary.records, summary.entities, summary.rejected) == ("dortmund", 24, 23, 1)
    assert f"output: file {site.output.relative_to(site.root)}" in stdout

    entities = read_ndjson(site.output)
    assert len(entities) == VALID_GARAGES
    assert {e["id"] for e in entities} == expected_ids("dortmund")
    assert [d["record"]["id"] for d in read_ndjson(site.dead_letter)] == [GARAGE_WITHOUT_COORDINATES]
    assert not (site.root / "var").exists()  # no outbox without a broker

    checked = cli("validate", str(site.output))
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout == ""
    assert f"{VALID_GARAGES} of {VALID_GARAGES} entities conform" in checked.stderr
