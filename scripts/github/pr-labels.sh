#!/usr/bin/env bash
# Set the plan's labels on a pull request with the GitHub CLI (gh, preinstalled on GitHub's runners).
#
# Usage: scripts/github/pr-labels.sh PR_NUMBER ADD REMOVE
#   ADD, REMOVE: comma-separated labels, as plan.sh writes them to labels_add and labels_remove.
# Needs GH_TOKEN (a token with pull-requests: write) and GITHUB_REPOSITORY (owner/name). The labels must
# exist in the repository. Only labels the pull request carries are removed.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 PR_NUMBER ADD REMOVE" >&2
  exit 1
fi
pr="$1"
IFS=, read -r -a add <<<"$2"
IFS=, read -r -a remove <<<"$3"
issue="repos/${GITHUB_REPOSITORY:?set GITHUB_REPOSITORY to owner/name}/issues/${pr}"

for label in "${add[@]}"; do
  gh api --method POST "${issue}/labels" -f "labels[]=${label}" >/dev/null
  echo "added ${label}"
done
current="$(gh api "${issue}/labels" --jq '.[].name')"
for label in "${remove[@]}"; do
  if grep -qxF -- "${label}" <<<"${current}"; then
    # The label is one path segment: its '/' is encoded.
    gh api --method DELETE "${issue}/labels/${label//\//%2F}" >/dev/null
    echo "removed ${label}"
  fi
done
