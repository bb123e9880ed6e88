"""IntentVision: forecasting, anomaly detection and alerting for DevOps/SRE metrics on Dagster."""
