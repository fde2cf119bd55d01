"""docker-compose.fiware.yml against the official Compose Specification schema, and the platform's rules.

No Docker engine is needed: the file is parsed (YAML anchors and merge keys resolved, as Compose
does) and validated with the schema copied in compose-spec/ (Apache-2.0, see its PROVENANCE.txt).
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from platform_support import HERE, ROOT

from adapters.core.adapter import discover_adapters
from adapters.core.config import build_schema, load_config
from adapters.platform.provision import DEFAULT_NOTIFY_URL

COMPOSE = ROOT / "docker-compose.fiware.yml"
SCHEMA = HERE / "compose-spec" / "compose-spec.json"
DOCKERFILE = ROOT / "Dockerfile"
ADAPTER_CONFIG = ROOT / "broker-config" / "adapters" / "dos-adapters.toml"
DATASOURCES = ROOT / "broker-config" / "grafana" / "provisioning" / "datasources" / "quantumleap.yaml"
DASHBOARD_PROVIDER = ROOT / "broker-config" / "grafana" / "provisioning" / "dashboards" / "dos-adapters.yaml"
#: Bind mounts the integrator provides (docs/platform.md says how); everything else is in the repository.
PROVIDED_BY_INTEGRATOR = {"./broker-config/adapters/devices.csv"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def version() -> str:
    return re.search(r"^version = (\S+)$", (ROOT / "setup.cfg").read_text(encoding="utf-8"), re.M)[1]  # type: ignore[index]


def test_the_schema_copy_is_the_official_one() -> None:
    provenance = (HERE / "compose-spec" / "PROVENANCE.txt").read_text(encoding="utf-8")
    assert "170098ba07d9f53c383a41bfd4c5166b0a4529a6" in provenance and "Apache" in provenance
    assert "Apache License" in (HERE / "compose-spec" / "LICENSE").read_text(encoding="utf-8")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["title"] == "Compose Specification"


def test_compose_file_validates_against_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    validator = Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_every_service_has_a_healthcheck_and_a_restart_policy(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") in ("always", "unless-stopped", "on-failure"), f"{name}: no restart policy"


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"
    own = {s["image"] for s in services.values() if "build" in s}
    assert own == {f"dos-adapters:{version()}"}, "the adapters' image carries the package version"


def test_one_container_per_installed_adapter(services: dict[str, dict[str, Any]]) -> None:
    for name in discover_adapters():
        service = services.get(f"adapter-{name}")
        assert service is not None, f"no service adapter-{name} in {COMPOSE.name}"
        assert service["command"] == ["run", "--adapter", name]
        assert service["build"]["dockerfile"] == "Dockerfile"
        env = service["environment"]
        assert env["DOS_CONFIG"] == "/etc/dos-adapters/config.toml"
        assert env["DOS_BROKER_URL"] == "http://orion:1026"
        assert env["DOS_BROKER_TOKEN_FILE"] == "/run/secrets/broker_token"  # secrets from files
        assert "broker_token" in service["secrets"]
        mounts = service["volumes"]
        assert "./broker-config/adapters/dos-adapters.toml:/etc/dos-adapters/config.toml:ro" in mounts
        assert f"{name}-state:/var/lib/dos-adapters" in mounts  # the outbox survives the container
        assert "/health" in " ".join(service["healthcheck"]["test"])
    assert not [s for s in services if s.startswith("adapter-") and s[8:] not in discover_adapters()]


def test_databases_and_outboxes_live_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    wanted = {"mongo": "/data/db", "timescale": "/home/postgres/pgdata", "grafana": "/var/lib/grafana"}
    for name, target in wanted.items():
        sources = [v.split(":")[0] for v in compose["services"][name]["volumes"] if v.split(":")[1] == target]
        assert sources and sources[0] in declared, f"{name}: {target} must be a named volume"
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists() or source in PROVIDED_BY_INTEGRATOR, f"{name}: {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} not declared"


def test_secrets_are_files_and_declared(compose: dict[str, Any]) -> None:
    declared = compose["secrets"]
    for name, service in compose["services"].items():
        for secret in service.get("secrets", []):
            assert secret in declared, f"{name}: secret {secret} not declared"
    for secret, source in declared.items():
        assert source["file"] == f"./secrets/{secret}"
    assert "secrets/" in (ROOT / ".gitignore").read_text(encoding="utf-8")
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASS|TOKEN|SECRET", key):
                assert str(value).startswith("/run/secrets/"), f"{name}: {key} must name a secret file"


def test_orion_ld_runs_multiservice_with_the_adapters_payload_limit(services: dict[str, dict[str, Any]]) -> None:
    env = services["orion"]["environment"]
    assert env["ORIONLD_MULTI_SERVICE"] == "TRUE"
    assert env["ORIONLD_MONGO_HOST"] == "mongo"
    broker_schema = build_schema({})["properties"]["broker"]["properties"]
    assert int(env["ORIONLD_IN_REQ_PAYLOAD_MAX_SIZE"]) == broker_schema["max_payload_bytes"]["default"]
    core = f"ngsi-ld-core-context-{env['ORIONLD_CORE_CONTEXT']}.jsonld"
    assert f"./broker-config/orion-ld/ldcontexts/{core}:/opt/orion/ldcontexts/{core}:ro" in services["orion"]["volumes"]


def test_the_context_url_the_adapters_send_is_served_by_the_context_server(services: dict[str, Any]) -> None:
    config = tomllib.loads(ADAPTER_CONFIG.read_text(encoding="utf-8"))
    url = config["broker"]["context"]
    assert url == build_schema({})["properties"]["broker"]["properties"]["context"]["default"]
    host, _, name = url.removeprefix("http://").partition("/")
    assert host in services
    assert "./broker-config/context:/usr/share/nginx/html:ro" in services[host]["volumes"]
    assert (ROOT / "broker-config" / "context" / name).is_file()


def test_the_adapters_config_is_valid_and_enables_every_adapter() -> None:
    adapters = discover_adapters()
    config = load_config(ADAPTER_CONFIG, {n: a.section_schema() for n, a in adapters.items()}, environ={})
    assert all(config["adapters"][name]["enabled"] for name in adapters)  # provision subscribes their types


def test_provision_feeds_quantumleap_for_every_city(services: dict[str, dict[str, Any]]) -> None:
    command = services["provision"]["command"]
    assert command[0] == "provision"
    assert command[command.index("--notify-url") + 1] == DEFAULT_NOTIFY_URL == "http://quantumleap:8668/v2/notify"
    tenants = {command[i + 1] for i, arg in enumerate(command) if arg == "--tenant"}
    database_tenants = set(services["timescale"]["environment"]["DOS_TENANTS"].split())
    grafana_tenants = {
        s["name"].removeprefix("QuantumLeap ") for s in yaml.safe_load(DATASOURCES.read_text())["datasources"]
    }
    assert tenants == database_tenants == grafana_tenants == {"dortmund", "schwerte"}
    assert services["quantumleap"]["environment"]["QL_DEFAULT_DB"] == "timescale"


def test_grafana_gets_the_provisioned_datasources_and_dashboards(services: dict[str, dict[str, Any]]) -> None:
    mounts = services["grafana"]["volumes"]
    assert "./broker-config/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    provider = yaml.safe_load(DASHBOARD_PROVIDER.read_text())["providers"][0]
    assert f"./broker-config/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith("/run/secrets/")


def test_dockerfile_builds_a_non_root_image_with_a_health_check() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"^FROM (\S+)", text, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base[1]), "python:3.11 slim, pinned to a patch"
    assert "pip install ." in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    health = re.search(r"^HEALTHCHECK .*?CMD (.+)$", text, re.M | re.S)
    assert health and "/health" in health[1] and "DOS_METRICS_PORT" in health[1]
    assert re.search(r"DOS_METRICS_PORT=9100", text)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    assert "!adapters/" in ignored and "!datamodels/" in ignored
