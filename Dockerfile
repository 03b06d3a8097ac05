FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-cache-dir -e .
COPY campaigns ./campaigns
COPY templates ./templates
CMD ["lifecycle", "api", "--host", "0.0.0.0"]
