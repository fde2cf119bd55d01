"""The contract every adapter passes; switched on by a one-line subclass in the adapter's tests::

    from adapters.testing.contract import AdapterContract
    from my_city_adapters.bikes import BikesAdapter

    class TestBikesContract(AdapterContract):
        adapter = BikesAdapter

It checks the declaration, the sample config (valid, its commented defaults equal the schema's,
a broken one rejected), the README, and every recorded case: expected output, data-model profile,
id scheme, determinism (also across chunk boundaries), and that normalising never touches the network.
"""

from __future__ import annotations

import re
import socket
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import pytest

from adapters.core.adapter import ENTRY_POINT_GROUP, Adapter, NormalizeContext
from adapters.core.config import ConfigError, build_schema, load_config
from adapters.core.normalize import normalize_payload
from adapters.core.validation import entity_problems, profile_types
from adapters.testing.cases import Case, adapter_settings, load_cases, read_ndjson, run_case

__all__ = ["AdapterContract", "no_network"]

_COMMENTED_KEY = re.compile(r"^\s*#\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+?)\s*$")


@contextmanager
def no_network() -> Iterator[None]:
    """Any socket connection attempt inside the block fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted during normalisation: {args!r}")

    original_connect, original_create = socket.socket.connect, socket.create_connection
    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.create_connection = original_create


class AdapterContract:
    adapter: ClassVar[type[Adapter]]

    # -- helpers -------------------------------------------------------------------------------
    @property
    def folder(self) -> Path:
        package = sys.modules[self.adapter.__module__].__package__ or self.adapter.__module__
        return Path(sys.modules[package].__file__ or "").parent

    def cases(self) -> list[Case]:
        cases = load_cases(self.adapter)
        assert cases, f"{self.folder}/cases/ holds no recorded case"
        return cases

    def sections(self) -> dict[str, dict[str, Any]]:
        return {self.adapter.name: self.adapter.section_schema()}

    # -- declaration ---------------------------------------------------------------------------
    def test_registered_under_its_name(self) -> None:
        entry_points = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
        assert self.adapter.name in entry_points, f"no entry point {self.adapter.name!r} in {ENTRY_POINT_GROUP}"
        assert entry_points[self.adapter.name].load() is self.adapter

    def test_declaration_is_complete(self) -> None:
        adapter = self.adapter
        assert re.fullmatch(r"[a-z][a-z0-9_]*", adapter.name)
        assert adapter.title and adapter.mode in ("poll", "push")
        assert adapter.sources, "an adapter needs at least one source kind"
        missing = set(adapter.entity_types()) - set(profile_types())
        assert not missing, f"no data-model profile in datamodels/ for {sorted(missing)}"
        for source in adapter.sources:
            assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", source.name), source.name
            if adapter.mode == "poll":
                assert source.default_url.startswith("https://"), "the default must be the live public endpoint"
            assert adapter.sample_payload(source), f"{source.name}: recorded sample {source.sample} missing or empty"

    # -- configuration -------------------------------------------------------------------------
    def sample_config(self) -> Path:
        path = self.folder / "sample-config.toml"
        assert path.is_file(), f"{path} missing"
        return path

    def test_sample_config_is_valid(self) -> None:
        load_config(self.sample_config(), self.sections(), environ={})

    def test_sample_config_defaults_match_schema(self) -> None:
        """Commented ``# key = value`` lines in the adapter's tables must show the real default."""
        section = build_schema(self.sections())["properties"]["adapters"]["properties"][self.adapter.name]
        prefix = f"adapters.{self.adapter.name}"
        properties: dict[str, Any] | None = None
        checked = 0
        for line in self.sample_config().read_text(encoding="utf-8").splitlines():
            header = re.match(r"^\s*\[([^\]]+)\]", line)
            if header:
                properties = self._table_properties(section, header.group(1), prefix)
                continue
            match = _COMMENTED_KEY.match(line)
            if properties is None or not match or match.group(1) not in properties:
                continue
            key, text = match.groups()
            expected = properties[key].get("default")
            if expected is None:
                continue  # an example value for an optional key, not a default
            value = tomllib.loads(f"v = {text}")["v"]
            assert value == expected, f"sample-config.toml shows {key} = {value!r}, schema default is {expected!r}"
            checked += 1
        assert checked, "sample-config.toml shows no commented defaults"

    @staticmethod
    def _table_properties(section: dict[str, Any], table: str, prefix: str) -> dict[str, Any] | None:
        """Schema properties of a TOML table inside the adapter's section (None for other tables)."""
        if table != prefix and not table.startswith(prefix + "."):
            return None
        node = section
        for part in table[len(prefix) :].split(".")[1:]:
            node = node.get("properties", {}).get(part, {})
        properties: dict[str, Any] = node.get("properties", {})
        return properties

    def test_broken_config_is_rejected_naming_the_keys(self, tmp_path: Path) -> None:
        broken = tmp_path / "broken.toml"
        broken.write_text(f"[adapters.{self.adapter.name}]\ninterval = -5\nno_such_key = 1\nenabled = 'yes'\n")
        with pytest.raises(ConfigError) as error:
            load_config(broken, self.sections(), environ={})
        text = str(error.value)
        for key in ("interval", "no_such_key", "enabled"):
            assert key in text, f"the error does not name {key}: {text}"

    def test_readme_includes_sample_config(self) -> None:
        readme = self.folder / "README.md"
        assert readme.is_file(), f"{readme} missing"
        sample = self.sample_config().read_text(encoding="utf-8").strip()
        assert sample in readme.read_text(encoding="utf-8"), "README.md must include sample-config.toml verbatim"

    # -- recorded cases ------------------------------------------------------------------------
    def test_cases_produce_the_expected_output(self) -> None:
        for case in self.cases():
            output = run_case(case)
            expected = read_ndjson(case.folder / "expected.ndjson")
            assert output.entities == expected, f"case {case.name}: entities differ from expected.ndjson"
            assert output.rejected == read_ndjson(case.folder / "rejected.ndjson"), (
                f"case {case.name}: rejections differ from rejected.ndjson"
            )

    def test_case_entities_conform_and_follow_the_id_scheme(self) -> None:
        for case in self.cases():
            for entity in read_ndjson(case.folder / "expected.ndjson"):
                assert entity_problems(entity) == [], f"case {case.name}: {entity['id']}"
                assert entity["type"] in self.adapter.entity_types()
                prefix = f"urn:ngsi-ld:{entity['type']}:{case.tenant}:"
                assert entity["id"].startswith(prefix), f"case {case.name}: {entity['id']} lacks {prefix}"

    def test_rejections_carry_reasons(self) -> None:
        for case in self.cases():
            for rejection in run_case(case).rejected:
                assert rejection["reason"].strip(), f"case {case.name}: rejection without reason"
                assert rejection["where"].startswith("payload: record"), rejection["where"]

    def test_output_is_deterministic_and_offline(self) -> None:
        for case in self.cases():
            with no_network():
                first, second = run_case(case), run_case(case)
            assert first == second, f"case {case.name}: two runs differ"

    def test_output_does_not_depend_on_chunking(self) -> None:
        """A poll is normalised and written chunk by chunk: no output may depend on where a chunk ends."""
        for case in self.cases():
            assert run_case(case, chunk_records=1) == run_case(case), f"case {case.name}: differs record by record"

    def test_recorded_sample_normalises_cleanly(self) -> None:
        """What ``run --offline`` replays yields valid entities (rejections are allowed: samples show oddities)."""
        for source in self.adapter.sources:
            settings = self.adapter.offline_settings(adapter_settings(self.adapter, {"source": source.name}))
            resources = self.adapter.open_resources(settings, base_dir=self.folder, persistent=False)
            context = NormalizeContext(tenant=self.adapter.default_tenant, settings=settings, resources=resources)
            try:
                with no_network():
                    result = normalize_payload(source, self.adapter.sample_payload(source), context)
            finally:
                if resources is not None:
                    resources.close()
            assert result.entities, f"{source.name}: the recorded sample yields no entity"
            ids = [e["id"] for e in result.entities]
            assert len(ids) == len(set(ids)) or self.adapter.mode == "push", f"{source.name}: duplicate ids"
