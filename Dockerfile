# The payhooks image: receiver, dispatcher, worker and migrations are the same image
# with a different command (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The project and its dependencies (no tests, no benchmarks: see .dockerignore).
COPY pyproject.toml README.md ./
COPY receiver ./receiver
COPY workers ./workers
COPY cli ./cli
COPY console ./console
COPY models ./models
COPY providers ./providers
COPY sandbox ./sandbox
COPY migrations ./migrations
RUN pip install . \
    && groupadd --system payhooks \
    && useradd --system --gid payhooks --home-dir /home/payhooks --create-home payhooks

# Runs as an unprivileged user; the working directory holds nothing it may write.
USER payhooks
WORKDIR /home/payhooks
EXPOSE 8000
CMD ["payhooks", "serve"]
