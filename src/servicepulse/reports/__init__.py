"""Report building (pure functions) and rendering (Jinja2 + WeasyPrint)."""
