# taupet-bids: a BIDS App for tau PET. CPU PyTorch by default; see docs/containers.md.
#
#   podman build -t taupet-bids:0.1.0 .                      (or docker build)
#   docker run --rm -v /data/bids:/data:ro -v /data/out:/out taupet-bids:0.1.0 /data /out participant
#
# Build arguments:
#   BASE_IMAGE       a Debian/Ubuntu image with Python 3.11 and venv (default python:3.11-slim-bookworm;
#                    for GPU work an nvidia/cuda runtime image with Python 3.11 works the same way)
#   TORCH_INDEX_URL  extra index for torch (default: PyTorch's CPU wheels). Set it empty to take
#                    torch from PyPI, whose Linux wheels carry the CUDA runtime (GPU builds).
#                    A torch wheel placed in containers/wheels/ is preferred over both.
#   WITH_FSL         1 adds FSL's flirt and mcflirt (from FSL's conda channel) under /opt/fsl
#   TAUPET_VERSION   the version label (kept equal to taupet_bids.__version__ by the tests)
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- build stage: a virtual environment with the pinned stack and the offline templates ----
FROM ${BASE_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Optional pip settings for sites behind a proxy or mirror (build arguments reach RUN as env vars).
ARG PIP_CERT
ARG PIP_INDEX_URL
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NIPYPE_NO_ET=1 \
    TEMPLATEFLOW_HOME=/opt/templateflow
WORKDIR /src
COPY requirements.txt /src/requirements.txt
COPY containers/wheels/ /src/wheels/
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --find-links /src/wheels \
        ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
        -r /src/requirements.txt \
    && rm -rf /opt/venv/lib/python3.11/site-packages/torch/include
COPY setup.cfg pyproject.toml README.md /src/
COPY taupet_bids /src/taupet_bids
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps /src \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/python -c "from taupet_bids import templates; templates.ensure_templateflow()" \
    && chmod -R a+rX /opt/templateflow

# ---- optional FSL (flirt, mcflirt) from FSL's conda channel ----
FROM ${BASE_IMAGE} AS fsl
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG WITH_FSL=0
ARG FSL_CHANNEL=https://fsl.fmrib.ox.ac.uk/fsldownloads/fslconda/public/
RUN mkdir -p /opt/fsl \
    && if [ "$WITH_FSL" = 1 ]; then \
        python3 -c "import io, tarfile, urllib.request; tarfile.open(fileobj=io.BytesIO(urllib.request.urlopen('https://micro.mamba.pm/api/micromamba/linux-64/latest').read())).extractall('/tmp/mamba')" \
        && /tmp/mamba/bin/micromamba create -y -p /opt/fsl -r /tmp/mamba-root \
            -c "$FSL_CHANNEL" -c conda-forge fsl-flirt fsl-mcflirt fsl-avwutils \
        && rm -rf /tmp/mamba /tmp/mamba-root /opt/fsl/pkgs; \
    fi

# ---- runtime stage ----
FROM ${BASE_IMAGE}
ARG TAUPET_VERSION=0.1.0
LABEL org.opencontainers.image.title="taupet-bids" \
      org.opencontainers.image.description="A BIDS App for tau PET: regional SUVR, MR-based or MR-less" \
      org.opencontainers.image.version="${TAUPET_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/taupet-bids/taupet-bids"
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/templateflow /opt/templateflow
COPY --from=fsl /opt/fsl /opt/fsl
RUN useradd --create-home --uid 1000 --user-group --shell /bin/bash taupet
ENV PATH=/opt/venv/bin:/opt/fsl/bin:$PATH \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    FSLDIR=/opt/fsl \
    FSLOUTPUTTYPE=NIFTI_GZ \
    NIPYPE_NO_ET=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    LANG=C.UTF-8
USER 1000:1000
WORKDIR /home/taupet
ENTRYPOINT ["taupet-bids"]
CMD ["--help"]
