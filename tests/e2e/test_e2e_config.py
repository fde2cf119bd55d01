"""Configuration end to end: a broken config stops before any I/O; broker auth works and keeps its secret."""

from __future__ import annotations

from collections.abc import Callable

from e2e_support import (
    VALID_GARAGES,
    ArrivalWatchingDouble,
    Cli,
    FakeOpendatasoft,
    Site,
    expected_ids,
    read_ndjson,
    summaries,
    upserts,
)

from adapters.core.outbox import Outbox


def test_config_errors_exit_2_naming_every_bad_key(
    source: FakeOpendatasoft, broker: ArrivalWatchingDouble, site: Site, cli: Cli
) -> None:
    site.write_config(broker_url="http://orion 1026", source_url=source.records_url, broker={"tennant": "dortmund"})

    code, stdout, stderr = cli("run", "--once", "--config", str(site.config))
    assert code == 2
    assert stdout == ""
    problems = [line for line in stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 2, stderr
    assert any("broker.url" in line and "http://orion 1026" in line for line in problems), stderr
    assert any("tennant" in line for line in problems), stderr
    assert "Traceback" not in stderr
    # Nothing was started: no fetch, no request, no outbox.
    assert source.requests == []
    assert broker.requests == []
    assert not site.outbox.exists()


def test_broker_token_is_sent_and_a_wrong_one_keeps_entities_without_leaking(
    source: FakeOpendatasoft, make_broker: Callable[..., ArrivalWatchingDouble], site: Site, cli: Cli
) -> None:
    token, wrong = "s3cret", "wr0ng-t0ken"
    broker: ArrivalWatchingDouble = make_broker(required_token=token)
    rejected = Site(site.root.parent / "wrong-token")
    site.write_config(broker_url=broker.url, source_url=source.records_url, broker={"token": token})
    rejected.write_config(broker_url=broker.url, source_url=source.records_url, broker={"token": wrong})

    # Independent deployments, so they run side by side.
    good_run = cli.start("run", "--once", "--config", str(site.config))
    bad_run = cli.start("run", "--once", "--config", str(rejected.config), cwd=rejected.root)
    good, bad = cli.finish(good_run), cli.finish(bad_run)

    assert good.returncode == 0, good.stderr
    assert "outbox:" not in good.stdout
    assert set(broker.entities("dortmund")) == expected_ids("dortmund")
    accepted = [r for r in upserts(broker) if r.status == 201]
    assert len(accepted) == 1
    assert accepted[0].headers["Authorization"] == f"Bearer {token}"

    # The wrong token: everything stays in the outbox, the output says what to fix, and the exit code
    # tells a cron job that a person must act (an outage alone exits 0: the outbox waits it out).
    assert bad.returncode == 1, bad.stderr
    (summary,) = summaries(bad.stdout)
    assert (summary.records, summary.entities, summary.rejected) == (24, 23, 1)
    assert f"outbox: {VALID_GARAGES} entities wait for the broker (401" in bad.stdout
    assert "unauthorised: check [broker] token" in bad.stdout
    assert "unauthorised" in bad.stderr
    assert [r.headers["Authorization"] for r in upserts(broker) if r.status == 401] == [f"Bearer {wrong}"]
    outbox = Outbox(rejected.outbox)
    try:
        status = outbox.status()
    finally:
        outbox.close()
    assert status.entities == VALID_GARAGES
    assert status.last_error is not None and "401" in status.last_error

    # Neither secret turns up anywhere a person or a log shipper reads.
    for secret, texts in (
        (token, [good.stdout, good.stderr, site.dead_letter.read_text(encoding="utf-8")]),
        (
            wrong,
            [bad.stdout, bad.stderr, rejected.dead_letter.read_text(encoding="utf-8"), status.last_error],
        ),
    ):
        for text in texts:
            assert secret not in text
    assert len(read_ndjson(site.dead_letter)) == len(read_ndjson(rejected.dead_letter)) == 1
