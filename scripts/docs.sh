#!/usr/bin/env bash
# The documentation site (docs/, mkdocs.yml), built strict: any warning (a broken link or anchor, a
# reference mkdocstrings cannot resolve, a docstring it cannot parse) fails the build.
# Installs nothing: scripts/setup-env.sh installs the "docs" extra.
#   bash scripts/docs.sh          build into a temporary folder (DOCS_SITE_DIR=<dir> keeps it there)
#   bash scripts/docs.sh serve    preview on http://127.0.0.1:8000
set -euo pipefail
cd "$(dirname "$0")/.."
MKDOCS=.venv/bin/mkdocs
export NO_MKDOCS_2_WARNING=1  # Material's banner about its successor: news, not a warning about these docs
if [ ! -x "$MKDOCS" ]; then
  echo "docs: $MKDOCS not found: run bash scripts/setup-env.sh first" >&2
  exit 1
fi
if [ "${1:-build}" = serve ]; then
  exec "$MKDOCS" serve --strict --dev-addr 127.0.0.1:8000
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dh-docs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
site=${DOCS_SITE_DIR:-$tmp/site}
start=$(date +%s)
status=0
"$MKDOCS" build --strict --clean --site-dir "$site" >"$tmp/build.log" 2>&1 || status=$?
cat "$tmp/build.log"
# mkdocs --strict fails on its own warnings; also fail on any warning or error line it let through.
if [ "$status" -eq 0 ] && grep -qE '^(WARNING|ERROR) +-' "$tmp/build.log"; then
  echo "docs: the build logged warnings (above)" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "docs: the strict build failed" >&2
  exit "$status"
fi
echo "docs: built without warnings in $(($(date +%s) - start)) s${DOCS_SITE_DIR:+ into $DOCS_SITE_DIR}"
