"""Entity ids from hostile local ids: ``urn:ngsi-ld:<Type>:<tenant>:<local id>`` holds, whatever the source
sends as its id (':' and 'urn:' injection, spaces, unicode look-alikes, control characters), and the tenant
read back from the id is always the one the adapter chose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.core.entities import EntityError, entity_id, local_id, tenant_of_entity
from adapters.core.sinks import DeadLetterFile

SCHEME = re.compile(r"^urn:ngsi-ld:WasteContainer:schwerte:[A-Za-z0-9._~-]+$")

HOSTILE = [
    "dortmund:glascontainer-001",
    "urn:ngsi-ld:WasteContainer:dortmund:glascontainer-001",
    ":dortmund:x",
    "x:",
    "a b\tc\nd",
    "Straße am Ölbach 3",
    "dortmund\uff1aevil",  # FULLWIDTH COLON: NFKC makes it ':'
    "dortmund\ufe13evil",  # PRESENTATION FORM FOR VERTICAL COLON
    "\u202eliamtrod",  # RIGHT-TO-LEFT OVERRIDE
    "../../etc/passwd",
    "id?tenant=dortmund#frag",
    "%3Adortmund%3A",
    "x\x00y",
    "=HYPERLINK(\"http://evil\")",
    "🗑️ bin 7",
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_local_ids_keep_the_id_scheme(raw: str) -> None:
    made = entity_id("WasteContainer", "schwerte", raw)
    assert SCHEME.match(made), made
    assert made.count(":") == 4
    assert tenant_of_entity({"id": made}) == "schwerte"
    assert "dortmund" not in made.split(":")[3]


def local_id_usable(raw: str) -> bool:
    try:
        local_id(raw)
    except EntityError:
        return False
    return True


@settings(max_examples=2000, derandomize=True, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"(urn:ngsi-ld:[A-Za-z]+:)?[a-z]+:[^\n]{0,20}", fullmatch=True))
def test_any_local_id_keeps_the_scheme_or_is_refused_with_a_reason(raw: str) -> None:
    if not local_id_usable(raw):
        with pytest.raises(EntityError, match="nothing usable left"):
            entity_id("WasteContainer", "schwerte", raw)
        return
    made = entity_id("WasteContainer", "schwerte", raw)
    assert SCHEME.match(made), made
    assert tenant_of_entity({"id": made}) == "schwerte"
    assert local_id(raw) == local_id(raw)  # stable: the same source id always names the same entity


@pytest.mark.parametrize("raw", ["", ":::", "   ", "\u202e", "🗑️"])
def test_local_ids_with_nothing_usable_are_refused(raw: str) -> None:
    with pytest.raises(EntityError, match="nothing usable left"):
        entity_id("WasteContainer", "schwerte", raw)


@pytest.mark.parametrize("tenant", ["dortmund:x", "Dortmund Nord", "a" * 51, "dört"])
def test_hostile_tenants_are_refused(tenant: str) -> None:
    with pytest.raises(EntityError, match="tenant"):
        entity_id("WasteContainer", tenant, "x")


def test_dead_letter_file_masks_configured_secrets(tmp_path: Path) -> None:
    secret = 'p"ss\\word-Grüße-1234'
    dead = DeadLetterFile(tmp_path / "dead.ndjson", secrets=[secret, "abc"])  # too short to mask: kept
    dead.reject(
        adapter="lorawan",
        source="chirpstack-v4",
        reason=f"bad uplink {secret}",
        record={"note": secret, "abc": "abc"},
    )
    text = (tmp_path / "dead.ndjson").read_text(encoding="utf-8")
    assert "word-Gr" not in text
    assert text.count("***") == 2
    assert '"abc":"abc"' in text
