"""docs/offline-trust-anchor.md: the first ceremony with the trust anchor's key in a SoftHSM2 token,
exactly as the page configures it (pkcs11 key signer 'ta-keys', token 'ta', PIN in TA_PIN)."""

from __future__ import annotations

import re
import shutil

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario

# The signers of the page's rpki.yaml, added to the bundled example's default signer.
SIGNERS = """  offline:
    type: offline
    key_signer: ta-keys
  ta-keys:
    type: pkcs11
    module: /usr/lib/softhsm/libsofthsm2.so
    token: ta
    pin_env: TA_PIN
"""
PIN = "4711"


@scenario(
    "docs/offline-trust-anchor.md",
    needs=("softhsm2-util",),
    substitutions={"/srv/rpki": "{root}/srv/rpki", "/media/ta": "{root}/media/ta"},
)
def offline_trust_anchor(sandbox: Sandbox) -> None:
    online = sandbox.root / "srv" / "rpki" / "state"
    shutil.copytree(sandbox.repo, online)
    rpki = online / "rpki.yaml"
    rpki.write_text(rpki.read_text() + SIGNERS)
    ta = online / "cas" / "ta.yaml"
    ta.write_text(ta.read_text().replace("trust_anchor: true\n", "trust_anchor: true\nsigner: offline\n"))
    shutil.copytree(online, sandbox.root / "media" / "ta" / "state")  # the offline copy, same commit

    tokens = sandbox.root / "softhsm"
    tokens.mkdir()
    (sandbox.root / "softhsm2.conf").write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
    )
    sandbox.env["SOFTHSM2_CONF"] = str(sandbox.root / "softhsm2.conf")
    sandbox.env.pop("TA_PIN", None)
    sandbox.prepare(f"softhsm2-util --init-token --free --label ta --pin {PIN} --so-pin 8765")

    # Online: the first apply publishes what online keys sign and writes the signing request.
    applied = sandbox.prepare(f"rpkictl apply {online} --yes")
    assert "wait for the offline trust anchor" in applied.output, applied.output
    sandbox.run("rpkictl check /srv/rpki/state", expect=2)  # nothing is valid before the first ceremony

    # Offline: sign the request carried over, with the PIN in the environment.
    shutil.copy(online.parent / "published" / "ta-request.json", sandbox.root / "ta-request.json")
    sandbox.run("export TA_PIN=...", subst={"...": PIN})
    signed = sandbox.run(
        "rpkictl ta sign ta-request.json --out ta-response.json --repo /media/ta/state",
        answer="y",
        prompt="Sign these objects",
    )
    key = re.search(r"with key ([0-9a-f]{40})", signed.output)
    assert key and "a NEW key will be created" in signed.output, signed.output
    assert not list(online.parent.glob("keys/ta*"))  # the key is in the token, not in a file

    # Online: the first import needs the key confirmed.
    refused = sandbox.run("rpkictl ta import ta-response.json /srv/rpki/state", expect=1)
    assert "--expect-key" in refused.output, refused.output
    sandbox.run(
        "rpkictl ta import ta-response.json /srv/rpki/state --expect-key <the key id printed by ta sign>",
        subst={"<the key id printed by ta sign>": key.group(1)},
    )
    sandbox.run("rpkictl check /srv/rpki/state", expect={0, 1})
    assert sandbox.prepare(f"rpkictl tal {online}").stdout.startswith("rsync://rpki.example.net/repo/ta.cer")
