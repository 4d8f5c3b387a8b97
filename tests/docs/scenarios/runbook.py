"""docs/runbook.md: each failure is brought about in the sandbox -- in the past, with --now, so that the
page's commands run at the real time as an operator runs them -- then detected and repaired as shown."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta

from tests.docs.sandbox import Sandbox
from tests.docs.scenarios import scenario

ISP = "cas/members/example-isp.yaml"
OFFLINE_SIGNERS = """  offline:
    type: offline
    key_signer: ta-keys
  ta-keys:
    type: file
    directory: ../offline-keys
"""


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token(output: str, gate: str) -> str:
    match = re.search(rf"--approve ({re.escape(gate)}:[0-9a-f]+)", output)
    assert match, f"no token for {gate}:\n{output}"
    return match.group(1)


@scenario("docs/runbook.md", needs=("git",), substitutions={"/srv/rpki": "{root}"})
def runbook(sandbox: Sandbox) -> None:
    pristine = sandbox.root.parent / "sandbox-state"
    shutil.copytree(sandbox.repo, pristine)

    def fresh() -> None:
        for name in ("state", "keys", "published", "offline-keys"):
            shutil.rmtree(sandbox.root / name, ignore_errors=True)
        shutil.copytree(pristine, sandbox.repo)

    # Our CA is down: the last renewal was 21 hours ago, 3 hours of manifest validity are left.
    sandbox.prepare(f"rpkictl apply state --yes --simulate-time --now {_ago(hours=21)}")
    sandbox.run("cd /srv/rpki")
    warned = sandbox.run("rpkictl check state", expect=1)
    assert "WARNING" in warned.output and "CRITICAL" not in warned.output, warned.output
    assert "example-isp" in sandbox.run("rpkictl status state").stdout

    # A parent is down: its key cannot be used, so the whole apply fails and says how to fix it.
    online_key = sandbox.root / "keys" / "online.pem"
    online_key.chmod(0o644)
    failed = sandbox.run("rpkictl apply state --yes --routine-only", expect=1)
    assert "chmod 600" in failed.output, failed.output
    online_key.chmod(0o600)
    sandbox.run("rpkictl apply state --yes --routine-only")
    # the loop applies what is committed: the desired state is a Git checkout, as on a CA host
    sandbox.prepare("git init -q -b main state && git -C state add . && git -C state commit -q -m deployed")
    sandbox.run("rpkictl reconcile state --once")
    sandbox.run("rpkictl check state", expect=0)

    # The publication point expired: nothing renewed for three days.
    fresh()
    sandbox.prepare(f"rpkictl apply state --yes --simulate-time --now {_ago(days=3)}")
    assert "expired" in sandbox.run("rpkictl check state", expect=2).output
    sandbox.run("rpkictl plan state", expect=2)
    sandbox.run("rpkictl apply state --yes")
    sandbox.run("rpkictl check state", expect=0)

    # Mass deletion: a commit empties example-isp.
    sandbox.prepare("git init -q -b main state && git -C state add . && git -C state commit -q -m published")
    isp = sandbox.repo / ISP
    before = isp.read_text()
    isp.write_text(before.split("roas:")[0] + "roas: []\n")
    sandbox.prepare("git -C state commit -q -am 'example-isp: no ROAs'")
    gated = sandbox.run("rpkictl plan state", expect=3)
    token = _token(gated.output, "ca-empty@example-isp")
    sandbox.run("rpkictl apply state --yes --routine-only")
    sandbox.run("git -C state revert --no-edit HEAD")
    assert isp.read_text() == before
    sandbox.prepare("rpkictl plan state", expect=0)
    sandbox.prepare("git -C state revert --no-edit HEAD")  # the deletion again, this time meant
    sandbox.run("rpkictl apply state --yes --approve GATE:HASH", subst={"GATE:HASH": token})
    assert not list((sandbox.root / "published" / "rsync" / "example-isp").glob("*.roa"))

    # An HSM (here: the key directory's file for online) is lost: an error, never a new key.
    tal = sandbox.prepare("rpkictl tal state").stdout
    (sandbox.root / "keys" / "online.pem").unlink()
    refused = sandbox.run("rpkictl apply state", expect=1)
    assert "never re-created" in refused.output and "online.pem" in refused.output, refused.output
    assert "never re-created" not in sandbox.prepare("rpkictl plan state", expect=0).output  # no key read
    online = sandbox.repo / "cas" / "online.yaml"
    online.write_text(online.read_text().replace("name: online\n", "name: online\nkey_generation: 2\n", 1))
    assert "key_generation: 2" in online.read_text()
    lost = sandbox.prepare("rpkictl apply state", expect=3)  # apply plans with what the signer holds
    tokens = {
        "key-missing@online:HASH": _token(lost.output, "key-missing@online"),
        "trust-anchor@ta:HASH": _token(lost.output, "trust-anchor@ta"),
    }
    sandbox.run(
        "rpkictl apply state --yes --approve key-missing@online:HASH --approve trust-anchor@ta:HASH",
        subst=tokens,
    )
    sandbox.prepare("rpkictl plan state", expect=0)
    sandbox.run("rpkictl tal state --out published/ta.tal")
    assert (sandbox.root / "published" / "ta.tal").read_text() == tal  # the trust anchor kept its key

    # The publication point is deleted: rebuilt from Git and the keys.
    shutil.rmtree(sandbox.root / "published")
    rebuild = sandbox.run("rpkictl plan state", expect=2)
    assert "not published" in rebuild.stdout, rebuild.stdout
    assert "the signers here hold the key(s) ta, online_g2, example-isp" in rebuild.stdout, rebuild.stdout
    sandbox.run("rpkictl apply state --yes")
    assert sandbox.prepare("rpkictl tal state").stdout == tal

    # The offline trust anchor's renewal was missed: the last ceremony was 70 days ago.
    fresh()
    rpki = sandbox.repo / "rpki.yaml"
    rpki.write_text(rpki.read_text() + OFFLINE_SIGNERS)
    ta = sandbox.repo / "cas" / "ta.yaml"
    ta.write_text(ta.read_text().replace("trust_anchor: true\n", "trust_anchor: true\nsigner: offline\n"))
    then, signed = _ago(days=70), _ago(days=70, hours=-1)
    sandbox.prepare(f"rpkictl apply state --yes --simulate-time --now {then}")
    out = sandbox.prepare(
        f"rpkictl ta sign published/ta-request.json --out response.json --repo state --yes --now {signed}"
    ).output
    key = re.search(r"with key ([0-9a-f]{40})", out)
    assert key, out
    sandbox.prepare(f"rpkictl ta import response.json state --expect-key {key.group(1)} --now {signed}")
    sandbox.prepare(
        f"rpkictl apply state --yes --routine-only --simulate-time --now {_ago(hours=1)}"
    )  # online CAs renewed
    (sandbox.root / "published" / "ta-request.json").unlink(missing_ok=True)
    reminder = sandbox.run("rpkictl check state", expect=1)
    assert "ta:" in reminder.output, reminder.output
    sandbox.run("rpkictl apply state --yes --routine-only")
    assert (sandbox.root / "published" / "ta-request.json").is_file()
