# Production image: gunicorn for web, the same image runs the Celery worker and beat (see compose.yaml).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY manage.py ./
COPY common ./common
COPY gateway ./gateway
COPY payments ./payments
COPY onchain ./onchain
COPY staff ./staff
COPY templates ./templates
COPY static ./static
COPY locale ./locale
# collectstatic needs a key to import settings; the real one comes from the environment at run time.
RUN DJANGO_SECRET_KEY=build-only python manage.py collectstatic --no-input -v 0
RUN useradd --system --uid 10001 --home /app tulpar && chown -R tulpar /app
USER tulpar
EXPOSE 8000
CMD ["gunicorn", "gateway.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "30", "--access-logfile", "-"]
