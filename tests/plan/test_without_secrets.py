"""``plan``, ``validate``, ``status``, ``check`` and ``tal`` need no private key, PIN or passphrase: each
CA's key is the one its published certificate shows, so a plan made where the keys are not (a pull
request's runner) is the very plan the CA machine makes. What the signers hold is apply's to check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler import engine
from reconciler.plan.approval import rrdp_moved, stale_reasons
from reconciler.plan.document import PlanDocument, SourceDoc, compute_plan_id
from reconciler.plan.model import Action
from reconciler.signers import FileSigner
from tests.helpers import Scratch, later, scratch_copy

PASSPHRASE_ENV = "RPKI_TEST_KEY_PASSPHRASE"
ISP = "cas/members/example-isp.yaml"
NOTIFICATION = "https://rpki.example.net/rrdp/notification.xml"
NEW_ROA = "  - prefix: 192.0.2.128/25\n    asn: 64497\n"


def run(*args: str, passphrase: bool) -> subprocess.CompletedProcess[str]:
    """``rpkictl ARGS`` with the key passphrase in its environment, or with no secret at all."""
    env = {k: v for k, v in os.environ.items() if k != PASSPHRASE_ENV}
    if passphrase:
        env[PASSPHRASE_ENV] = "correct horse battery staple"
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def at(hours: float) -> str:
    return f"{later(hours):%Y-%m-%dT%H:%M:%SZ}"


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scratch:
    """The example with encrypted keys (their passphrase in an environment variable), applied once."""
    scratch = scratch_copy(tmp_path)
    signer = "    directory: ../keys"
    scratch.edit("rpki.yaml", signer, f"{signer}\n    passphrase_env: {PASSPHRASE_ENV}")
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")
    assert scratch.apply(later(0)) is not None
    return scratch


def keys_away(scratch: Scratch) -> None:
    """What a pull request's runner has of the keys: nothing (and no passphrase: see :func:`run`)."""
    (scratch.root / "keys").rename(scratch.root / "keys.elsewhere")


def listing(directory: Path) -> dict[str, tuple[int, int]]:
    """Every entry below ``directory`` with its size and modification time: what a plan must not touch."""
    return {
        str(p.relative_to(directory)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


def plan_json(scratch: Scratch, hours: float, *extra: str, passphrase: bool) -> dict[str, Any]:
    args = ("plan", str(scratch.repo), "--now", at(hours), "--format", "json", *extra)
    result = run(*args, passphrase=passphrase)
    assert result.returncode in (0, 2, 3), result.stderr
    found = json.loads(result.stdout)
    assert isinstance(found, dict)
    return found


def test_a_plan_without_keys_or_passphrase_is_the_plan_made_with_them(applied: Scratch) -> None:
    with_keys = plan_json(applied, 1, passphrase=True)
    keys_away(applied)
    without = plan_json(applied, 1, passphrase=False)
    assert without["changes"] == with_keys["changes"] == []
    assert without["plan_id"] == with_keys["plan_id"]
    assert not (applied.root / "keys").exists()  # planning created no key directory, and no key


def test_a_new_roa_plans_the_same_changes_without_the_keys(applied: Scratch) -> None:
    applied.edit(ISP, "roas:\n", "roas:\n" + NEW_ROA)
    with_keys = plan_json(applied, 1, passphrase=True)
    keys_away(applied)
    without = plan_json(applied, 1, passphrase=False)
    assert [c["address"] for c in with_keys["changes"]]  # the ROA, its manifest and CRL
    assert without["changes"] == with_keys["changes"]
    assert without["vrps"] == with_keys["vrps"]
    assert without["plan_id"] == with_keys["plan_id"]
    assert not any(c["action"] == "create-key" for c in without["changes"])


def test_validate_status_check_and_tal_need_no_secret(applied: Scratch) -> None:
    tal_with_keys = run("tal", str(applied.repo), passphrase=True)
    assert tal_with_keys.returncode == 0, tal_with_keys.stderr
    keys_away(applied)
    validate = run("validate", str(applied.repo), passphrase=False)
    assert validate.returncode == 0, validate.stderr
    status = run("status", str(applied.repo), "--now", at(1), "--format", "json", passphrase=False)
    assert status.returncode == 0, status.stderr
    assert "drift" in status.stdout and PASSPHRASE_ENV not in status.stdout + status.stderr
    check = run("check", str(applied.repo), "--now", at(1), passphrase=False)
    assert check.returncode == 0, check.stdout + check.stderr
    tal = run("tal", str(applied.repo), passphrase=False)
    assert tal.returncode == 0, tal.stderr
    assert tal.stdout == tal_with_keys.stdout  # the published trust anchor certificate's key
    assert not (applied.root / "keys").exists()


def test_a_pkcs11_signer_without_its_pin_or_module_does_not_stop_a_plan(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    scratch.edit(
        "rpki.yaml",
        "signers:\n",
        "signers:\n  hsm:\n    type: pkcs11\n    module: /nonexistent/libsofthsm2.so\n    token: rpki\n"
        "    pin_env: RPKI_TEST_UNSET_PIN\n",
    )
    scratch.edit(ISP, "parent: online\n", "parent: online\nsigner: hsm\n")
    assert "RPKI_TEST_UNSET_PIN" not in os.environ
    for command in ("validate", "plan"):
        result = run(command, str(scratch.repo), passphrase=False)
        assert result.returncode in (0, 2), result.stdout + result.stderr
        assert "RPKI_TEST_UNSET_PIN" not in result.stderr


def test_a_plan_writes_nothing_where_the_keys_would_be_nor_creates_a_publication(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    result = run("plan", str(scratch.repo), passphrase=False)
    assert result.returncode == 2, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_plan_published_dir_reads_a_copy_and_writes_nothing_locally(applied: Scratch, tmp_path: Path) -> None:
    applied.edit(ISP, "roas:\n", "roas:\n" + NEW_ROA)
    local = plan_json(applied, 1, passphrase=True)
    copy = tmp_path / "copy"
    shutil.copytree(applied.root / "published", copy, symlinks=True)
    keys_away(applied)
    before = listing(applied.root / "published")
    from_copy = plan_json(applied, 1, "--published", str(copy), passphrase=False)
    from_tree = plan_json(applied, 1, "--published", str(copy / "rsync"), passphrase=False)
    assert listing(applied.root / "published") == before
    assert from_copy["plan_id"] == from_tree["plan_id"] == local["plan_id"]
    observed = from_copy["observed"]
    assert isinstance(observed, dict)
    assert observed["source"] == {"kind": "local", "uri": str(copy), "session_id": None, "serial": None}


def test_plan_published_names_a_missing_directory(applied: Scratch, tmp_path: Path) -> None:
    result = run("plan", str(applied.repo), "--published", str(tmp_path / "nowhere"), passphrase=False)
    assert result.returncode == 1
    assert "no such directory" in result.stderr and "notification.xml" in result.stderr
    assert "Traceback" not in result.stderr


def review(scratch: Scratch, now: datetime) -> PlanDocument:
    workspace = engine.review_workspace(engine.load_desired(scratch.repo))
    return engine.plan_document(workspace, engine.plan(workspace, now))


def test_a_key_roll_plans_the_same_without_the_keys_at_every_step(applied: Scratch) -> None:
    """Staging, activation and cleanup: the review's plan is apply's, but for destroying the retired key,
    which only the signer knows of and which does not make a saved plan stale."""
    applied.edit(ISP, "parent: online\n", "parent: online\nkey_generation: 2\n")
    for hours in (1, 26):
        saved = review(applied, later(hours))
        workspace = engine.open_workspace(applied.repo)
        current = engine.plan_document(workspace, engine.plan(workspace, later(hours)))
        assert saved.plan_id == current.plan_id
        assert engine.saved_plan_problems(workspace, saved, current) == []
        applied.apply(later(hours))
    saved = review(applied, later(27))
    assert saved.changes == []
    workspace = engine.open_workspace(applied.repo)
    current = engine.plan_document(workspace, engine.plan(workspace, later(27)))
    assert [(c.action, c.generation) for c in current.changes] == [(Action.DESTROY_KEY.value, 1)]
    assert engine.saved_plan_problems(workspace, saved, current) == []


def test_apply_refuses_a_saved_plan_that_cannot_see_a_key_the_signer_holds(applied: Scratch) -> None:
    """A key made by an apply that stopped before it published: a review cannot see it, so its plan
    (create a key) is not what apply would do (use that key); the refusal names the key."""
    applied.edit(ISP, "parent: online\n", "parent: online\nkey_generation: 2\n")
    saved = review(applied, later(1))
    assert any(c.action == Action.CREATE_KEY.value for c in saved.changes)
    signer = FileSigner(applied.root / "keys", b"correct horse battery staple")
    key = signer.create_key("example-isp_g2")
    workspace = engine.open_workspace(applied.repo)
    current = engine.plan_document(workspace, engine.plan(workspace, later(1)))
    (reason,) = engine.saved_plan_problems(workspace, saved, current)
    assert f"example-isp generation 2 (key {key.hex().upper()})" in reason
    assert "no published certificate shows" in reason and "rpkictl apply" in reason


def test_the_source_is_recorded_but_not_part_of_the_plan_id(applied: Scratch) -> None:
    doc = review(applied, later(1))
    assert doc.observed.source is not None and doc.observed.source.kind == "local"
    elsewhere = SourceDoc(kind="rrdp", uri=NOTIFICATION, session_id="s", serial=7)
    moved = doc.model_copy(update={"observed": doc.observed.model_copy(update={"source": elsewhere})})
    assert compute_plan_id(moved) == doc.plan_id


def _with_source(doc: PlanDocument, session: str, serial: int, *, plan_id: str | None = None) -> PlanDocument:
    source = SourceDoc(kind="rrdp", uri=NOTIFICATION, session_id=session, serial=serial)
    update: dict[str, object] = {"observed": doc.observed.model_copy(update={"source": source})}
    if plan_id is not None:
        update["plan_id"] = plan_id
    return doc.model_copy(update=update)


def test_a_stale_plan_names_how_rrdp_moved(applied: Scratch) -> None:
    doc = review(applied, later(1))
    saved = _with_source(doc, "5f0c", 3)
    assert rrdp_moved(saved, _with_source(doc, "5f0c", 3)) is None
    assert rrdp_moved(saved, _with_source(doc, "5f0c", 5)) == (
        "RRDP moved from session 5f0c serial 3 to serial 5 since the plan was made"
    )
    assert "to session 77aa serial 1" in str(rrdp_moved(saved, _with_source(doc, "77aa", 1)))
    reasons = stale_reasons(saved, _with_source(doc, "5f0c", 4, plan_id="other"))
    assert reasons[0] == "RRDP moved from session 5f0c serial 3 to serial 4 since the plan was made"
    assert stale_reasons(saved, _with_source(doc, "5f0c", 4)) == []  # the same plan: nothing moved


def test_an_offline_trust_anchor_is_known_from_rpki_yaml_not_from_a_signer(tmp_path: Path) -> None:
    """The offline trust anchor's pending changes are noticed from rpki.yaml's ``type: offline`` with no
    signer opened; the waiting request is read from the local publication directory only. Once the
    ceremony published its part, a plan without any key is the CA machine's."""
    from tests.offline.test_ceremony import import_online, make_offline, sign_offline  # noqa: PLC0415

    scratch = scratch_copy(tmp_path)
    make_offline(scratch)
    scratch.apply(later(0))  # the online CAs' keys; the trust anchor's part waits in a signing request
    (notice,) = [n for n in review(scratch, later(0)).notices if n.kind == "offline-signing"]
    assert "waits at" in notice.message
    copy = tmp_path / "copy"
    shutil.copytree(scratch.root / "published", copy, symlinks=True)
    elsewhere = engine.review_workspace(engine.load_desired(scratch.repo, caches=False), str(copy))
    assert elsewhere.signers == {}
    doc = engine.plan_document(elsewhere, engine.plan(elsewhere, later(0)))
    (notice,) = [n for n in doc.notices if n.kind == "offline-signing"]
    assert "waits at" not in notice.message and "on the CA machine" in notice.message

    import_online(scratch, sign_offline(scratch, later(0)), later(0))
    scratch.edit(ISP, "roas:\n", "roas:\n" + NEW_ROA)
    workspace = engine.open_workspace(scratch.repo)
    on_ca_machine = engine.plan_document(workspace, engine.plan(workspace, later(1)))
    assert on_ca_machine.changes
    keys_away(scratch)
    assert review(scratch, later(1)).plan_id == on_ca_machine.plan_id


def test_a_lost_publication_is_planned_alike_and_the_ca_machine_says_its_keys_are_there(
    applied: Scratch,
) -> None:
    """Rebuilding a lost publication point: no published certificate shows a key, so the plan creates
    each -- with or without the keys; where the signers open, a notice (not part of the plan's id) says
    they hold those keys and apply uses them."""
    shutil.rmtree(applied.root / "published")
    with_keys = plan_json(applied, 1, passphrase=True)
    keys_away(applied)
    without = plan_json(applied, 1, passphrase=False)
    assert with_keys["plan_id"] == without["plan_id"]
    assert [c["ca"] for c in with_keys["changes"] if c["action"] == "create-key"] == [
        "ta",
        "online",
        "example-isp",
    ]
    held = [n["message"] for n in with_keys["notices"] if n["kind"] == "signer-keys"]
    assert len(held) == 1 and "hold the key(s) ta, online, example-isp" in held[0]
    assert not [n for n in without["notices"] if n["kind"] == "signer-keys"]
    assert not (applied.root / "published").exists()  # planning made no publication directory


def test_a_plan_made_in_another_checkout_applies_in_the_ca_machines_checkout(
    applied: Scratch, tmp_path: Path
) -> None:
    """A pull request's runner checks the desired state out at a path the CA machine does not have: the
    saved plan is applied with the checkout the current directory is in, or the one ``--repo`` names,
    and only while that checkout holds the YAML the plan was made from."""
    runner = tmp_path / "runner" / "state"
    shutil.copytree(applied.repo, runner)
    (runner / ISP).write_text((runner / ISP).read_text().replace("roas:\n", "roas:\n" + NEW_ROA, 1))
    saved = tmp_path / "plan.json"
    made = run(
        "plan",
        str(runner),
        "--published",
        str(applied.root / "published"),
        "--out",
        str(saved),
        passphrase=False,
    )
    assert made.returncode == 2, made.stderr
    shutil.rmtree(tmp_path / "runner")  # the runner is gone; its path is not on the CA machine

    def apply_saved(cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, PASSPHRASE_ENV: "correct horse battery staple"}
        return subprocess.run(
            [sys.executable, "-m", "reconciler", "apply", str(saved), "--yes", *extra],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    nowhere = apply_saved(tmp_path)
    assert nowhere.returncode == 1
    assert "--repo" in nowhere.stderr and str(tmp_path / "runner" / "state") in nowhere.stderr
    unmerged = apply_saved(applied.repo / "cas")  # the CA machine's checkout, before the merge
    assert unmerged.returncode == 4, unmerged.stdout + unmerged.stderr
    assert "desired state changed" in unmerged.stderr
    applied.edit(ISP, "roas:\n", "roas:\n" + NEW_ROA)  # merged
    merged = apply_saved(tmp_path, "--repo", str(applied.repo))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert (applied.root / "published" / "rsync" / "example-isp").is_dir()
    assert "Applied:" in merged.stdout
