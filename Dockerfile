# Production image: gunicorn for web, the same image runs the Celery worker and beat (see compose.yaml).
# PYTHON_IMAGE: where no registry is reachable, deploy/image-smoke.sh passes a locally built stand-in.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# Certificate authorities the build machine must trust to reach PyPI (a TLS-inspecting proxy): deploy/image-smoke.sh
# copies them into deploy/extra-ca/ for the build (git- and docker-ignored otherwise; empty in a normal build).
COPY deploy/extra-ca/ /usr/local/share/ca-certificates/extra/
COPY requirements.txt .
RUN if ls /usr/local/share/ca-certificates/extra/*.crt >/dev/null 2>&1; then update-ca-certificates >/dev/null; fi \
 && PIP_CERT=/etc/ssl/certs/ca-certificates.crt pip install -r requirements.txt \
 && if ls /usr/local/share/ca-certificates/extra/*.crt >/dev/null 2>&1; then \
      rm -f /usr/local/share/ca-certificates/extra/*.crt && update-ca-certificates --fresh >/dev/null; fi
# ^ The build machine's CAs were for pip alone: the running image must not trust a TLS-inspecting proxy.
COPY manage.py ./
COPY common ./common
COPY gateway ./gateway
COPY payments ./payments
COPY onchain ./onchain
COPY staff ./staff
COPY templates ./templates
COPY static ./static
COPY locale ./locale
COPY deploy/healthcheck.py ./deploy/
# collectstatic needs a key to import settings; the real one comes from the environment at run time.
RUN DJANGO_SECRET_KEY=build-only python manage.py collectstatic --no-input -v 0
# Never root at run time; the code stays root-owned (read-only to the app), it writes nothing under /app.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin tulpar
USER 10001:10001
EXPOSE 8000
# Liveness of this container's gunicorn: GET /healthz as the proxy sends it (an allowed Host, X-Forwarded-Proto).
# The worker and beat, which run this image too, replace or disable it in compose.yaml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["python", "/app/deploy/healthcheck.py"]
# No control socket (gunicornc is not used, and the non-root user has no home to put it in).
CMD ["gunicorn", "gateway.wsgi:application", "-c", "python:gateway.gunicorn", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "30", "--no-control-socket"]
