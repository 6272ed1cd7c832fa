# One image for every ServicePulse/Airflow service. It installs exactly uv.lock,
# so the versions in the containers are the versions the tests ran against.
FROM python:3.11-slim-bookworm

ARG UV_VERSION=0.13.8
ENV PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/servicepulse/.venv \
    PATH=/opt/servicepulse/.venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow

# CJK font for the zh-CN reports, HarfBuzz subsetter for fast embedding.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-wqy-zenhei libharfbuzz-subset0 \
      libpango-1.0-0 libpangoft2-1.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir uv==${UV_VERSION} \
 && useradd --create-home --uid 50000 servicepulse \
 && mkdir -p /opt/airflow /opt/servicepulse && chown servicepulse /opt/airflow /opt/servicepulse

WORKDIR /opt/servicepulse
USER servicepulse
COPY --chown=servicepulse pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY --chown=servicepulse src ./src
COPY --chown=servicepulse dags ./dags
COPY --chown=servicepulse dbt_project ./dbt_project
COPY --chown=servicepulse expectations ./expectations
COPY --chown=servicepulse report_templates ./report_templates
COPY --chown=servicepulse config ./config
RUN uv sync --locked --no-dev \
 && .venv/bin/dbt deps --project-dir dbt_project --profiles-dir dbt_project
