#!/usr/bin/env bash
# The system packages that the quick start or the test suite needs, by their Debian names.
#
# Usage: scripts/system-packages.sh quickstart|tests
#
# Each package is checked by what it provides (a command, a file, a Python module), so that the check
# also holds on a machine without dpkg. As root, with apt-get, whatever is missing is installed; for the
# tests this includes the current generation of validators (rpki-client 9.x, FORT 1.6.x), unpacked from
# bookworm-backports into $RECONCILER_RP_CURRENT (default /opt/rp-current) beside Debian 12's, so that
# the end-to-end tests run both generations. Otherwise (not root, no apt-get, or RECONCILER_APT=no) the
# missing packages are listed with the command that installs them and what cannot run without them.
#
# Exit status 0 when the caller can go on (a missing validator only skips tests outside CI and fails them
# in CI, as the tests themselves decide); 1 when nothing can work: no python3 3.11 or newer, or a python3
# that cannot create a virtual environment (Debian's python3-venv brings ensurepip); apt-get's own status
# when it fails.
# scripts/quickstart.sh, scripts/test.sh and .ci/run all call this script, so they agree on the list.
set -euo pipefail

purpose="${1:-}"
case "${purpose}" in
  quickstart | tests) ;;
  *)
    echo "usage: $0 quickstart|tests" >&2
    exit 2
    ;;
esac

label="the tests"
[ "${purpose}" = tests ] || label="the quick start"
RP_CURRENT="${RECONCILER_RP_CURRENT:-/opt/rp-current}"
# rpki-client is /usr/sbin/rpki-client; a user's PATH (or env -i's) may lack the sbin directories.
PATH="${PATH}:/usr/sbin:/sbin"

# package|what shows it is installed|what needs it. Probes: command:NAME, file:PATH, module:NAME.
ALWAYS=(
  "python3|command:python3|everything (the virtual environment .venv is made with python3 -m venv)"
  "python3-venv|module:ensurepip|everything (python3 -m venv needs ensurepip to put pip into .venv)"
  "ca-certificates|file:/etc/ssl/certs/ca-certificates.crt|pip's downloads over HTTPS"
)
QUICKSTART=(
  "rsync|command:rsync|the last step, the relying parties' check of published/ (skipped)"
  "rpki-client|command:rpki-client|the last step's check with rpki-client (skipped)"
  "fort-validator|command:fort|the last step's check with FORT (skipped)"
)
E2E="the end-to-end tests (-m e2e) and the documentation pages they run"
TESTS=(
  "rsync|command:rsync|${E2E}"
  "rpki-client|command:rpki-client|${E2E}"
  "fort-validator|command:fort|${E2E}"
  "faketime|command:faketime|${E2E}"
  "git|command:git|the GitOps tests (plan --base, reconcile --pull) and the GitHub workflow scripts' tests"
  "openssl|command:openssl|the HTTPS RRDP tests and the encrypted key file tests"
  "softhsm2|file:/usr/lib/softhsm/libsofthsm2.so|the PKCS#11 signer (HSM) tests"
  "util-linux|command:unshare|the full-disk and read-only publication tests (unshare --mount)"
  "shellcheck|command:shellcheck|the shellcheck lint of .ci/run and scripts/"
  "chromium|command:chromium|the headless rendering of the HTML status report"
  "prometheus|command:promtool|promtool's checks of the metrics textfile and the alerting rules"
  "systemd|command:systemd-analyze|systemd-analyze verify of docs/systemd/"
)
CURRENT_NEEDED_BY="the end-to-end tests against rpki-client 9.x and FORT 1.6.x (-m e2e)"

present() {
  local probe="$1"
  case "${probe}" in
    command:*) command -v "${probe#command:}" >/dev/null 2>&1 ;;
    file:*) [ -e "${probe#file:}" ] ;;
    module:*) python3 -c "import ${probe#module:}" >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

# The version line of an unpacked current-generation binary, or nothing when it is absent.
current_version() {
  "$@" 2>&1 || true
}

current_generation_present() {
  current_version "${RP_CURRENT}/usr/sbin/rpki-client" -V | grep -Eq '^rpki-client(-portable)? 9\.' &&
    current_version "${RP_CURRENT}/usr/bin/fort" --version | grep -Eq '^fort 1\.6\.'
}

# Fills MISSING (package names) and NEEDED_BY (one "package: what needs it" line each).
find_missing() {
  MISSING=()
  NEEDED_BY=()
  local entry package probe needed_by
  local wanted=("${ALWAYS[@]}")
  if [ "${purpose}" = tests ]; then
    wanted+=("${TESTS[@]}")
  else
    wanted+=("${QUICKSTART[@]}")
  fi
  for entry in "${wanted[@]}"; do
    IFS='|' read -r package probe needed_by <<<"${entry}"
    if ! present "${probe}"; then
      MISSING+=("${package}")
      NEEDED_BY+=("  ${package}: ${needed_by}")
    fi
  done
  CURRENT_MISSING=no
  if [ "${purpose}" = tests ] && ! current_generation_present; then
    CURRENT_MISSING=yes
    NEEDED_BY+=("  rpki-client 9.x and FORT 1.6.x in ${RP_CURRENT}: ${CURRENT_NEEDED_BY}")
  fi
}

# bookworm-backports on the machine's own mirror (deb822 first, then the one-line format); false when
# the machine has no bookworm entry to take the mirror from.
add_backports() {
  if grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return 0
  fi
  local mirror
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  if [ -z "${mirror}" ]; then
    mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  fi
  if [ -z "${mirror}" ]; then
    echo "no bookworm entry in the apt sources: cannot add bookworm-backports for rpki-client 9.x and FORT 1.6.x" >&2
    return 1
  fi
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
    "${mirror}" /usr/share/keyrings/debian-archive-keyring.gpg \
    >/etc/apt/sources.list.d/bookworm-backports.sources
  echo "added /etc/apt/sources.list.d/bookworm-backports.sources:"
  cat /etc/apt/sources.list.d/bookworm-backports.sources
}

# Unpacks (dpkg -x, not installs) bookworm-backports' rpki-client and fort-validator into RP_CURRENT.
unpack_current_generation() {
  local debs deb
  debs=$(mktemp -d)
  chown _apt "${debs}" 2>/dev/null || true # apt-get download fetches as _apt where it can
  (cd "${debs}" && apt-get download -q -t bookworm-backports rpki-client fort-validator </dev/null)
  mkdir -p "${RP_CURRENT}"
  for deb in "${debs}"/*.deb; do
    dpkg -x "${deb}" "${RP_CURRENT}"
  done
  rm -rf "${debs}"
}

install_as_root() {
  export DEBIAN_FRONTEND=noninteractive
  local backports=no
  if [ "${CURRENT_MISSING}" = yes ] && add_backports; then
    backports=yes
  fi
  echo "== apt-get update"
  apt-get update -q </dev/null
  if [ "${#MISSING[@]}" -gt 0 ]; then
    echo "== apt-get install -y --no-install-recommends ${MISSING[*]}"
    apt-get install -y -q --no-install-recommends "${MISSING[@]}" </dev/null
  fi
  if [ "${backports}" = yes ]; then
    echo "== unpacking rpki-client 9.x and FORT 1.6.x from bookworm-backports into ${RP_CURRENT}"
    unpack_current_generation
  fi
}

report_missing() {
  local sudo=""
  [ "${EUID}" -eq 0 ] || sudo="sudo "
  echo "missing system packages, and what needs them:"
  printf '%s\n' "${NEEDED_BY[@]}"
  if [ "${#MISSING[@]}" -gt 0 ]; then
    echo "install them with:"
    echo "  ${sudo}apt-get install -y --no-install-recommends ${MISSING[*]}"
  fi
  echo "or have this script install everything (as root, with apt-get):"
  echo "  ${sudo}scripts/system-packages.sh ${purpose}"
}

echo "== system packages for ${label}"
find_missing
if [ "${#NEEDED_BY[@]}" -gt 0 ] && [ "${EUID}" -eq 0 ] && [ "${RECONCILER_APT:-yes}" != no ] &&
  command -v apt-get >/dev/null; then
  installing=("${MISSING[@]}")
  [ "${CURRENT_MISSING}" = no ] || installing+=("rpki-client 9.x and FORT 1.6.x in ${RP_CURRENT}")
  echo "missing, installing as root: ${installing[*]}"
  install_as_root
  find_missing
fi

if [ "${#NEEDED_BY[@]}" -gt 0 ]; then
  report_missing >&2
elif [ "${purpose}" = tests ]; then
  echo "all installed, and rpki-client 9.x and FORT 1.6.x in ${RP_CURRENT}"
else
  echo "all installed"
fi

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
  found=$({ command -v python3 >/dev/null && python3 --version 2>&1; } || echo "not found")
  echo "error: python3 3.11 or newer is needed (python3: ${found}):" \
    "nothing can run without it" >&2
  exit 1
fi
if ! present module:ensurepip; then
  echo "error: python3 -m venv cannot put pip into a virtual environment without ensurepip" \
    "(Debian's python3-venv): nothing can run without it" >&2
  exit 1
fi
if [ "${#NEEDED_BY[@]}" -gt 0 ]; then
  ci=$(tr '[:upper:]' '[:lower:]' <<<"${CI:-}")
  if [ "${purpose}" = tests ] && ! [[ "${ci// /}" =~ ^(|0|false|no)$ ]]; then
    echo "CI=${CI}: the tests that need them FAIL (in CI nothing is skipped). Going on." >&2
  elif [ "${purpose}" = tests ]; then
    echo "CI is not set: the tests that need them are skipped, each saying what it misses. Going on." >&2
  else
    echo "Going on without them." >&2
  fi
fi
