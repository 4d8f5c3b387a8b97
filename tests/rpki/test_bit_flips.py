"""Any single flipped bit in a published object is read back as "unreadable" (or, where the bit does not
matter, as an object) -- never as an exception that stops plan, check or a ceremony import."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.published import read
from reconciler.published.reader import PublishedState
from tests.helpers import T0, scratch_copy


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    scratch = scratch_copy(tmp_path_factory.mktemp("flips"))
    assert scratch.apply(T0) is not None
    return read(scratch.rsync).files


@pytest.mark.parametrize("suffix", [".cer", ".crl", ".roa", ".mft"])
def test_every_flipped_bit_is_read_or_refused(tree: dict[str, bytes], suffix: str, tmp_path: Path) -> None:
    path = sorted(p for p in tree if p.endswith(suffix))[0]
    original = tree[path]
    readers = {".cer": "certificate", ".crl": "crl", ".roa": "roa", ".mft": "manifest"}
    unreadable = 0
    for index in range(len(original)):
        data = bytearray(original)
        data[index] ^= 0x01
        state = PublishedState(files={path: bytes(data)})
        found = getattr(state, readers[suffix])(path)  # must not raise
        unreadable += type(found).__name__ == "Unreadable"
    if suffix in (".roa", ".mft"):  # signed objects check their own signature: most flips are caught
        assert unreadable > len(original) // 2
    else:  # certificates and CRLs are checked against their issuer by the manifest hash instead
        assert unreadable > 0
