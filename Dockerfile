# Clinician AI dashboard, CPU image.
#   docker build -t cxr-dashboard . && docker run -p 8501:8501 -v /path/to/shared/data:/data:ro cxr-dashboard
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CXR_DATA_DIR=/data \
    CXR_STATE_DIR=/home/app/state \
    CXR_DEVICE=cpu \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

# tini as PID 1: passes `docker stop`'s SIGTERM on to the app (so an evaluation marks its run
# folder incomplete and joins its DataLoader workers) and reaps any orphaned process, which a
# Python PID 1 would leave as a zombie. (`docker run --init` does the same for other images.)
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 app
WORKDIR /home/app/dashboard

# The CPU build of torch first (the PyPI default is a multi-GB CUDA build), then the rest.
COPY requirements.txt .
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.14.1 torchvision==0.29.1 \
 && grep -v -E '^(torch|torchvision|pytest|playwright|oidc-provider-mock)==' requirements.txt > /tmp/req.txt \
 && pip install -r /tmp/req.txt \
 && rm /tmp/req.txt

COPY --chown=app:app . .
RUN pip install --no-deps . && mkdir -p /home/app/state && chown app:app /home/app/state

USER 10001
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() != b'ok')"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["streamlit", "run", "app.py", "--server.headless", "true", "--server.port", "8501", "--server.address", "0.0.0.0"]
