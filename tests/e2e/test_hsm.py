"""The bundled example with its online CAs' keys in an HSM (SoftHSM2 through PKCS#11), checked by real
validators: objects signed inside the token must be exactly as acceptable as file-signed ones.

The trust anchor stays on the file signer, as an offline TA would; ``online`` and ``example-isp`` use a
throw-away SoftHSM2 token, so the chain mixes both signers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from reconciler import engine
from tests.e2e.harness import validate_with_all
from tests.helpers import scratch_copy
from tests.signers.test_pkcs11 import (  # noqa: F401  # fixtures, used by name
    HsmToken,
    hsm_token_fixture,
    softhsm_fixture,
)

HSM_CAS = ("online", "example-isp")


def test_online_cas_signed_in_an_hsm_are_accepted_by_both(
    hsm_token: HsmToken, validators: tuple[str, ...], tmp_path: Path
) -> None:
    scratch = scratch_copy(tmp_path)
    rpki = scratch.repo / "rpki.yaml"
    rpki.write_text(rpki.read_text() + hsm_token.yaml_entry())
    scratch.edit("cas/online.yaml", "parent: ta\n", "parent: ta\nsigner: hsm\n")
    scratch.edit("cas/members/example-isp.yaml", "parent: online\n", "parent: online\nsigner: hsm\n")

    now = datetime.now(UTC).replace(microsecond=0)
    assert scratch.apply(now) is not None

    workspace = engine.open_workspace(scratch.repo)
    tal = scratch.root / "ta.tal"
    tal.write_text(engine.trust_anchor_locator(workspace))
    results = validate_with_all(
        tal, scratch.rsync, workspace.desired.publication.rsync_base, validators=validators
    )
    want = scratch.desired_vrps()
    assert want and set(results) == set(validators)
    for result in results.values():
        assert result.vrps == want, result.summary()
        assert result.warnings == [], result.summary()

    # The online CAs' keys are in the token, under their names, and nowhere on disk.
    with hsm_token.signer() as signer:
        for name in HSM_CAS:
            assert signer.find_key(name) is not None, name
    keys = scratch.root / "keys"
    assert sorted(p.name for p in keys.glob("*.pem")) == ["ta.pem"]
    assert not any(p.name in {f"{name}.pem" for name in HSM_CAS} for p in scratch.root.rglob("*.pem"))
