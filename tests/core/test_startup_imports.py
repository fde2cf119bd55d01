"""What a start imports: optional heavy libraries load only where their feature runs (issue 9).

Each check runs a fresh interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

OPTIONAL = ("shapely", "numpy", "pyproj", "pyld", "matplotlib", "apscheduler", "paho", "asyncio")
"""Geometry (buildings footprints, LoRaWAN parking zones), JSON-LD checks, plots, the scheduler, MQTT."""


def modules_after(code: str, cwd: Path) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    return {name.split(".")[0] for name in json.loads(done.stdout.strip().splitlines()[-1])}


def test_list_loads_no_optional_library_and_no_http_client(tmp_path: Path) -> None:
    code = "from adapters.cli import main\nfrom adapters.core.adapter import discover_adapters\ndiscover_adapters()"
    loaded = modules_after(code, tmp_path)
    assert loaded.isdisjoint({*OPTIONAL, "requests"}), sorted(loaded & {*OPTIONAL, "requests"})


@pytest.mark.parametrize("command", [["run", "--once", "--offline"], ["normalize", "--help"]])
def test_a_parking_run_loads_no_optional_library(tmp_path: Path, command: list[str]) -> None:
    code = f"from adapters.cli import main\ntry:\n    main({command!r})\nexcept SystemExit:\n    pass"
    loaded = modules_after(code, tmp_path)
    assert loaded.isdisjoint(OPTIONAL), sorted(loaded & set(OPTIONAL))


def test_every_name_of_the_core_api_loads() -> None:
    """``adapters.core`` resolves its names on first use; each one listed must be there."""
    import adapters.core as core

    assert sorted(core.__all__) == sorted(name for names in core._EXPORTS.values() for name in names)
    for name in core.__all__:
        assert getattr(core, name) is getattr(sys.modules[core._MODULE_OF[name]], name)
    with pytest.raises(AttributeError):
        core.no_such_name  # noqa: B018
