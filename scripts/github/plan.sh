#!/usr/bin/env bash
# Validate the desired state and plan it, for a GitHub Actions job that holds no signing secrets.
#
# Usage: scripts/github/plan.sh REPO [rpkictl plan options, e.g. --published URL --base origin/main]
#
# Writes, in RPKI_PLAN_DIR (default: the current directory):
#   plan.md    the plan as one pull-request comment (it starts with <!-- rpkictl-plan -->); when
#              validation or planning fails, the errors instead, under the same marker
#   plan.json  the full plan (schemas/plan.schema.json), when planning succeeded
# Appends plan.md to $GITHUB_STEP_SUMMARY. Step outputs, in $GITHUB_OUTPUT (printed when it is unset):
#   has_changes, approval_required, plan_id, revocations   written by 'rpkictl plan' itself
#   planned=true|false        whether a plan was computed
#   plan_exit=0|1|2|3         rpkictl plan's exit code (0 no changes, 2 changes, 3 approval needed, 1 error)
#   labels_add, labels_remove comma-separated pull-request labels: rpki/approval-required when a gate
#                             needs approval, rpki/revocations when the plan revokes anything
#   plan_markdown, plan_json  the paths of the two files
# Exits 0 when a plan was computed (with or without changes or gates), 1 when validation or planning failed.
set -euo pipefail

LABEL_APPROVAL="rpki/approval-required"
LABEL_REVOCATIONS="rpki/revocations"
MARKER="<!-- rpkictl-plan -->"

if [[ $# -lt 1 ]]; then
  echo "usage: $0 REPO [rpkictl plan options]" >&2
  exit 1
fi
repo="$1"
shift

out_dir="${RPKI_PLAN_DIR:-.}"
mkdir -p "${out_dir}"
plan_md="${out_dir}/plan.md"
plan_json="${out_dir}/plan.json"
rm -f "${plan_md}" "${plan_json}"

# Outside Actions, collect the outputs in a temporary file and print them at the end.
print_outputs=false
if [[ -z "${GITHUB_OUTPUT:-}" ]]; then
  GITHUB_OUTPUT="$(mktemp)"
  export GITHUB_OUTPUT
  print_outputs=true
fi
outputs_before="$(wc -l <"${GITHUB_OUTPUT}")"

output() {
  printf '%s=%s\n' "$1" "$2" >>"${GITHUB_OUTPUT}"
}

summary() {
  if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    cat "${plan_md}" >>"${GITHUB_STEP_SUMMARY}"
    printf '\n' >>"${GITHUB_STEP_SUMMARY}"
  fi
}

finish() {
  if [[ "${print_outputs}" == true ]]; then
    tail -n "+$((outputs_before + 1))" "${GITHUB_OUTPUT}"
    rm -f "${GITHUB_OUTPUT}"
  fi
}

# A failed step still leaves a comment: the command and everything it printed.
fail() {
  local title="$1" log="$2"
  {
    printf '%s\n### RPKI plan: %s\n\n' "${MARKER}" "${title}"
    printf 'Nothing was planned. The output of the failed command:\n\n```text\n'
    # without the '::error file=...' workflow commands: they annotate the files, the comment has the words
    sed '/^::/d' "${log}"
    printf '```\n'
  } >"${plan_md}"
  summary
  output planned false
  output plan_exit 1
  output labels_add ""
  output labels_remove ""
  output plan_markdown "${plan_md}"
  output plan_json ""
  cat "${log}" >&2
  rm -f "${log}"
  finish
  exit 1
}

log="$(mktemp)"
if ! rpkictl validate "${repo}" >"${log}" 2>&1; then
  fail "the desired state is invalid" "${log}"
fi
cat "${log}"

set +e
rpkictl plan "${repo}" --format markdown --out "${plan_json}" "$@" >"${plan_md}" 2>"${log}"
code=$?
set -e
if [[ ${code} -ne 0 && ${code} -ne 2 && ${code} -ne 3 ]]; then
  fail "planning failed (exit ${code})" "${log}"
fi
cat "${log}" >&2
rm -f "${log}"
summary

# The last value rpkictl plan wrote for KEY.
plan_output() {
  sed -n "s/^$1=//p" "${GITHUB_OUTPUT}" | tail -n 1
}
approval_required="$(plan_output approval_required)"
revocations="$(plan_output revocations)"
if [[ -z "${approval_required}" || -z "${revocations}" ]]; then
  echo "rpkictl plan wrote no approval_required/revocations to ${GITHUB_OUTPUT}" >&2
  exit 1
fi

add=()
remove=()
if [[ "${approval_required}" == true ]]; then add+=("${LABEL_APPROVAL}"); else remove+=("${LABEL_APPROVAL}"); fi
if [[ "${revocations}" -gt 0 ]]; then add+=("${LABEL_REVOCATIONS}"); else remove+=("${LABEL_REVOCATIONS}"); fi

output planned true
output plan_exit "${code}"
output labels_add "$(IFS=,; echo "${add[*]}")"
output labels_remove "$(IFS=,; echo "${remove[*]}")"
output plan_markdown "${plan_md}"
output plan_json "${plan_json}"
finish
