"""Whatever bytes a pull request puts into the desired-state repository, loading it gives a state or a
:class:`DesiredStateError` -- never another exception -- in bounded time and memory, and the same
answer again once the parse cache remembers what it parsed."""

from __future__ import annotations

import re
import shutil
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.desired import DesiredStateError, load
from tests.desired.helpers import ONLINE_YAML, RPKI_YAML, Repo

#: Pieces of YAML syntax, values of the desired state and things parsers disagree on, for texts that get
#: past the first character of a parser far more often than random bytes do.
_TOKENS = [
    "\n", "\n  ", "\n    ", "  ", " ", "\t", "- ", ": ", ":", ",", "#", "? ", "{", "}", "[", "]", "'", '"',
    "|", ">", "|-", ">+", "&a ", "&b ", "*a", "*b", "<<: ", "<<: *a", "!!int ", "!!str ", "!!binary ",
    "!!map ", "!!set ", "!!omap ", "!!python/object ", "!x ", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n",
    "---\n", "...\n", "~", "null", "true", "yes", "0x1F", "0o17", "1e400", ".nan", "-.inf", "1_000",
    "2026-11-23", "=", "name", "parent", "ta", "online", "resources", "asn", "ipv4", "ipv6", "roas",
    "prefix", "max_length", "comment", "trust_anchor", "signer", "safety", "key_generation",
    "AS0", "AS64496", "4294967296", "0-4294967295", "192.0.2.0/24", "2001:db8::/32", "fe80::1%eth0/128",
    "::ffff:1.2.3.4/128", "99999999999999999999999999999999", "\u2028", "\x85", "\ufeff", "\x00", "\x1b[2J",
    "\u202e", "é", "\\", "\\x00", "%", "@", "`",
]  # fmt: skip
_SETTINGS_TOKENS = [
    *_TOKENS, "publication", "rsync_base", "rrdp_base", "directory", "signers", "default", "type",
    "file", "pkcs11", "timing", "manifest_validity", "1000000w", "plan_max_age", "audit_log",
    "rsync://rpki.example.net/repo/", "https://rpki.example.net/rrdp/", "../published", "../keys",
    "/../", "/.", "~nobody/x",
]  # fmt: skip

_TEXT = st.lists(st.sampled_from(_TOKENS), max_size=60).map("".join)
_SETTINGS_TEXT = st.lists(st.sampled_from(_SETTINGS_TOKENS), max_size=60).map("".join)
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

#: Per load, at most: far above what a repository of three small files takes, far below what a file that
#: escaped a limit would.
_SECONDS = 10.0
_BYTES = 64 << 20


def _bounded(action: Callable[[], object]) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        action()
    finally:
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < _SECONDS, f"took {elapsed:.1f} s"
    assert peak < _BYTES, f"took {peak >> 20} MB"


def _outcome(root: Path) -> tuple[str, str]:
    """What loading gives, as text: the state's digest, or every diagnostic."""
    try:
        state = load(root)
    except DesiredStateError as exc:
        assert exc.diagnostics
        text = str(exc)
        assert all(d.line >= 1 and d.column >= 1 for d in exc.diagnostics)
        assert not _CONTROL.search(text), text[:500]
        assert all(len(str(d)) < 4000 for d in exc.diagnostics)
        return "error", text
    return "state", state.digest


def _load_twice(tmp: Path, files: dict[str, str | bytes]) -> None:
    """Load a repository holding ``files`` (beside the valid ones) twice: the second load finds the
    parse cache the first one wrote, and must give the same answer."""
    if tmp.exists():
        shutil.rmtree(tmp)
    repo = Repo.create(tmp)
    (tmp / "published").mkdir()
    for name, content in files.items():
        path = repo.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
    outcomes: list[tuple[str, str]] = []
    _bounded(lambda: outcomes.append(_outcome(repo.root)))
    _bounded(lambda: outcomes.append(_outcome(repo.root)))
    assert outcomes[0] == outcomes[1]


_FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@_FUZZ
@given(text=_TEXT)
def test_any_ca_text(tmp_path: Path, text: str) -> None:
    _load_twice(tmp_path / "r", {"cas/fuzz.yaml": text})


@_FUZZ
@given(text=_TEXT)
def test_any_text_after_a_valid_ca(tmp_path: Path, text: str) -> None:
    _load_twice(tmp_path / "r", {"cas/online.yaml": ONLINE_YAML + text})


@_FUZZ
@given(text=_SETTINGS_TEXT)
def test_any_settings_text(tmp_path: Path, text: str) -> None:
    _load_twice(tmp_path / "r", {"rpki.yaml": RPKI_YAML + text})


@_FUZZ
@given(data=st.binary(max_size=400))
def test_any_bytes(tmp_path: Path, data: bytes) -> None:
    _load_twice(tmp_path / "r", {"cas/fuzz.yaml": data})


@st.composite
def _aliases(draw: st.DrawFn) -> str:
    """Anchors and aliases of aliases, in lists and mappings, as deep and wide as a bomb would have them."""
    lines = [f"a0: &a0 {draw(st.sampled_from(['x', '[x, y]', '{k: v}', '192.0.2.0/24']))}"]
    for level in range(1, draw(st.integers(1, 12)) + 1):
        width = draw(st.integers(1, 12))
        refs = [f"*a{draw(st.integers(max(0, level - 2), level - 1))}" for _ in range(width)]
        if draw(st.booleans()):
            body = f"[{', '.join(refs)}]"
        else:
            body = "{" + ", ".join(f"k{i}: {ref}" for i, ref in enumerate(refs)) + "}"
        lines.append(f"a{level}: &a{level} {body}")
    where = draw(st.sampled_from(["unknown", "roas", "asn", "comment"]))
    top = f"a{len(lines) - 1}"
    body = "x:\n" + "".join(f"  {line}\n" for line in lines)
    tail = {
        "unknown": "",
        "roas": f"roas: *{top}\n",
        "asn": f"resources:\n  asn: *{top}\n",
        "comment": f"roas:\n  - {{asn: 1, prefix: 192.0.2.0/24, comment: *{top}}}\n",
    }[where]
    head = "name: fuzz\nparent: ta\n" + ("" if where == "asn" else "resources: {asn: [1]}\n")
    return head + body + tail


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_aliases())
def test_aliases_of_aliases(tmp_path: Path, text: str) -> None:
    _load_twice(tmp_path / "r", {"cas/fuzz.yaml": text})


@pytest.mark.parametrize(
    "text",
    [
        "a: &a [" + ", ".join(["x"] * 50) + "]\n" + "".join(f"b{i}: &b{i} [*a, *a]\n" for i in range(2000)),
        "x: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "x: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n",
        "x: " + "9" * 100_000 + "\n",
        "x: &a [*a]\n",
        "- " * 3000 + "x\n",
    ],
)
def test_known_shapes_of_trouble(tmp_path: Path, text: str) -> None:
    _load_twice(tmp_path / "r", {"cas/fuzz.yaml": text})
