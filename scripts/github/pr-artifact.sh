#!/usr/bin/env bash
# Check the artifact of a pull-request plan run before the comment workflow posts it with a token that
# may write pull requests. Everything in the artifact was written by a run of the pull request's own
# code (possibly a fork's), so it is data to check, never to run.
#
# Usage: scripts/github/pr-artifact.sh PLAN_DIR
#   PLAN_DIR holds what the plan job kept: plan.md, pull-request.txt and, when planning succeeded,
#   plan.json. pull-request.txt has three lines: number=N, labels_add=..., labels_remove=...
# Needs HEAD_SHA (github.event.workflow_run.head_sha: the commit the plan run checked out, as GitHub,
# not the artifact, says), GH_TOKEN and GITHUB_REPOSITORY (owner/name).
#
# Refuses (exit 1, nothing posted) unless: the number is a pull request of this repository whose head
# is HEAD_SHA; every label is rpki/approval-required or rpki/revocations; plan.md is a regular file that
# starts with <!-- rpkictl-plan --> and fits in one comment (65,536 characters).
# Writes to $GITHUB_OUTPUT (printed when it is unset): number, labels_add, labels_remove,
# planned=true|false (whether plan.json is there), plan_markdown (the path of plan.md).
set -euo pipefail

MARKER="<!-- rpkictl-plan -->"
LABELS=("rpki/approval-required" "rpki/revocations")
MAX_COMMENT=65536

if [[ $# -ne 1 ]]; then
  echo "usage: $0 PLAN_DIR" >&2
  exit 1
fi
dir="$1"
head_sha="${HEAD_SHA:?set HEAD_SHA to the head commit of the plan run (github.event.workflow_run.head_sha)}"
repository="${GITHUB_REPOSITORY:?set GITHUB_REPOSITORY to owner/name}"

refuse() {
  echo "refused: $1; nothing was posted" >&2
  exit 1
}

regular_file() {
  [[ -f "$1" && ! -L "$1" ]]
}

regular_file "${dir}/pull-request.txt" || refuse "${dir}/pull-request.txt is missing"
number="" add="" remove=""
while IFS= read -r line || [[ -n "${line}" ]]; do
  case "${line}" in
    number=*) number="${line#number=}" ;;
    labels_add=*) add="${line#labels_add=}" ;;
    labels_remove=*) remove="${line#labels_remove=}" ;;
    *) refuse "${dir}/pull-request.txt: unexpected line '${line:0:80}'" ;;
  esac
done <"${dir}/pull-request.txt"

[[ "${number}" =~ ^[1-9][0-9]{0,9}$ ]] || refuse "'${number:0:80}' is not a pull-request number"

known_labels() {
  local list="$1" label known
  [[ -z "${list}" ]] && return 0
  IFS=, read -r -a given <<<"${list}"
  for label in "${given[@]}"; do
    known=false
    for candidate in "${LABELS[@]}"; do
      [[ "${label}" == "${candidate}" ]] && known=true
    done
    [[ "${known}" == true ]] || refuse "'${label:0:80}' is not a label the plan sets (${LABELS[*]})"
  done
}
known_labels "${add}"
known_labels "${remove}"

plan_md="${dir}/plan.md"
regular_file "${plan_md}" || refuse "${plan_md} is missing"
[[ "$(head -c "${#MARKER}" "${plan_md}")" == "${MARKER}" ]] || refuse "${plan_md} does not start with ${MARKER}"
size="$(wc -m <"${plan_md}")"
[[ "${size}" -le "${MAX_COMMENT}" ]] || refuse "${plan_md} has ${size} characters, more than one comment holds"

pr_head="$(gh api "repos/${repository}/pulls/${number}" --jq .head.sha)" ||
  refuse "pull request ${number} of ${repository} could not be read"
[[ "${pr_head}" == "${head_sha}" ]] ||
  refuse "pull request ${number} is at '${pr_head}', not at the planned commit '${head_sha}' (a newer push plans again)"

planned=false
regular_file "${dir}/plan.json" && planned=true

lines="$(printf 'number=%s\nlabels_add=%s\nlabels_remove=%s\nplanned=%s\nplan_markdown=%s\n' \
  "${number}" "${add}" "${remove}" "${planned}" "${plan_md}")"
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
  printf '%s\n' "${lines}" >>"${GITHUB_OUTPUT}"
else
  printf '%s\n' "${lines}"
fi
echo "pull request ${number} at ${head_sha}: the plan may be posted" >&2
