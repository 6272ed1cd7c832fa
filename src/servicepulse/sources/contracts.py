"""What each source must deliver: columns, types, which are required, allowed values.

The contracts are configuration (``config/contracts.yaml``, or the file named by
``sources.contracts_file``). The loader checks every delivery against its contract
before a row reaches the warehouse: a delivery without a required column fails that
source at the door, naming the file and column; a row that breaks a type or
vocabulary rule is quarantined with the reason, and the good rows load.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from servicepulse.errors import UserError
from servicepulse.paths import CONTRACTS_FILE

ColumnType = Literal["text", "integer", "number", "timestamp", "boolean"]

SQL_TYPES: dict[str, str] = {
    "text": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE PRECISION",
    "timestamp": "TIMESTAMPTZ",
    "boolean": "BOOLEAN",
}


class ContractError(UserError, ValueError):
    pass


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: ColumnType = "text"
    required: bool = False          # the column must exist in the delivery
    # A source may lack it without saying so (a system's own outcome flag, used only
    # where the mapping names it); other columns a source lacks must be listed absent.
    optional: bool = False
    not_null: bool = False          # and every row must have a value
    allowed: tuple[str, ...] = ()   # vocabulary, for enum columns
    # Prose a person typed (a comment, a name): line breaks and tabs are kept. Every
    # other text column is a key or a code, where they are quarantined; no column may
    # carry NUL or another control character.
    free_text: bool = False
    # A moment planned ahead (a promised delivery): it may lie up to a year after the
    # moment of loading; every other timestamp may not lie after it (plausible window).
    planned: bool = False


class SourceContract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str                       # also the raw table's name
    system: str                     # the source system, for messages and lineage
    key: str
    columns: tuple[Column, ...]
    version_column: str = "updated_at"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @model_validator(mode="after")
    def _key_and_version_are_columns(self) -> SourceContract:
        by_name = {c.name: c for c in self.columns}
        if self.key not in by_name:
            raise ValueError(f"key {self.key!r} is not one of its columns")
        version = by_name.get(self.version_column)
        if version is None or version.type != "timestamp" or not version.not_null:
            raise ValueError(f"version_column {self.version_column!r} must be a not_null "
                             "timestamp column")
        return self


@lru_cache(maxsize=8)
def load_contracts(path: Path = CONTRACTS_FILE) -> dict[str, SourceContract]:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"contracts file {path}: {exc}") from None
    contracts = {}
    for name, body in raw.items():
        try:
            contracts[name] = SourceContract.model_validate({"name": name, **(body or {})})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors())
            raise ContractError(f"contracts file {path}, source {name}: {problems}") from None
    return contracts
