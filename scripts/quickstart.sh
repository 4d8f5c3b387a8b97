#!/usr/bin/env bash
# The main job on the bundled example: validate, plan and apply state/, write the TAL, then have the
# relying-party validators that are installed (rpki-client, FORT) fetch the result over rsync.
#
# Usage: scripts/quickstart.sh
#
# What it needs it makes first: the system packages (scripts/system-packages.sh: installed when run as
# root, listed otherwise) and rpkictl in the virtual environment .venv of the checkout
# (scripts/venv.sh), never in the system's Python. An activated virtual environment that has rpkictl
# is used as it is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/system-packages.sh quickstart
if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "${VIRTUAL_ENV}/bin/rpkictl" ]; then
  venv="${VIRTUAL_ENV}"
  echo "== using rpkictl of the active virtual environment ${venv}"
else
  scripts/venv.sh
  venv="${PWD}/.venv"
fi
PATH="${venv}/bin:${PATH}"

echo "== rpkictl validate state"
rpkictl validate state
echo "== rpkictl plan state"
rpkictl plan state || [ $? -eq 2 ] # exit 2 means "there are changes"
echo "== rpkictl apply state --yes"
rpkictl apply state --yes
echo "== rpkictl tal state --out published/ta.tal"
rpkictl tal state --out published/ta.tal
cat published/ta.tal
echo "== validating published/rsync with the installed relying parties"
"${venv}/bin/python" scripts/validate_published.py state published/ta.tal
