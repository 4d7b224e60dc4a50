# The MLflow tracking server of docker-compose.yaml: the official image at the version pixtag
# pins (requirements.txt), plus the two drivers it needs there and does not ship:
# psycopg2 for the Postgres backend store and boto3 for the artifacts in MinIO (S3).
#
#   docker build -f docker/mlflow.Dockerfile docker/
ARG MLFLOW_VERSION=3.17.2
FROM ghcr.io/mlflow/mlflow:v${MLFLOW_VERSION}
ARG MLFLOW_VERSION
ARG PSYCOPG2_VERSION=2.9.13
ARG BOTO3_VERSION=1.44.8
RUN pip install --no-cache-dir "mlflow==${MLFLOW_VERSION}" "psycopg2-binary==${PSYCOPG2_VERSION}" \
        "boto3==${BOTO3_VERSION}" \
    && python -c "import mlflow, psycopg2, boto3; print('mlflow', mlflow.__version__)"
