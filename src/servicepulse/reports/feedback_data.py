"""The customers' own words for a report's feedback section: survey comments, masked.

Comments are free text and may hold personal data, so no mart selects them
(fct_survey_responses leaves them out). A report quotes them only when its
configuration asks (``reports.survey_comments``, default 0: none); then this module
reads them from staging, masks every phone number, e-mail address, identity number and
the customer's CRM name in Python (reports.pii.mask_pii), and hands back only the
masked text. The feedback section's figures (response rate, dimension scores) are
KPIs and come from the KPI marts like every other figure.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from servicepulse.kpis import Period, plain_records
from servicepulse.reports.pii import mask_pii
from servicepulse.settings import Settings
from servicepulse.warehouse import Warehouse

# What a comment of only these is: nothing to quote (spaces, tabs, line breaks and the
# ideographic space of Chinese text).
_BLANK_CHARACTERS = " \t\r\n\u3000"
_SCORES = ("satisfaction", "attitude_score", "speed_score", "professionalism_score")


def survey_comments(settings: Settings, warehouse: Warehouse, period: Period,
                    department: str | None, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` comments of the surveys answered in ``period`` (local days of
    answered_at, the period the satisfaction KPIs count them in), for the organisation
    (``department`` None) or one department (the one the rated ticket or complaint
    belongs to, as the KPIs attribute it). The sample is deterministic: the most
    recently answered first, ties in response_id order, so a report re-rendered from
    the same data quotes the same comments.

    Each comment: ``answered_on`` (local date), ``department``, ``satisfaction`` and
    the three dimension scores (None where not rated) and ``comment``, masked with the
    customer's name as the CRM holds it now (stg_crm__customers). Nothing else about
    the customer leaves this function."""
    if limit <= 0:
        return []
    staging, marts = settings.warehouse.schema("staging"), settings.warehouse.schema("marts")
    first = datetime.combine(period.start, time.min)
    after_last = datetime.combine(period.end + timedelta(days=1), time.min)
    frame = warehouse.fetch_frame(
        f"select responses.answered_at_local, surveys.department, "
        f"responses.satisfaction, responses.attitude_score, responses.speed_score, "
        f"responses.professionalism_score, responses.comment_text, customers.customer_name "
        f'from "{staging}"."stg_surveys__survey_responses" as responses '
        f'inner join "{marts}"."fct_survey_responses" as surveys '
        f"on surveys.response_id = responses.response_id "
        f'left join "{staging}"."stg_crm__customers" as customers '
        f"on customers.customer_id = responses.customer_id "
        f"where responses.answered_at_local >= ? and responses.answered_at_local < ? "
        f"and trim(both ? from responses.comment_text) <> '' "
        f"and (? is null or surveys.department = ?) "
        f"order by responses.answered_at_local desc, responses.response_id "
        f"limit ?",
        [first, after_last, _BLANK_CHARACTERS, department, department, limit])
    return [{
        "answered_on": record["answered_at_local"].date(),
        "department": record["department"],
        # Whole numbers: a column with a null comes back as floats from pandas.
        **{score: None if record[score] is None else int(record[score]) for score in _SCORES},
        "comment": mask_pii(record["comment_text"].strip(_BLANK_CHARACTERS),
                            [record["customer_name"]] if record["customer_name"] else []),
    } for record in plain_records(frame)]
