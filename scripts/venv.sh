#!/usr/bin/env bash
# The virtual environment .venv in the checkout, with rpki-reconciler installed editable ('.', or with
# 'test' the test dependencies too: '.[test]'). The system's Python is never installed into: Debian's
# python3 is "externally managed" (PEP 668) and refuses pip.
#
# Usage: scripts/venv.sh [test]
#
# .venv is reused while it works and was installed from the same pyproject.toml for this checkout (a
# stamp file in .venv holds their hash and path); otherwise it is installed again, or made again with
# python3 -m venv when its interpreter is gone (a moved checkout, an upgraded python3). pip finds its
# index as configured (pip.conf, PIP_* variables). scripts/quickstart.sh and scripts/test.sh call this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=.
case "${1:-}" in
  "") ;;
  test) target=".[test]" ;;
  *)
    echo "usage: $0 [test]" >&2
    exit 2
    ;;
esac

venv=.venv
stamp="${venv}/rpki-reconciler-installed"
export PIP_DISABLE_PIP_VERSION_CHECK=1

digest=$(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' \
  pyproject.toml)
installed_for() { # the stamp line of an install of $1 from this pyproject.toml into this checkout
  printf '%s %s %s\n' "${digest}" "$1" "${PWD}"
}

works() {
  "${venv}/bin/python" -c 'import reconciler' >/dev/null 2>&1 && [ -x "${venv}/bin/rpkictl" ]
}

if works && [ -f "${stamp}" ] &&
  { grep -qxF "$(installed_for "${target}")" "${stamp}" || grep -qxF "$(installed_for ".[test]")" "${stamp}"; }; then
  echo "== ${venv}: rpki-reconciler (${target}) up to date"
  exit 0
fi

if ! "${venv}/bin/python" -c '' >/dev/null 2>&1; then
  echo "== python3 -m venv ${venv}    ($(python3 --version))"
  python3 -m venv --clear "${venv}"
elif grep -qxF "$(installed_for .)" "${stamp}" 2>/dev/null; then
  echo "== ${venv}: adding the test dependencies"
elif [ -f "${stamp}" ]; then
  echo "== ${venv}: pyproject.toml or the checkout's path changed since the last install"
fi
rm -f "${stamp}"
echo "== installing rpki-reconciler: ${venv}/bin/python -m pip install -q -e '${target}'"
"${venv}/bin/python" -m pip install -q -e "${target}" </dev/null
installed_for "${target}" >"${stamp}"
