"""What each source must deliver: columns, types, which are required, allowed values.

The loader checks every delivery against its contract before a single row reaches
the warehouse, so that a broken export fails loudly at the door, naming the file,
row and column, instead of surfacing weeks later as a wrong KPI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["text", "integer", "number", "timestamp"]

SQL_TYPES: dict[ColumnType, str] = {
    "text": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE PRECISION",
    "timestamp": "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = "text"
    required: bool = False          # the column must exist in the delivery
    not_null: bool = False          # and every row must have a value
    allowed: tuple[str, ...] = ()   # vocabulary, for enum columns


@dataclass(frozen=True)
class SourceContract:
    name: str                       # also the raw table's name
    system: str                     # the source system, for messages and lineage
    key: str
    columns: tuple[Column, ...]
    version_column: str = "updated_at"
    extras: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _ts(name: str, **kw) -> Column:
    return Column(name, "timestamp", required=True, **kw)


def _id(name: str, **kw) -> Column:
    return Column(name, "text", required=True, not_null=True, **kw)


def _enum(name: str, *allowed: str, not_null: bool = True) -> Column:
    return Column(name, "text", required=True, not_null=not_null, allowed=allowed)


CONTRACTS: dict[str, SourceContract] = {c.name: c for c in (
    SourceContract("crm_customers", "crm", "customer_id", (
        _id("customer_id"),
        Column("name", required=True),
        Column("phone"),
        _enum("customer_type", "enterprise", "individual", "government"),
        _enum("service_level", "basic", "standard", "advanced"),
        Column("region", required=True),
        _ts("created_at", not_null=True),
        _ts("updated_at", not_null=True),
    )),
    SourceContract("crm_tickets", "crm", "ticket_id", (
        _id("ticket_id"),
        _id("customer_id"),
        _enum("channel", "phone", "email", "online", "onsite"),
        _enum("service_type", "tech_support", "installation", "after_sales", "consultation",
              "delivery"),
        _id("department"),
        Column("agent_id", required=True),
        _enum("priority", "urgent", "general"),
        _ts("created_at", not_null=True),
        _ts("first_response_at"),
        _ts("resolved_at"),
        _ts("closed_at"),
        Column("contacts_to_resolve", "integer", required=True),
        Column("handle_seconds", "integer", required=True),
        _enum("status", "open", "resolved", "closed"),
        _ts("promised_at"),
        _ts("delivered_at"),
        _ts("updated_at", not_null=True),
    )),
    SourceContract("complaints", "complaints", "complaint_id", (
        _id("complaint_id"),
        Column("ticket_id", required=True),
        _id("customer_id"),
        _enum("category", "product_quality", "service_attitude", "delivery_delay", "billing",
              "technical_fault", "other"),
        _enum("severity", "urgent", "general"),
        _ts("received_at", not_null=True),
        _ts("classified_at"),
        _ts("dispatched_at"),
        _ts("solution_at"),
        _ts("resolved_at"),
        _ts("callback_at"),
        Column("escalated_to", required=True),
        _id("department"),
        _enum("status", "open", "resolved", "closed"),
        _ts("updated_at", not_null=True),
    )),
    SourceContract("survey_responses", "surveys", "response_id", (
        _id("response_id"),
        Column("ticket_id", required=True),
        Column("complaint_id", required=True),
        _id("customer_id"),
        _ts("sent_at", not_null=True),
        _ts("answered_at"),
        Column("satisfaction", "integer", required=True),
        Column("nps_score", "integer", required=True),
        Column("attitude_score", "integer"),
        Column("speed_score", "integer"),
        Column("professionalism_score", "integer"),
        Column("comment"),
        _ts("updated_at", not_null=True),
    )),
    SourceContract("audits", "audits", "audit_id", (
        _id("audit_id"),
        _enum("kind", "process_audit", "mystery_shopper"),
        _id("department"),
        Column("agent_id", required=True),
        _ts("audited_at", not_null=True),
        Column("score_1", "number", required=True),
        Column("score_2", "number", required=True),
        Column("score_3", "number", required=True),
        _ts("updated_at", not_null=True),
    )),
)}
