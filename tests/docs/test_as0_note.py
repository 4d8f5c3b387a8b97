"""Every page that shows an AS0 ROA warns that rpki-client 9 drops an all-AS0 trust anchor's VRPs.

rpki-client 9.x logs "Detected AS0 TAL, pruning associated VRPs" and outputs none of a trust anchor's VRPs
when all of them are AS0, unless it runs with ``-0``: an operator who publishes only "never route this"
ROAs would otherwise see them vanish at relying parties and not know why.
"""

from __future__ import annotations

import re

import pytest

from reconciler.desired.reference import render
from tests.docs.doccommands import ROOT, doc_pages

#: An AS0 ROA shown or explained: an entry with ``asn: AS0``, "AS0 ROA", or AS0 meaning "never route". (AS0
#: in an ASPA's providers says something else -- the AS has no provider -- and needs no such note.)
_AS0 = re.compile(r"asn: AS0\b|`?AS0`? ROA|AS0 means 'never route")
_NOTE = re.compile(r"rpki-client 9[^.]*AS0[^.]*unless run with `-0`", re.DOTALL)


def _pages_showing_as0() -> list[str]:
    return [page for page in doc_pages() if _AS0.search((ROOT / page).read_text(encoding="utf-8"))]


def test_the_pages_that_show_as0_roas_are_found() -> None:
    """The YAML reference and the getting-started ROA example show one; the check below is not empty."""
    assert {"docs/yaml-reference.md", "docs/getting-started.md"} <= set(_pages_showing_as0())


@pytest.mark.parametrize("page", _pages_showing_as0())
def test_page_showing_as0_mentions_rpki_client_dash_zero(page: str) -> None:
    text = " ".join((ROOT / page).read_text(encoding="utf-8").split())
    assert _NOTE.search(text), (
        f"{page} shows an AS0 ROA but does not say that rpki-client 9 drops the VRPs of a trust anchor "
        "whose VRPs are all AS0 unless run with `-0`"
    )


def test_the_schema_description_carries_the_note() -> None:
    """The YAML reference is generated from the schema: the note lives in the ``asn`` description."""
    row = next(line for line in render().splitlines() if line.startswith("| `asn` |") and "AS0" in line)
    assert _NOTE.search(row), row
