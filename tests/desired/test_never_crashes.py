"""Whatever is in the files, ``load`` returns a state or raises ``DesiredStateError`` -- never a traceback."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.desired import DesiredStateError, load

from .helpers import RPKI_YAML, Repo

_SAFETY_KEYS = ["safety", "delete_pct_threshold", "narrow_pct_threshold", "min_existing_vrps", "allow_empty"]
_CA_KEYS = [
    "name",
    "trust_anchor",
    "parent",
    "signer",
    "resources",
    "roas",
    "asn",
    "ipv4",
    "ipv6",
    "prefix",
    *_SAFETY_KEYS,
]
_SETTINGS_KEYS = [*_SAFETY_KEYS, "plan_max_age", "audit_log"]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "ta",
            "online",
            "x",
            "AS1",
            "1-2",
            "192.0.2.0/24",
            "::/0",
            "10.0.0.1/8",
            "",
            "24h",
            "30%",
            "130%",
            "/",
        ]
    ),
    st.text(max_size=12),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(_CA_KEYS), st.text(max_size=6)), inner, max_size=4),
    ),
    max_leaves=12,
)
_CA_FILES = st.dictionaries(st.sampled_from(_CA_KEYS), _VALUES, max_size=7).map(json.dumps)


def _load_with(ca_text: str, settings_extra: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Repo.create(Path(tmp))
        (repo.root / "cas" / "fuzz.yaml").write_text(ca_text, encoding="utf-8")
        if settings_extra is not None:
            (repo.root / "rpki.yaml").write_text(RPKI_YAML + settings_extra, encoding="utf-8")
        try:
            load(repo.root)
        except DesiredStateError as exc:
            assert exc.diagnostics
            assert all(d.line >= 1 and d.column >= 1 for d in exc.diagnostics)
            assert str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CA_FILES)
def test_structured_garbage(ca_text: str) -> None:
    _load_with(ca_text)


# Top-level rpki.yaml keys, one "key: value" line each (JSON is YAML), appended to the valid file.
_SETTINGS = st.dictionaries(st.sampled_from(_SETTINGS_KEYS), _VALUES, max_size=4).map(
    lambda keys: "\n".join(f"{json.dumps(key)}: {json.dumps(value)}" for key, value in keys.items()) + "\n"
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SETTINGS)
def test_structured_garbage_in_rpki_yaml(extra: str) -> None:
    _load_with("name: x\nparent: ta\nresources: {asn: [1]}\n", extra)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{},#&*!|>'\"\n\t ?%@`0.AS/")), max_size=60))
def test_textual_garbage(ca_text: str) -> None:
    _load_with(ca_text)


_TOKENS = [
    "name:",
    "parent:",
    "resources:",
    "roas:",
    "asn:",
    "ipv4:",
    "trust_anchor:",
    " ",
    "\n",
    "  ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "x",
    "ta",
    "1",
    "AS1",
    "10.0.0.0/8",
    "&a ",
    "*a",
    "<<: ",
    "!!int ",
    "!!bool ",
    "!!float ",
    "!!binary ",
    "!!set ",
    "!!omap ",
    "!foo ",
    "? ",
    "'",
    '"',
    "#",
    "---\n",
    "|\n",
    ">\n",
    "\t",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join))
def test_token_soup(ca_text: str) -> None:
    _load_with(ca_text)
