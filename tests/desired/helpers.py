"""A tiny desired-state repository in a temporary directory, for tests to break one file at a time."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.desired import CacheKey, DesiredState, DesiredStateError, Diagnostic, load

RPKI_YAML = """\
publication:
  rsync_base: rsync://rpki.example.net/repo/
  directory: ../published
signers:
  default:
    type: file
    directory: ../keys
"""

TA_YAML = """\
name: ta
trust_anchor: true
resources:
  asn: ["0-4294967295"]
  ipv4: ["0.0.0.0/0"]
  ipv6: ["::/0"]
"""

ONLINE_YAML = """\
name: online
parent: ta
resources:
  asn: ["AS64496-AS64511"]
  ipv4: [192.0.2.0/24, 198.51.100.0/24]
  ipv6: ["2001:db8::/32"]
"""


@dataclass
class Repo:
    """A valid repository (rpki.yaml, cas/ta.yaml, cas/online.yaml) that tests then modify."""

    root: Path
    cache_key: CacheKey | None = None  # loads use the parse cache, sealed with this key's result

    @classmethod
    def create(cls, base: Path) -> Repo:
        repo = cls(base / "state")
        repo.write("rpki.yaml", RPKI_YAML)
        repo.write("cas/ta.yaml", TA_YAML)
        repo.write("cas/online.yaml", ONLINE_YAML)
        return repo

    def write(self, relative: str, text: str) -> Path:
        """Write a file; the text is dedented so tests can indent YAML along with the code."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def remove(self, relative: str) -> None:
        (self.root / relative).unlink()

    def load(self) -> DesiredState:
        return load(self.root, cache_key=self.cache_key)

    def errors(self) -> list[Diagnostic]:
        with pytest.raises(DesiredStateError) as info:
            load(self.root, cache_key=self.cache_key)
        assert info.value.diagnostics, "DesiredStateError without diagnostics"
        return info.value.diagnostics

    def error(self) -> Diagnostic:
        """The one and only diagnostic (fails, listing them all, if there are more)."""
        found = self.errors()
        assert len(found) == 1, "expected exactly one diagnostic, got:\n" + "\n".join(map(str, found))
        return found[0]


def expect(  # noqa: PLR0917  # positional reads like the file:line:col it checks
    diagnostic: Diagnostic, repo: Repo, file: str, line: int, column: int, phrase: str
) -> None:
    """Assert the place exactly and that the message (or hint) says ``phrase``."""
    assert (diagnostic.file, diagnostic.line, diagnostic.column) == (repo.root / file, line, column), str(
        diagnostic
    )
    text = f"{diagnostic.message} ({diagnostic.hint})"
    assert phrase in text, str(diagnostic)
