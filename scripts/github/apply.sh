#!/usr/bin/env bash
# Apply the merged desired state, in a GitHub Actions job bound to a protected signing environment.
#
# Usage: scripts/github/apply.sh REPO [rpkictl apply options, e.g. --routine-only]
#
# Runs 'rpkictl apply REPO --yes --lock-timeout ${RPKI_LOCK_TIMEOUT:-10m}'. apply re-plans the merged state
# under the publication lock, so a dropped or repeated run is harmless.
#
# RPKI_APPROVE_FROM=plan.json (set it only in the environment with required reviewers): approve the gates
# of that plan, the plan a reviewer read before approving the deployment, with the tokens it lists
# (gates[].approve). The tokens approve exactly the items that plan flagged: when the merged state now
# flags more or other items, apply refuses (exit 3) and signs nothing. The plan must have been computed
# from the commit being applied.
#
# Appends the outcome to $GITHUB_STEP_SUMMARY; writes applied=true|false and exit_code to $GITHUB_OUTPUT.
# Exits with rpkictl apply's code: 0 applied or nothing to do, 1 error, 3 unapproved gates, 5 lock held.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 REPO [rpkictl apply options]" >&2
  exit 1
fi
repo="$1"
shift

approvals=()
if [[ -n "${RPKI_APPROVE_FROM:-}" ]]; then
  # One GATE:HASH token per line; then the commit the plan was computed from (empty outside Git).
  mapfile -t fields < <(python3 - "${RPKI_APPROVE_FROM}" <<'PY'
import json
import sys

with open(sys.argv[1], encoding="utf-8") as handle:
    plan = json.load(handle)
for gate in plan["gates"]:
    print(gate["approve"])
print(plan["desired"].get("git_commit") or "")
PY
  )
  planned_commit="${fields[-1]}"
  unset 'fields[-1]'
  head_commit="$(git -C "${repo}" rev-parse HEAD 2>/dev/null || true)"
  if [[ "${planned_commit}" != "${head_commit}" ]]; then
    echo "${RPKI_APPROVE_FROM} was planned from commit '${planned_commit}', but ${repo} is at" \
      "'${head_commit}': its approvals do not apply here; plan this commit again" >&2
    exit 1
  fi
  for token in "${fields[@]}"; do
    approvals+=(--approve "${token}")
  done
  echo "approving ${#fields[@]} gate(s) from ${RPKI_APPROVE_FROM}: ${fields[*]}"
fi

log="$(mktemp)"
set +e
rpkictl apply "${repo}" --yes --lock-timeout "${RPKI_LOCK_TIMEOUT:-10m}" "${approvals[@]}" "$@" >"${log}" 2>&1
code=$?
set -e
cat "${log}"

case "${code}" in
  0) verdict="applied (or nothing to do)" ;;
  3) verdict="refused: gates not approved, nothing signed" ;;
  4) verdict="refused: the saved plan is stale" ;;
  5) verdict="refused: the publication lock is held by another apply" ;;
  *) verdict="failed" ;;
esac
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
  {
    printf '### RPKI apply: %s (exit %s)\n\n```text\n' "${verdict}" "${code}"
    cat "${log}"
    printf '```\n'
  } >>"${GITHUB_STEP_SUMMARY}"
fi
rm -f "${log}"
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
  printf 'applied=%s\nexit_code=%s\n' "$([[ ${code} -eq 0 ]] && echo true || echo false)" "${code}" \
    >>"${GITHUB_OUTPUT}"
fi
exit "${code}"
