"""ServicePulse: trusted service-quality KPIs and reports."""
