# MAP-ephys data platform: one image for web (gunicorn), Celery workers and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
# (psycopg[binary], numpy, scipy, h5py and matplotlib ship manylinux wheels: no compiler needed.)
COPY requirements.txt ./
RUN pip install -r requirements.txt

RUN groupadd --system --gid 1000 mapsite \
    && useradd --system --uid 1000 --gid mapsite --home-dir /app --shell /usr/sbin/nologin mapsite

COPY --chown=root:root . .
# var/ holds what the processes write: uploaded media (a volume) and beat's schedule file.
RUN mkdir -p var/media var/static && chown -R mapsite:mapsite var

USER mapsite

# Static files are baked into the image (whitenoise serves them); collectstatic needs no database,
# so the embedded default settings are enough here.
RUN DJANGO_SETTINGS_MODULE=mapsite.settings python manage.py collectstatic --noinput --verbosity 0

EXPOSE 8000
CMD ["gunicorn", "mapsite.wsgi:application", "--bind", "0.0.0.0:8000"]
