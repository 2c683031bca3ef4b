#!/bin/sh
# The image's install steps, as one script so CI runs exactly what the Dockerfile runs
# (tests/test_deploy.py builds a venv with it and runs the image's HEALTHCHECK command against it).
# usage: deploy/install.sh <source dir> <venv dir>
set -eu
src=${1:?source dir}
venv=${2:?venv dir}
python3 -m venv "$venv"
"$venv/bin/pip" install --no-cache-dir --disable-pip-version-check -q --upgrade pip
"$venv/bin/pip" install --no-cache-dir --disable-pip-version-check -q "$src"
"$venv/bin/gateway" --help > /dev/null
