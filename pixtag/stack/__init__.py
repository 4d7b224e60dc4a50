"""Process control for the local stacks: Airflow standalone with MLflow and the local instance,
and the distributed engines."""
