"""Credentials from Airflow's connections, for every connector and transport.

A low-level lookup with no knowledge of the pipeline: sources, the mail transport and
the alert channels all read their secrets through it, and it imports nothing of the
project's (so nothing that uses it can end up importing itself back).
"""

from __future__ import annotations


def airflow_connection(connection_id: str):
    """The connection from Airflow's secrets (its database, AIRFLOW_CONN_* variables or a
    secrets backend); None when it is not defined or Airflow is not installed."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:
        return None
    try:
        return BaseHook.get_connection(connection_id)
    except Exception as exc:  # Airflow raises AirflowNotFoundException, among others
        if "isn't defined" in str(exc) or "not found" in str(exc).lower():
            return None
        raise
