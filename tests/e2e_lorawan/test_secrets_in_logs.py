"""Secrets never leak: a running adapter logging at DEBUG, with a broker token the broker refuses, an
MQTT password and a webhook secret, and requests that get the secret wrong, nearly right or right.

Neither the log, the dead-letter file, the outbox file, ``outbox status`` nor ``config`` may hold any
of the three secrets.
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
    fleet,
    free_port,
    readings,
    wait_until,
)

from adapters.testing import BrokerDouble

TOKEN = "brk-token-7f3a9c2e51d04b8a"
PASSWORD = "mqtt-pass-1c9e77d0a2b3"
WEBHOOK_SECRET = "hook-secret-5b2f9a0c3e8d41"
SECRETS = (TOKEN, PASSWORD, WEBHOOK_SECRET)


def _assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} contains a secret"
        assert secret[4:-4] not in text, f"{where} contains most of a secret"


def test_no_secret_in_debug_logs_dead_letters_outbox_or_config_output(
    tmp_path, mosquitto, client_id, start_adapter
) -> None:
    sensors = fleet(per_tenant=1)
    site = Site(tmp_path / "site", sensors)
    port = free_port()
    broker = BrokerDouble(required_token="the-token-the-broker-wants").start()
    try:
        site.write_config(
            broker_url=broker.url,
            mqtt={
                "host": "127.0.0.1",
                "port": mosquitto.port,
                "client_id": client_id,
                "username": "dos",
                "password": PASSWORD,
            },
            webhook={"host": "127.0.0.1", "port": port, "path": "/uplink", "secret": WEBHOOK_SECRET},
            lorawan={"batch_max_delay": 0.02},
        )
        text = site.config.read_text(encoding="utf-8")
        text = text.replace('level = "INFO"', 'level = "DEBUG"')
        text = text.replace("[broker]\n", f'[broker]\ntoken = "{TOKEN}"\n')
        site.config.write_text(text, encoding="utf-8")

        adapter = start_adapter(site)
        adapter.wait_subscribed()
        url = f"http://127.0.0.1:{port}/uplink"
        good = json.dumps(chirpstack_up(readings(sensors, 1)[0])).encode()
        bad_json = b'{"deviceInfo": {"devEui": "' + WEBHOOK_SECRET.encode() + b'"}, "data": "!!"}'
        answers = [
            requests.post(url, data=good, headers={"X-Webhook-Secret": "wrong-" + WEBHOOK_SECRET}, timeout=5),
            requests.post(url, data=good, headers={"X-Webhook-Secret": WEBHOOK_SECRET[:-1]}, timeout=5),
            requests.post(url, data=good, timeout=5),
            requests.post(url, data=good, headers={"X-Webhook-Secret": WEBHOOK_SECRET}, timeout=5),
            requests.post(url, data=bad_json, headers={"X-Webhook-Secret": WEBHOOK_SECRET}, timeout=5),
            requests.post(url, data=b"x" * 70_000, headers={"X-Webhook-Secret": WEBHOOK_SECRET}, timeout=5),
        ]
        statuses = [a.status_code for a in answers]
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3] < 300  # committed to the outbox
        assert statuses[5] == 413
        for answer in answers:
            _assert_no_secret(f"webhook answer {answer.status_code}", answer.text + str(answer.headers))
        # The broker refuses the token: a configuration error, logged, and the entities stay.
        wait_until(lambda: any(r.status == 401 for r in broker.requests), 15, "the broker's 401")
        wait_until(lambda: "broker configuration problem" in adapter.log, 10, "the error in the log")
        adapter.terminate()
        assert any(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in broker.requests)
    finally:
        broker.stop()

    log = adapter.log
    assert "DEBUG" in log, "the run did not log at DEBUG"
    assert "401" in log
    _assert_no_secret("the adapter log", log)
    assert site.dead_letter.exists(), "the unreadable uplink was not dead-lettered"
    _assert_no_secret("the dead-letter file", site.dead_letter.read_text(encoding="utf-8"))
    assert site.outbox_entities() == 2
    _assert_no_secret("the outbox file", site.outbox.read_bytes().decode("utf-8", "replace"))
    for wal in site.outbox.parent.glob("*-wal"):
        _assert_no_secret("the outbox WAL", wal.read_bytes().decode("utf-8", "replace"))

    for command in (["outbox", "status"], ["config"], ["config", "--env"]):
        result = subprocess.run(
            [str(CLI), *command, "--config", str(site.config)],
            cwd=site.root,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        _assert_no_secret(f"dos-adapters {' '.join(command)}", result.stdout + result.stderr)
    assert "***" in subprocess.run(
        [str(CLI), "config", "--config", str(site.config)], cwd=site.root, env=cli_env(), capture_output=True,
        text=True, timeout=30,
    ).stdout
