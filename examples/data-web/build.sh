#!/bin/sh
# Build this example's image on this machine, from local bases (see examples/build.py). Where images can
# be pulled, `docker build` on the Dockerfile in this folder makes the same image.
cd "$(dirname "$0")/../.." && exec "${PYTHON:-.venv/bin/python}" examples/build.py data-web "$@"
