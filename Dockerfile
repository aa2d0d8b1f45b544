FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 SERVICEDESK_VAR_DIR=/var/lib/servicedesk
WORKDIR /app
COPY pyproject.toml README.md ./
COPY servicedesk ./servicedesk
COPY incidents ./incidents
COPY requests_app ./requests_app
COPY problems ./problems
COPY sla ./sla
COPY monitoring ./monitoring
RUN pip install .
COPY . .
RUN mkdir -p /var/lib/servicedesk && SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input -v0 \
    && useradd --system --home /app servicedesk && chown -R servicedesk /var/lib/servicedesk
USER servicedesk
EXPOSE 8000
CMD ["gunicorn", "servicedesk.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]
