"""The installed package must carry what a non-editable install needs: packages, samples, data models."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _listed_packages() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}


def test_every_package_folder_is_listed_in_setup_cfg() -> None:
    folders = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "adapters").rglob("__init__.py")
        if "cases" not in path.parts
    }
    missing = folders - _listed_packages()
    assert not missing, f"add to [options] packages in setup.cfg: {sorted(missing)}"


def test_wheel_carries_samples_data_models_and_entry_points(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("dos_adapters-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in (ROOT / "datamodels").glob("*/schema.json"):
        assert f"adapters/datamodels/{model.parent.name}/schema.json" in names
    for sample in (ROOT / "adapters").glob("*/samples/*"):
        assert str(sample.relative_to(ROOT)) in names
    # validate --jsonld works from an installed package: the merged @context and the core context ship too.
    for context in ("context/dos-adapters.jsonld", "context/sources.json"):
        assert f"adapters/broker_config/{context}" in names
    assert any(n.startswith("adapters/broker_config/orion-ld/ldcontexts/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "dos-adapters = adapters.cli:main" in text
    for adapter in ("parking", "lorawan"):
        assert f"{adapter} = adapters.{adapter}:" in text
