"""A key roll (RFC 6489) of a CA under an external parent, through every phase, over real HTTP: raising
``key_generation`` makes apply ask the parent for a certificate of the new key in the same resource class
(staging: the new key publishes an empty manifest and CRL); after the staging period the new key signs
everything, and once that is published at the repository the parent is asked to revoke the old key;
the next apply destroys it. Both generations of rpki-client and FORT, from the parent's TAL, output
exactly the VRPs of both desired states, with no warning, in each phase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler import layout
from reconciler.published import read
from reconciler.rpki import cert as rc
from reconciler.rpki import crl as rc_crl
from reconciler.signers import FileSigner
from reconciler.upstream import state as stored
from tests.e2e.harness import validate_with_all
from tests.e2e.relying_parties import write_tal
from tests.helpers import scratch_copy
from tests.serve.remote_child import serve_process
from tests.upstream.child_world import HANDLE, PARENT_BASE, connect, declare_child, make_child

CHILD = frozenset(
    {(64500, "203.0.113.0/25", 25), (64500, "203.0.113.128/25", 25), (64500, "2001:db8:8000::/40", 48)}
)


def stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def test_a_key_roll_under_an_external_parent(
    validators: tuple[str, ...], current_validators: tuple[str, ...], tmp_path: Path
) -> None:
    every = (*validators, *current_validators)
    start = datetime.now(UTC).replace(microsecond=0)
    parent = scratch_copy(tmp_path / "parent")
    child = make_child(tmp_path / "child")
    declare_child(parent, child)
    assert parent.apply(start) is not None
    tal = write_tal(parent)
    ours = parent.desired_vrps()

    def see(step: str, at: datetime) -> None:
        results = validate_with_all(tal, parent.rsync, PARENT_BASE, now=at, validators=every)
        assert set(results) == set(every)
        for name, result in results.items():
            assert result.vrps == ours | CHILD, f"{step}: {name}: {result.summary()}"
            assert result.warnings == [], f"{step}: {name}: {result.summary()}"

    def certified_keys() -> list[bytes]:
        kept = stored.load(child.root / "published", HANDLE)
        (found,) = stored.classes(kept)
        return [rc.decode(c.der).key_id for c in found.certificates]

    def child_files() -> set[str]:
        prefix = f"publishers/{HANDLE}/{HANDLE}/"
        return {p[len(prefix) :] for p in read(parent.rsync).foreign if p.startswith(prefix)}

    def held(generation: int) -> bool:
        return FileSigner(child.root / "keys").find_key(layout.key_label(HANDLE, generation)) is not None

    with serve_process(parent.repo, tmp_path / "serve.log") as served:
        connect(parent, child, served.url)
        child.apply()
        old = stored.load(child.root / "published", HANDLE).certified
        assert old is not None and old.generation == 1
        old_key = rc.decode(old.der).key_id

        # -- staging: the new key is certified by the parent and publishes an empty point -------------
        path = child.repo / f"cas/{HANDLE}.yaml"
        path.write_text(path.read_text().replace(f"name: {HANDLE}\n", f"name: {HANDLE}\nkey_generation: 2\n"))
        said = child.apply()
        assert "key generation 2: no certificate for our key in class online yet" in said, said
        kept = stored.load(child.root / "published", HANDLE)
        assert kept.certified is not None and kept.certified.generation == 1
        (new,) = kept.staged
        new_key = rc.decode(new.der).key_id
        assert new.generation == 2 and set(certified_keys()) == {old_key, new_key}
        assert {layout.manifest_name(new_key), layout.crl_name(new_key)} <= child_files()
        plan = child.rpkictl("plan")
        assert "staging" in (plan.stdout + plan.stderr), plan.stdout + plan.stderr
        see("staging", datetime.now(UTC))

        # -- activation after the staging period: the new key signs everything, the old one is revoked
        later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=25)
        assert parent.apply(later) is not None  # the parent's own point, renewed at that time
        said = child.apply("--simulate-time", now=stamp(later))
        assert "key generation 1 of acme revoked by parent online: the key roll is done" in said, said
        assert certified_keys() == [new_key]
        kept = stored.load(child.root / "published", HANDLE)
        assert kept.certified is not None and kept.certified.generation == 2 and kept.staged == ()
        files = child_files()
        assert layout.manifest_name(old_key) not in files and layout.manifest_name(new_key) in files
        at_parent = read(parent.rsync)
        issued = at_parent.certificate("ta/online.cer")
        assert isinstance(issued, rc.ResourceCertificate)
        crl = at_parent.crl(layout.repository("online") + layout.crl_name(issued.key_id))
        assert isinstance(crl, rc_crl.Crl)
        assert rc.decode(old.der).serial in {entry.serial for entry in crl.revoked}
        # the parent's server revoked at its own (real) time; relying parties two days on need its
        # point as the parent keeps it then
        assert parent.apply(later + timedelta(minutes=1)) is not None
        see("activated", later + timedelta(minutes=5))

        # -- cleanup: the old key signs nothing any more and is destroyed --------------------------------
        assert held(1)
        said = child.apply("--simulate-time", now=stamp(later + timedelta(hours=1)))
        assert "destroy-key" in said and not held(1) and held(2), said
        see("cleanup", later + timedelta(hours=1, minutes=5))
