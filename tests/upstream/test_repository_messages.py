"""A publication too large for one RFC 8181 message goes in several, the manifests, CRLs and withdrawals
last; any change's publication stays one message."""

from __future__ import annotations

import random

from reconciler.protocol import publication
from reconciler.upstream.repository import MESSAGE_BYTES, Synced, messages

BASE = "rsync://rpki.example.net/repo/publishers/acme/acme/"


def _objects(count: int, size: int, seed: int = 3) -> dict[str, bytes]:
    rng = random.Random(seed)  # noqa: S311 - test data
    found = {f"{BASE}AS64500_100-64-{i // 256}-{i % 256}_24.roa": rng.randbytes(size) for i in range(count)}
    found[f"{BASE}0.mft"] = rng.randbytes(size * 4)
    found[f"{BASE}0.crl"] = rng.randbytes(size // 2)
    return found


def _last(pdu: publication.Pdu) -> bool:
    return isinstance(pdu, publication.Withdraw) or pdu.uri.endswith((".mft", ".crl"))


def test_a_change_is_one_message_as_the_delta_orders_it() -> None:
    listed = {uri: publication.object_hash(data) for uri, data in _objects(200, 1800).items()}
    changed = _objects(200, 1800)
    changed[f"{BASE}AS64501_100-64-0-7_24.roa"] = b"\x30\x03\x02\x01\x07"
    del changed[f"{BASE}AS64500_100-64-0-7_24.roa"]
    changed[f"{BASE}0.mft"] += b"\x00"
    changed[f"{BASE}0.crl"] += b"\x00"
    pdus = publication.delta(listed, changed)
    assert len(pdus) == 4  # the new ROA, the manifest, the CRL, the old ROA withdrawn
    assert messages(pdus) == [pdus]
    assert messages(()) == []


def test_a_large_first_publication_is_split_with_the_manifest_and_crl_last() -> None:
    pdus = publication.delta({}, _objects(5000, 1800))
    queries = messages(pdus)
    assert len(queries) >= 3
    assert sorted(p.uri for q in queries for p in q) == sorted(p.uri for p in pdus)  # each once
    for query in queries:
        assert len(publication.render(publication.Query(query))) <= MESSAGE_BYTES  # the estimate bounds it
    flags = [_last(p) for q in queries for p in q]
    assert flags == sorted(flags)  # nothing else after the first manifest, CRL or withdrawal
    assert _last(queries[-1][-1]) and not _last(queries[0][0])


def test_withdrawals_are_split_by_count_too() -> None:
    listed = {f"{BASE}x{i}.roa": "ab" * 32 for i in range(12)}
    queries = messages(publication.delta(listed, {}), most=5)
    assert [len(q) for q in queries] == [5, 5, 2]
    assert all(isinstance(p, publication.Withdraw) for q in queries for p in q)


def test_several_messages_are_said_so() -> None:
    one = Synced(held=0, published=5, withdrawn=0, size=9000, message=12000)
    assert "sent 5 publish and 0 withdraw in one message" in one.describe("http://x")
    several = Synced(held=0, published=5002, withdrawn=0, size=9_000_000, message=12_900_000, messages=5)
    assert "sent 5002 publish and 0 withdraw in 5 messages (9,000,000 bytes" in several.describe("http://x")
