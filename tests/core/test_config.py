"""adapters.core.config: TOML + DOS_* environment, defaults, every problem at once, secrets kept secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.core.config import (
    ConfigError,
    build_schema,
    env_variables,
    load_config,
    redact,
    secret_values,
)

# A small fake adapter section, shaped like a real adapter's own schema.
SECTIONS: dict[str, dict[str, Any]] = {
    "parking": {
        "properties": {
            "source": {"enum": ["garages", "lots"], "default": "garages"},
            "api_key": {"type": "string", "writeOnly": True},
            "strict": {"type": "boolean", "default": False},
        }
    }
}

TOKEN = "tok-SUPER-secret-123"
CLIENT_SECRET = "cs-VERY-secret-456"
API_KEY = "key-ALSO-secret-789"


def _write(tmp_path: Path, text: str, name: str = "dos.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(error: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return error.value.problems


def test_empty_config_gets_every_default() -> None:
    config = load_config(None, SECTIONS, environ={})
    assert config["broker"]["context"] == "http://context-server/dos-adapters.jsonld"
    assert config["broker"]["verify_tls"] is True
    assert config["broker"]["timeout"] == 10
    assert config["broker"]["max_payload_bytes"] == 1_048_576
    assert config["broker"]["max_batch_entities"] == 1000
    assert "url" not in config["broker"]  # no broker url: the file sink is used
    assert "oauth2" not in config["broker"]  # optional table with required keys stays absent
    assert config["outbox"] == {"path": "var/outbox.sqlite", "max_backoff": 300}
    assert config["output"] == {"path": "out/entities.ndjson"}
    assert config["dead_letter"] == {"path": "out/dead-letter.ndjson"}
    assert config["log"] == {"level": "INFO", "format": "text"}
    parking = config["adapters"]["parking"]
    assert parking == {"enabled": True, "jitter": 10, "timeout": 30, "source": "garages", "strict": False}


def test_toml_values_are_kept_and_defaults_fill_the_rest(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[broker]
url = "http://orion:1026"
tenant = "dortmund"

[adapters.parking]
interval = 300
source = "lots"
""",
    )
    config = load_config(path, SECTIONS, environ={})
    assert config["broker"]["url"] == "http://orion:1026"
    assert config["broker"]["tenant"] == "dortmund"
    assert config["broker"]["max_batch_entities"] == 1000
    assert config["adapters"]["parking"]["interval"] == 300
    assert config["adapters"]["parking"]["source"] == "lots"
    assert config["adapters"]["parking"]["jitter"] == 10


def test_environment_overrides_the_file_with_typed_values(tmp_path: Path) -> None:
    path = _write(tmp_path, '[broker]\nurl = "http://from-file:1026"\n[adapters.parking]\ninterval = 300\n')
    environ = {
        "DOS_BROKER_URL": "http://from-env:1026",
        "DOS_ADAPTERS_PARKING_INTERVAL": "60",
        "DOS_ADAPTERS_PARKING_ENABLED": "false",
        "DOS_ADAPTERS_PARKING_STRICT": "Yes",
        "DOS_BROKER_VERIFY_TLS": "0",
        "DOS_BROKER_TIMEOUT": "2.5",
        "DOS_LOG_LEVEL": "DEBUG",
        "UNRELATED": "ignored",
    }
    config = load_config(path, SECTIONS, environ=environ)
    assert config["broker"]["url"] == "http://from-env:1026"
    assert config["adapters"]["parking"]["interval"] == 60
    assert isinstance(config["adapters"]["parking"]["interval"], int)
    assert config["adapters"]["parking"]["enabled"] is False
    assert config["adapters"]["parking"]["strict"] is True
    assert config["broker"]["verify_tls"] is False
    assert config["broker"]["timeout"] == 2.5
    assert config["log"]["level"] == "DEBUG"


@pytest.mark.parametrize(
    ("text", "expected"), [("1", True), ("on", True), ("TRUE", True), ("off", False), ("no", False)]
)
def test_boolean_spellings(text: str, expected: bool) -> None:
    config = load_config(None, SECTIONS, environ={"DOS_BROKER_VERIFY_TLS": text})
    assert config["broker"]["verify_tls"] is expected


def test_env_parse_errors_name_the_variable() -> None:
    environ = {"DOS_ADAPTERS_PARKING_INTERVAL": "often", "DOS_BROKER_VERIFY_TLS": "maybe", "DOS_BROKER_TIMEOUT": "x"}
    with pytest.raises(ConfigError) as error:
        load_config(None, SECTIONS, environ=environ)
    problems = _problems(error)
    assert any("DOS_ADAPTERS_PARKING_INTERVAL" in p and "integer" in p for p in problems)
    assert any("DOS_BROKER_VERIFY_TLS" in p and "true or false" in p for p in problems)
    assert any("DOS_BROKER_TIMEOUT" in p and "number" in p for p in problems)


def test_secret_from_file(tmp_path: Path) -> None:
    secret_file = _write(tmp_path, f"{TOKEN}\n", name="token.txt")
    config = load_config(None, SECTIONS, environ={"DOS_BROKER_TOKEN_FILE": str(secret_file)})
    assert config["broker"]["token"] == TOKEN  # trailing newline of the mounted file stripped


def test_secret_variable_wins_over_its_file(tmp_path: Path) -> None:
    secret_file = _write(tmp_path, "from-file-secret", name="token.txt")
    environ = {"DOS_BROKER_TOKEN": TOKEN, "DOS_BROKER_TOKEN_FILE": str(secret_file)}
    assert load_config(None, SECTIONS, environ=environ)["broker"]["token"] == TOKEN


def test_file_variant_only_exists_for_secrets(tmp_path: Path) -> None:
    url_file = _write(tmp_path, "http://from-file:1026", name="url.txt")
    config = load_config(None, SECTIONS, environ={"DOS_BROKER_URL_FILE": str(url_file)})
    assert "url" not in config["broker"]


def test_unreadable_secret_file_is_a_problem_naming_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigError) as error:
        load_config(None, SECTIONS, environ={"DOS_ADAPTERS_PARKING_API_KEY_FILE": str(missing)})
    (problem,) = _problems(error)
    assert problem.startswith("DOS_ADAPTERS_PARKING_API_KEY_FILE: cannot read")
    assert str(missing) in problem


def test_all_problems_reported_at_once_each_naming_its_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[broker]
url = "not a url"
max_batch_entities = 5000
colour = "blue"

[adapters.parking]
interval = "5 minutes"
source = "everything"

[adapters.unknown]
enabled = true
""",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, SECTIONS, environ={"DOS_BROKER_TIMEOUT": "soon"})
    problems = _problems(error)
    text = str(error.value)

    def one(*needles: str) -> str:
        found = [p for p in problems if all(n in p for n in needles)]
        assert len(found) == 1, (needles, problems)
        return found[0]

    assert one("broker.url", "uri").startswith(f"{path}: ")
    one("broker.max_batch_entities", "5000")
    one("broker", "colour")  # unknown key
    one("adapters.parking.interval", "integer")  # wrong type
    one("adapters.parking.source", "everything")
    one("adapters", "unknown")
    one("DOS_BROKER_TIMEOUT")
    assert len(problems) == 7
    assert text.count("\n  - ") == 7  # one line per problem in the message a user reads


def test_interval_and_cron_together_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, '[adapters.parking]\ninterval = 60\ncron = "*/5 * * * *"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path, SECTIONS, environ={})
    assert _problems(error) == [f"{path}: adapters.parking: set either interval or cron, not both"]


def test_interval_from_env_and_cron_from_file_is_also_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, '[adapters.parking]\ncron = "*/5 * * * *"\n')
    with pytest.raises(ConfigError, match="interval or cron"):
        load_config(path, SECTIONS, environ={"DOS_ADAPTERS_PARKING_INTERVAL": "60"})


def test_interval_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"adapters\.parking\.interval"):
        load_config(None, SECTIONS, environ={"DOS_ADAPTERS_PARKING_INTERVAL": "0"})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[broker\nurl = \n")
    with pytest.raises(ConfigError) as error:
        load_config(path, SECTIONS, environ={})
    (problem,) = _problems(error)
    assert problem.startswith(f"{path}: not valid TOML")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as error:
        load_config(path, SECTIONS, environ={})
    assert _problems(error)[0].startswith(f"{path}: cannot read")


def test_oauth2_table_requires_its_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, '[broker.oauth2]\nclient_id = "dos"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path, SECTIONS, environ={})
    problems = _problems(error)
    assert any("broker.oauth2" in p and "token_url" in p for p in problems)
    assert any("broker.oauth2" in p and "client_secret" in p for p in problems)


def test_oauth2_from_env_alone() -> None:
    environ = {
        "DOS_BROKER_OAUTH2_TOKEN_URL": "http://keycloak/token",
        "DOS_BROKER_OAUTH2_CLIENT_ID": "dos",
        "DOS_BROKER_OAUTH2_CLIENT_SECRET": CLIENT_SECRET,
    }
    config = load_config(None, SECTIONS, environ=environ)
    assert config["broker"]["oauth2"] == {
        "token_url": "http://keycloak/token",
        "client_id": "dos",
        "client_secret": CLIENT_SECRET,
    }


# --- secrets -------------------------------------------------------------------------------------


def test_secrets_of_the_wrong_type_are_reported_without_their_value(tmp_path: Path) -> None:
    # A secret typed as a number: the validator's message would quote it.
    path = _write(
        tmp_path,
        f"""
[broker]
url = "no url"
token = 987654321

[broker.oauth2]
token_url = "http://keycloak/token"
client_id = "dos"
client_secret = ["{CLIENT_SECRET}"]

[adapters.parking]
api_key = {{ value = "{API_KEY}" }}
""",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, SECTIONS, environ={})
    text = str(error.value)
    problems = _problems(error)
    for secret in ("987654321", CLIENT_SECRET, API_KEY):
        assert secret not in text
    assert any(p.startswith(f"{path}: broker.token:") for p in problems)
    assert any(p.startswith(f"{path}: broker.oauth2.client_secret:") for p in problems)
    assert any(p.startswith(f"{path}: adapters.parking.api_key:") for p in problems)
    assert any("broker.url" in p and "'no url'" in p for p in problems)  # non-secrets are quoted


def test_redact_replaces_every_secret() -> None:
    environ = {
        "DOS_BROKER_URL": "http://orion:1026",
        "DOS_BROKER_TOKEN": TOKEN,
        "DOS_BROKER_OAUTH2_TOKEN_URL": "http://keycloak/token",
        "DOS_BROKER_OAUTH2_CLIENT_ID": "dos",
        "DOS_BROKER_OAUTH2_CLIENT_SECRET": CLIENT_SECRET,
        "DOS_ADAPTERS_PARKING_API_KEY": API_KEY,
    }
    config = load_config(None, SECTIONS, environ=environ)
    schema = build_schema(SECTIONS)
    shown = redact(config, schema)
    for secret in (TOKEN, CLIENT_SECRET, API_KEY):
        assert secret not in shown
    document = json.loads(shown)
    assert document["broker"]["token"] == "***"
    assert document["broker"]["oauth2"]["client_secret"] == "***"
    assert document["broker"]["oauth2"]["client_id"] == "dos"
    assert document["adapters"]["parking"]["api_key"] == "***"
    assert document["broker"]["url"] == "http://orion:1026"
    # redact works on a copy: the running configuration keeps the real secrets
    assert config["broker"]["token"] == TOKEN
    assert secret_values(config, schema) == {TOKEN, CLIENT_SECRET, API_KEY}


def test_redact_does_not_invent_absent_secrets() -> None:
    config = load_config(None, SECTIONS, environ={})
    document = json.loads(redact(config, build_schema(SECTIONS)))
    assert "token" not in document["broker"]
    assert "api_key" not in document["adapters"]["parking"]
    assert secret_values(config, build_schema(SECTIONS)) == set()


# --- schema and environment names ----------------------------------------------------------------


def test_env_variable_names_derive_from_the_schema() -> None:
    names = env_variables(build_schema(SECTIONS))
    expected = {
        "DOS_BROKER_URL": ("broker", "url"),
        "DOS_BROKER_TOKEN": ("broker", "token"),
        "DOS_BROKER_MAX_PAYLOAD_BYTES": ("broker", "max_payload_bytes"),
        "DOS_BROKER_OAUTH2_CLIENT_SECRET": ("broker", "oauth2", "client_secret"),
        "DOS_OUTBOX_PATH": ("outbox", "path"),
        "DOS_LOG_FORMAT": ("log", "format"),
        "DOS_DEAD_LETTER_PATH": ("dead_letter", "path"),
        "DOS_ADAPTERS_PARKING_INTERVAL": ("adapters", "parking", "interval"),
        "DOS_ADAPTERS_PARKING_CRON": ("adapters", "parking", "cron"),
        "DOS_ADAPTERS_PARKING_API_KEY": ("adapters", "parking", "api_key"),
        "DOS_ADAPTERS_PARKING_SOURCE": ("adapters", "parking", "source"),
    }
    for name, path in expected.items():
        assert names[name][0] == path
    assert names["DOS_ADAPTERS_PARKING_API_KEY"][1].get("writeOnly") is True
    assert all(name.startswith("DOS_") and name == name.upper() for name in names)
    assert "DOS_BROKER_OAUTH2" not in names  # tables are not variables; their keys are


def test_adapter_names_with_dashes_give_valid_env_names() -> None:
    names = env_variables(build_schema({"air-quality": {}}))
    assert names["DOS_ADAPTERS_AIR_QUALITY_INTERVAL"][0] == ("adapters", "air-quality", "interval")


def test_build_schema_merges_common_keys_and_does_not_mutate_input() -> None:
    sections = {"parking": {"properties": {"source": {"enum": ["a"]}}}}
    schema = build_schema(sections)
    parking = schema["properties"]["adapters"]["properties"]["parking"]
    assert {"enabled", "url", "interval", "cron", "jitter", "tenant", "timeout", "source"} <= set(parking["properties"])
    assert parking["additionalProperties"] is False
    assert sections == {"parking": {"properties": {"source": {"enum": ["a"]}}}}
    parking["properties"]["jitter"]["default"] = 99
    assert (
        build_schema(sections)["properties"]["adapters"]["properties"]["parking"]["properties"]["jitter"]["default"]
        == 10
    )


@pytest.mark.parametrize(
    ("toml", "environ", "key"),
    [
        ("adapters = 5\n", {}, "adapters"),
        ('broker = "orion"\n', {"DOS_BROKER_URL": "http://orion:1026"}, "broker"),
        ('[adapters]\nparking = "on"\n', {"DOS_ADAPTERS_PARKING_INTERVAL": "60"}, "adapters.parking"),
    ],
)
def test_a_value_where_a_table_belongs_is_a_config_error(
    tmp_path: Path, toml: str, environ: dict[str, str], key: str
) -> None:
    path = _write(tmp_path, toml)
    with pytest.raises(ConfigError) as error:
        load_config(path, SECTIONS, environ=environ)
    assert any(p.startswith(f"{path}: {key}: ") and "'object'" in p for p in _problems(error))


ARRAY_SECTIONS: dict[str, dict[str, Any]] = {
    "parking": {
        "properties": {
            "ids": {"type": "array", "items": {"type": "string"}, "default": []},
            "ports": {"type": "array", "items": {"type": "integer"}, "default": []},
            "bbox": {
                "type": "array",
                "prefixItems": [{"type": "number"}] * 4,
                "minItems": 4,
                "maxItems": 4,
                "default": [5.8, 47.2, 15.1, 55.1],
            },
        }
    }
}


@pytest.mark.parametrize("text", ["6.8, 51.2, 7.9, 51.75", "[6.8, 51.2, 7.9, 51.75]"])
def test_number_arrays_from_the_environment_are_numbers(text: str) -> None:
    config = load_config(None, ARRAY_SECTIONS, environ={"DOS_ADAPTERS_PARKING_BBOX": text})
    assert config["adapters"]["parking"]["bbox"] == [6.8, 51.2, 7.9, 51.75]


def test_string_and_integer_arrays_from_the_environment() -> None:
    environ = {"DOS_ADAPTERS_PARKING_IDS": "a1, b2,,c3", "DOS_ADAPTERS_PARKING_PORTS": "[85, 86]"}
    settings = load_config(None, ARRAY_SECTIONS, environ=environ)["adapters"]["parking"]
    assert settings["ids"] == ["a1", "b2", "c3"]
    assert settings["ports"] == [85, 86]


def test_array_items_of_the_wrong_type_name_the_variable_and_position() -> None:
    environ = {"DOS_ADAPTERS_PARKING_BBOX": "6.8,north,7.9,51.75", "DOS_ADAPTERS_PARKING_PORTS": "[85"}
    with pytest.raises(ConfigError) as error:
        load_config(None, ARRAY_SECTIONS, environ=environ)
    problems = _problems(error)
    assert any("DOS_ADAPTERS_PARKING_BBOX[1]" in p and "number" in p for p in problems)
    assert any("DOS_ADAPTERS_PARKING_PORTS" in p and "JSON array" in p for p in problems)
