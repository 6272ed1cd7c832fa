"""warehouse.dbt_parse_cache: a new output folder starts from dbt's kept parse of the
project instead of parsing it whole; a kept parse that does not fit costs a parse,
never a failed or wrong command."""

from __future__ import annotations

from pathlib import Path

from servicepulse.transform import run_dbt
from tests.conftest import settings_for


def _parse(folder: Path, cache: Path, **overrides) -> str:
    settings = settings_for(folder, folder / "sources", **{"warehouse.dbt_parse_cache":
                                                           str(cache), **overrides})
    (folder / "sources").mkdir(parents=True, exist_ok=True)
    run_dbt(settings, "parse")
    return (settings.output_path / "dbt" / "logs" / "dbt.log").read_text(encoding="utf-8")


def test_a_new_output_folder_starts_from_the_kept_parse(tmp_path):
    cache = tmp_path / "parse-cache"
    first = _parse(tmp_path / "first", cache)
    assert "Unable to do partial parsing because saved manifest not found" in first
    assert len(list(cache.glob("*.msgpack"))) == 1

    second = _parse(tmp_path / "second", cache)
    assert "Nothing changed, skipping partial parsing" in second
    assert "Unable to do partial parsing" not in second

    # Other vars are another parse, kept beside the first.
    other = _parse(tmp_path / "other", cache, reporting_timezone="Europe/Berlin")
    assert "Unable to do partial parsing" in other
    assert len(list(cache.glob("*.msgpack"))) == 2


def test_a_damaged_kept_parse_costs_a_parse_not_the_command(tmp_path):
    cache = tmp_path / "parse-cache"
    _parse(tmp_path / "first", cache)
    (kept,) = cache.glob("*.msgpack")
    kept.write_bytes(b"not a parse")

    log = _parse(tmp_path / "second", cache)  # run_dbt raises if dbt fails
    assert "Nothing changed, skipping partial parsing" not in log
    manifest = tmp_path / "second" / "output" / "dbt" / "duckdb-target" / "manifest.json"
    assert "model.servicepulse.kpi_weekly" in manifest.read_text(encoding="utf-8")
    assert kept.read_bytes() != b"not a parse"  # replaced by the good parse
