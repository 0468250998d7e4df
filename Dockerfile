# carbonpipe image: the feeder, the Spark stream job and the dashboard (one image, three
# services in docker-compose.yml). Kafka and MongoDB come from their own public images.
#
# Stage 1 resolves Spark's Kafka connector with the same pom the local setup uses, so the
# stream job never downloads jars at run time (no spark.jars.packages).
FROM maven:3.9-eclipse-temurin-17 AS jars
WORKDIR /src
COPY infra/spark/pom.xml infra/spark/pom.xml
RUN mvn -B -q -f infra/spark/pom.xml dependency:copy-dependencies -DoutputDirectory=/jars/spark

# bookworm, not the default trixie: trixie no longer ships openjdk-17.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CARBONPIPE_HOME=/data \
    CARBONPIPE_SPARK_JARS_DIR=/opt/carbonpipe/jars/spark \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
# Editable install: config.REPO_ROOT (schemas/, infra/) must stay /app, not site-packages.
RUN pip install -e '.[spark,dashboard]'
COPY --from=jars /jars/spark /opt/carbonpipe/jars/spark
RUN useradd --create-home --uid 1000 carbonpipe && mkdir -p /data && chown carbonpipe /data
USER carbonpipe
VOLUME /data
EXPOSE 8501
ENTRYPOINT ["carbonpipe"]
CMD ["status"]
