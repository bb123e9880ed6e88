"""The severity scale shared by the detector, alert rules, plots and notifications, lowest first."""

SEVERITIES = ("none", "info", "warning", "critical")
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
