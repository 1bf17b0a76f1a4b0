# The HTTP prediction app (serving/app.py): the web page and POST /v1/predict, calling TF Serving
# by gRPC. Build from the repository root and point it at TF Serving:
#   docker build -f serving/Dockerfile.app -t text-recognizer-app .
#   docker run -p 8000:8000 text-recognizer-app --serving-grpc tf-serving:8500 --model lines
# Arguments after the image name replace the defaults in CMD (keep --host 0.0.0.0).
ARG PYTHON_IMAGE=python:3.10.13-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.9.30 AS uv

# Builder: the locked stack needs a C++ compiler (pyfarmhash has no Linux wheel).
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never
RUN uv venv --python /usr/local/bin/python3.10 /opt/venv
COPY requirements.lock /src/requirements.lock
RUN uv pip sync --python /opt/venv/bin/python /src/requirements.lock
# The packages serving.app imports (serving and common; TensorFlow itself comes with TF Serving's
# gRPC protos), installed with serving/static/ as package data.
COPY pyproject.toml /src/
COPY common /src/common
COPY serving /src/serving
RUN uv pip install --python /opt/venv/bin/python --no-deps --no-build-isolation /src

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONWARNINGS=ignore \
    TF_CPP_MIN_LOG_LEVEL=2
RUN useradd --create-home --uid 1000 app
USER app
WORKDIR /home/app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["python", "-m", "serving.app"]
CMD ["--host", "0.0.0.0", "--port", "8000", "--serving-grpc", "tf-serving:8500", "--model", "lines"]
