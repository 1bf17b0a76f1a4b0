# The HTTP prediction app (serving/app.py): the web page and POST /v1/predict, calling TF Serving
# by gRPC. Build from the repository root and point it at TF Serving:
#   docker build -f serving/Dockerfile.app -t text-recognizer-app .
#   docker run -p 8000:8000 text-recognizer-app --serving-grpc tf-serving:8500 --model lines
# Arguments after the image name replace the defaults in CMD (keep --host 0.0.0.0).
FROM python:3.10-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONWARNINGS=ignore \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir uv==0.9.30 \
 && uv pip install --system --no-cache -r requirements.lock

# The packages serving.app imports (serving and common; TensorFlow itself comes with TF Serving's
# gRPC protos). Installed editable so that serving/static/ is served from here.
COPY pyproject.toml .
COPY common common
COPY serving serving
RUN uv pip install --system --no-cache --no-deps -e . \
 && useradd --create-home app

USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["python", "-m", "serving.app"]
CMD ["--host", "0.0.0.0", "--port", "8000", "--serving-grpc", "tf-serving:8500", "--model", "lines"]
