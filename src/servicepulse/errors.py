"""Errors that are the user's to fix.

USER_ERRORS: the CLI prints these as one clear message instead of a traceback.
PERMANENT_ERRORS: a retry cannot fix these (bad delivery, failed critical check,
no font, unknown period, an API that refuses the token, a recipient refused for good, a send in doubt), so Airflow
tasks fail at once on them. A dbt failure is not in it: a lock held by another
DuckDB process is worth a retry; nor is DeliveryIncomplete (temporary SMTP trouble).
"""

from servicepulse.airflow_runner import PipelineRunError
from servicepulse.delivery.deliver import DeliveryFailed
from servicepulse.delivery.ledger import SettleError
from servicepulse.delivery.transport import PermanentDeliveryError
from servicepulse.kpis import PeriodError
from servicepulse.load import SourceError
from servicepulse.pipeline import IntervalError, ReportNotReady
from servicepulse.quality.runner import QualityGateError
from servicepulse.reports.render import RenderError
from servicepulse.settings import ConfigError
from servicepulse.sources.contracts import ContractError
from servicepulse.sources.http import ApiError, ApiRejected
from servicepulse.sources.sql import SqlSourceError
from servicepulse.transform import TransformError

PERMANENT_ERRORS = (ConfigError, PeriodError, SourceError, IntervalError, QualityGateError,
                    RenderError, DeliveryFailed, PermanentDeliveryError, SettleError,
                    ReportNotReady, ContractError, ApiRejected, SqlSourceError)
USER_ERRORS = PERMANENT_ERRORS + (PipelineRunError, TransformError, FileNotFoundError,
                                  ApiError)
