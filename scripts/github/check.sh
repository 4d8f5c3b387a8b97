#!/usr/bin/env bash
# The scheduled health check of the live publication point, for a GitHub Actions job without secrets.
#
# Usage: scripts/github/check.sh REPO [rpkictl check options, e.g. --warn 6h --critical 2h]
#
# Runs 'rpkictl check REPO': manifests and CRLs about to expire, the trust anchor's reminders, renewals
# waiting for the offline signer; one line per problem with what to do.
# Appends the report to $GITHUB_STEP_SUMMARY and writes status=ok|warning|critical and check_exit to
# $GITHUB_OUTPUT. Exits like rpkictl check: 0 ok, 1 warning, 2 critical (any other failure counts as
# critical), so the job fails, and notifies, on anything but ok.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 REPO [rpkictl check options]" >&2
  exit 1
fi
repo="$1"
shift

log="$(mktemp)"
trap 'rm -f "${log}"' EXIT

set +e
rpkictl check "${repo}" "$@" >"${log}" 2>&1
check_exit=$?
set -e
cat "${log}"

case "${check_exit}" in
  0) status=ok code=0 ;;
  1) status=warning code=1 ;;
  *) status=critical code=2 ;;
esac

if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
  {
    printf '### RPKI check: %s\n\n```text\n' "${status}"
    cat "${log}"
    printf '```\n'
  } >>"${GITHUB_STEP_SUMMARY}"
fi
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
  printf 'status=%s\ncheck_exit=%s\n' "${status}" "${check_exit}" >>"${GITHUB_OUTPUT}"
fi
exit "${code}"
