"""LoRaWAN uplinks over the real HTTP webhook (ChirpStack's HTTP integration, TTS webhooks).

The adapter answers ``202`` only once the uplink is committed to the outbox, ``401`` without the
shared secret, ``413`` above ``max_body_bytes``, ``204`` for the other ChirpStack events
(``?event=join``), and refuses to start with the webhook on but no secret.
"""

from __future__ import annotations

import json
import subprocess

import requests
from lorawan_e2e_support import (
    CLI,
    Site,
    chirpstack_up,
    cli_env,
    expected_pairs,
    fleet,
    free_port,
    observed_pairs,
    readings,
    wait_until,
)

SECRET = "dortmund-ns-0123456789abcdef"
HEADER = "X-Webhook-Secret"


def test_webhook_takes_authenticated_uplinks_and_refuses_the_rest(tmp_path, broker, start_adapter) -> None:
    sensors = fleet(per_tenant=2)
    site = Site(tmp_path / "site", sensors)
    port = free_port()
    site.write_config(
        broker_url=broker.url,
        webhook={"host": "127.0.0.1", "port": port, "path": "/uplink", "secret": SECRET, "max_body_bytes": 2048},
        lorawan={"batch_max_delay": 0.05},
    )
    adapter = start_adapter(site)
    url = f"http://127.0.0.1:{port}"
    first, second, refused = readings(sensors, 3)
    body = json.dumps(chirpstack_up(first)).encode()

    with requests.Session() as http:

        def healthy() -> bool:
            try:
                return http.get(f"{url}/health", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(healthy, 15, "GET /health to answer 200")

        # Authenticated uplink: 202 once committed, then delivered.
        answer = http.post(f"{url}/uplink", data=body, headers={HEADER: SECRET}, timeout=10)
        assert answer.status_code == 202, answer.text
        wait_until(lambda: expected_pairs([first]) <= set(observed_pairs(broker)), 10, "the first uplink delivered")

        # ChirpStack's HTTP integration posts every event to one URL: ?event=up is an uplink, the rest is ignored.
        up = http.post(
            f"{url}/uplink?event=up", data=json.dumps(chirpstack_up(second)), headers={HEADER: SECRET}, timeout=10
        )
        assert up.status_code == 202, up.text
        join = http.post(
            f"{url}/uplink?event=join", data=json.dumps({"deviceInfo": {}}), headers={HEADER: SECRET}, timeout=10
        )
        assert join.status_code == 204

        # No secret, wrong secret: 401, nothing stored.
        refused_body = json.dumps(chirpstack_up(refused))
        assert http.post(f"{url}/uplink", data=refused_body, timeout=10).status_code == 401
        wrong = http.post(f"{url}/uplink", data=refused_body, headers={HEADER: SECRET[:-1] + "X"}, timeout=10)
        assert wrong.status_code == 401
        assert HEADER in wrong.text

        # Above max_body_bytes: 413 without reading it.
        padded = {**chirpstack_up(refused), "padding": "x" * 4096}
        too_big = http.post(f"{url}/uplink", data=json.dumps(padded), headers={HEADER: SECRET}, timeout=10)
        assert too_big.status_code == 413

        # Not JSON: accepted (the network server must not retry it forever) and dead-lettered with the reason.
        garbage = http.post(f"{url}/uplink", data=b"{not json", headers={HEADER: SECRET}, timeout=10)
        assert garbage.status_code == 202
        assert http.get(f"{url}/nothing-here", timeout=2).status_code == 404

    wait_until(lambda: expected_pairs([first, second]) <= set(observed_pairs(broker)), 10, "the second uplink")
    counters = adapter.stop_cleanly()

    # In: 3 bodies reached the pipeline (two uplinks, the garbage); out: 4 entities, 1 dead letter.
    assert counters == {"messages": 3, "ignored": 0, "rejected": 1, "entities": 4, "commits": counters["commits"]}
    pairs = observed_pairs(broker)
    assert set(pairs) == expected_pairs([first, second])
    assert set(pairs.values()) == {1}
    assert refused.sensor.tenant not in broker.tenants()  # its bin is in Schwerte, the others in Dortmund
    (letter,) = site.dead_letters()
    assert letter["where"].startswith("/uplink")
    assert "not JSON" in letter["reason"]
    assert letter["record"]["text"] == "{not json"  # what was received, for the operator


def test_webhook_without_a_secret_does_not_start(tmp_path) -> None:
    site = Site(tmp_path / "site", fleet(per_tenant=1))
    site.write_config(broker_url="http://127.0.0.1:9", webhook={"host": "127.0.0.1", "port": free_port()})
    result = subprocess.run(
        [str(CLI), "run", "--config", str(site.config)],
        cwd=site.root,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "adapters.lorawan.webhook" in result.stderr
    assert "'secret' is a required property" in result.stderr
