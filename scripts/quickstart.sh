#!/usr/bin/env bash
# The main job on the bundled example: validate, plan and apply state/, write the TAL, then have the
# relying-party validators that are installed (rpki-client, FORT) fetch the result over rsync.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import reconciler" 2>/dev/null || ! command -v rpkictl >/dev/null; then
  echo "== installing rpki-reconciler"
  python3 -m pip install -q -e .
fi

echo "== rpkictl validate state"
rpkictl validate state
echo "== rpkictl plan state"
rpkictl plan state || [ $? -eq 2 ]   # exit 2 means "there are changes"
echo "== rpkictl apply state --yes"
rpkictl apply state --yes
echo "== rpkictl tal state --out published/ta.tal"
rpkictl tal state --out published/ta.tal
cat published/ta.tal
echo "== validating published/rsync with the installed relying parties"
python3 scripts/validate_published.py state published/ta.tal
