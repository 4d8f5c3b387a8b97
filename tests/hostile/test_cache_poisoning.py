"""The caches in the publication directory are written by the reconciler but lie where others can write:
an edited memo must not make a plan believe what the objects do not say, and a damaged cache of any kind
is dropped and rebuilt with a notice, never a crash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from reconciler import cachefile, engine
from reconciler.published import memo
from tests.helpers import T0, Scratch, later, scratch_copy

ISP = "cas/members/example-isp.yaml"
ROA = "example-isp/AS64496_198-51-100-0_25.roa"


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    assert scratch.plan(later(1)).empty  # the memo now knows every object
    return scratch


def test_an_edited_memo_does_not_make_plan_trust_what_the_roa_does_not_say(scratch: Scratch) -> None:
    """The YAML asks for max length 25; the ROA says 26. A memo row claiming 25 for the ROA's bytes is a
    lie a plan must not believe."""
    scratch.edit(ISP, "max_length: 26", "max_length: 25")
    path = memo.path(scratch.root / "published")
    saved = json.loads(path.read_text())
    forged = 0
    for row in saved["roas"].values():
        for prefix in row[1]:
            if prefix == ["198.51.100.0/25", 26]:
                prefix[1] = 25
                forged += 1
    assert forged == 1
    path.write_text(json.dumps(saved))
    plan = scratch.plan(later(2))
    assert [c.path for c in plan.changes if c.path.endswith(".roa")] == [ROA], plan.summary()
    assert any(n.kind == "cache" and "memo.json" in n.message for n in plan.notices), plan.notices


def test_a_forged_signature_claim_is_not_believed(scratch: Scratch) -> None:
    """A ROA altered after publication (here: its signature) together with a memo that claims the CA
    signed those very bytes, and a manifest that lists them: every validator rejects the ROA."""
    tree = scratch.rsync.resolve()
    roa_file = tree / ROA
    original = roa_file.read_bytes()
    forged = original[:-1] + bytes([original[-1] ^ 0x01])
    path = memo.path(scratch.root / "published")
    saved = json.loads(path.read_text())
    old, new = hashlib.sha256(original).hexdigest(), hashlib.sha256(forged).hexdigest()
    saved["roas"][new] = saved["roas"][old]
    roa_file.write_bytes(forged)
    manifests = list((tree / "example-isp").glob("*.mft"))
    for mft in manifests:  # the manifest lists the forged hash (its own signature is then wrong too)
        data = mft.read_bytes()
        if bytes.fromhex(old) in data:
            altered = data.replace(bytes.fromhex(old), bytes.fromhex(new))
            mft.write_bytes(altered)
            mft_old = hashlib.sha256(data).hexdigest()
            mft_new = hashlib.sha256(altered).hexdigest()
            row = saved["objects"][mft_old]
            row[1] = mft_new
            row[-1] = [[n, new if d == old else d] for n, d in row[-1]]
            saved["objects"][mft_new] = row
            saved["verified"][mft_new] = saved["verified"][mft_old]
    path.write_text(json.dumps(saved))
    plan = scratch.plan(later(1))
    assert ROA in [c.path for c in plan.changes], plan.summary()


@pytest.mark.parametrize("cache", ["memo.json", "desired.json"])
def test_a_deeply_nested_cache_is_dropped_with_a_notice(scratch: Scratch, cache: str) -> None:
    path = scratch.root / "published" / "cache" / cache
    path.write_text("[" * 200_000 + "]" * 200_000)
    plan = scratch.plan(later(1))
    assert plan.empty
    assert any(n.kind == "cache" and cache in n.message for n in plan.notices), plan.notices
    assert scratch.plan(later(1)).notices == ()  # rebuilt: the next run finds it sound


def test_a_memo_is_read_only_with_its_mac(scratch: Scratch) -> None:
    path = memo.path(scratch.root / "published")
    text = path.read_text()
    assert text.endswith('"}') and ',"mac":"' in text[-80:]


def test_a_forged_rrdp_record_does_not_vouch_for_a_forged_snapshot(scratch: Scratch) -> None:
    """The snapshot loses an object (RRDP relying parties then miss it), the notification names the new
    snapshot's hash, and the snapshot record claims that snapshot was made from the tree served now."""
    scratch.edit("rpki.yaml", "publication:\n", "publication:\n  rrdp_base: https://rpki.example.net/rrdp/\n")
    assert scratch.apply(later(1)) is not None
    assert scratch.plan(later(1)).empty
    rrdp = scratch.root / "published" / "rrdp"
    snapshot = next(rrdp.rglob("snapshot.xml"))
    text = snapshot.read_text()
    start = text.index("  <publish ")
    forged = text[:start] + text[text.index("</publish>\n", start) + len("</publish>\n") :]
    snapshot.write_text(forged)
    old_hash = hashlib.sha256(text.encode()).hexdigest()
    new_hash = hashlib.sha256(forged.encode()).hexdigest()
    notification = rrdp / "notification.xml"
    notification.write_text(notification.read_text().replace(old_hash, new_hash))
    record_path = scratch.root / "published" / "cache" / "rrdp-snapshot.json"
    record = json.loads(record_path.read_text())
    record["snapshot_hash"] = new_hash
    record.pop("mac", None)
    record_path.write_text(json.dumps(record))
    reasons = [c.reason for c in scratch.plan(later(1)).changes if c.ca == "(rrdp)"]
    assert reasons and "does not match the rsync tree" in reasons[0], reasons


def test_an_authenticated_cache_reads_back_only_with_its_key(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "x.json"
    document = {"version": 1, "rows": {str(i): [i, "x"] for i in range(25_000)}}  # written in pieces
    assert cachefile.write(path, document, secret=b"k" * 32)
    cachefile.dropped()
    found = cachefile.read(path, 1, secret=b"k" * 32)
    assert found is not None and found["rows"] == document["rows"]
    assert cachefile.dropped() == []
    assert cachefile.read(path, 1, secret=b"o" * 32) is None
    assert cachefile.read(path.with_name("missing.json"), 1, secret=b"k" * 32) is None
    dropped = cachefile.dropped()
    assert len(dropped) == 1 and "not authenticated" in dropped[0]  # a missing cache is no news
    path.write_bytes(path.read_bytes().replace(b'"x"', b'"y"', 1))
    assert cachefile.read(path, 1, secret=b"k" * 32) is None


def test_a_forged_parse_cache_row_signs_nothing_unreviewed(scratch: Scratch) -> None:
    """``cache/desired.json`` says what each YAML file parsed to, by the file's digest. A row edited to
    carry one more ROA, with the file unchanged, must not reach the plan: the rows are sealed with the
    CA's key, and a load that finds them unsealed parses the files again."""
    path = scratch.root / "published" / "cache" / "desired.json"
    saved = json.loads(path.read_bytes())
    isp = hashlib.sha256((scratch.repo / ISP).read_bytes()).hexdigest()
    content, positions = json.loads(saved["files"][isp])
    content["roas"].append({"asn": "AS64511", "prefix": "192.0.2.0/24"})
    saved["files"][isp] = json.dumps([content, positions], separators=(",", ":"))
    path.write_text(json.dumps(saved, separators=(",", ":")))

    plan = scratch.plan(later(2))
    assert plan.empty, plan.summary()
    assert any(n.kind == "cache" and "desired.json" in n.message for n in plan.notices), plan.notices
    assert scratch.plan(later(3)).empty  # and the next load believes the rewritten, sealed cache
    assert cachefile.authentic(path.read_bytes(), engine.cache_secret(engine.open_workspace(scratch.repo)))
