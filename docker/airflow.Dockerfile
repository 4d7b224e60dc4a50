# The pixtag image: every Airflow service of docker-compose.yaml (api-server, scheduler,
# dag-processor, triggerer, the Celery workers, the one-shot init) runs it.
#
#   docker-compose build            (or: docker build -f docker/airflow.Dockerfile .)
#
# Built from the repository root. It extends the official Airflow image (Celery, Redis and
# Postgres support, asyncpg, psycopg2) with pixtag's pinned requirements, pixtag itself
# (editable, so that expectations/ and airflow/ stay beside the package), the DAG, the plugin
# and NLTK's WordNet + stopwords. torch from PyPI is a CUDA build: the same image serves the
# `gpu` queue on a host with the NVIDIA Container Toolkit.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION

# WordNet 3.0 from Debian (scripts/setup_nltk.sh copies it into NLTK's layout below).
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o airflow -g 0 -m 0755 /opt/pixtag /opt/nltk_data \
    && install -d -o airflow -g 0 -m 0775 /home/airflow/.cache/huggingface
USER airflow

# Pinned dependencies, resolved together in requirements.lock (used as constraints). The test
# and dev tools at the end of requirements.txt stay out of the image. Airflow itself is pinned
# so that pip cannot move it away from the base image's version.
COPY --chown=airflow:0 requirements.txt requirements.lock /opt/pixtag/
RUN sed '/^# test and dev tools/,$d' /opt/pixtag/requirements.txt > /tmp/requirements.txt \
    && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        -r /tmp/requirements.txt -c /opt/pixtag/requirements.lock \
    && rm /tmp/requirements.txt \
    && (pip check || echo "pixtag image: pip check reports the conflicts above (base image extras)") >&2

# pixtag, editable: pixtag.data.validate finds expectations/ beside the package.
COPY --chown=airflow:0 pyproject.toml /opt/pixtag/
COPY --chown=airflow:0 pixtag /opt/pixtag/pixtag
# pyproject lists it (the pixtag-demo command); the image never runs it
COPY --chown=airflow:0 pixtag_demo /opt/pixtag/pixtag_demo
RUN pip install --no-cache-dir --no-deps -e /opt/pixtag

# NLTK data (WordNet from the Debian packages above + the stopwords shipped in pixtag).
COPY --chown=airflow:0 scripts /opt/pixtag/scripts
ENV NLTK_DATA=/opt/nltk_data
RUN PYTHON="$(command -v python)" sh /opt/pixtag/scripts/setup_nltk.sh /opt/nltk_data

# The DAG, the plugin, the pools/connection declarations, the expectation suites, the
# deployment scripts.
COPY --chown=airflow:0 dags /opt/pixtag/dags
COPY --chown=airflow:0 plugins /opt/pixtag/plugins
COPY --chown=airflow:0 airflow /opt/pixtag/airflow
COPY --chown=airflow:0 expectations /opt/pixtag/expectations
COPY --chown=airflow:0 docker /opt/pixtag/docker

ENV PIXTAG_HOME=/opt/pixtag \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/pixtag/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/pixtag/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    HF_HOME=/home/airflow/.cache/huggingface

# Fail the build, not the first run: imports, NLTK data, expectation suites, the DAG parses.
RUN python /opt/pixtag/docker/check_image.py
