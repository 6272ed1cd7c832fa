"""The corrective-actions words (messages.yaml, per locale) and templates (the app's
pages and the owners' notices), read once per process."""

from __future__ import annotations

import importlib.resources
from functools import lru_cache

import jinja2
import yaml


@lru_cache(maxsize=1)
def messages() -> dict[str, dict[str, str]]:
    text = importlib.resources.files("servicepulse.actions").joinpath(
        "messages.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@lru_cache(maxsize=1)
def templates() -> jinja2.Environment:
    folder = importlib.resources.files("servicepulse.actions").joinpath("templates")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        # Pages and HTML mail escape everything; the plain-text mail escapes nothing.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
