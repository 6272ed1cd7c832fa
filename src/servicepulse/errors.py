"""Errors that are the user's to fix: the CLI prints them as one clear message."""

from servicepulse.airflow_runner import PipelineRunError
from servicepulse.kpis import PeriodError
from servicepulse.load import SourceError
from servicepulse.pipeline import IntervalError
from servicepulse.quality.runner import QualityGateError
from servicepulse.reports.render import RenderError
from servicepulse.transform import TransformError

USER_ERRORS = (PipelineRunError, PeriodError, SourceError, IntervalError, QualityGateError,
               RenderError, TransformError, FileNotFoundError)
