"""The pull-request job of examples/github/workflows/rpki-plan.yml, run for real as a GitHub-hosted runner
runs it: no signing key, no PIN or passphrase, no signer configuration and no way into the CA machine,
only the repository's public RRDP notification URL, served over HTTPS on 127.0.0.1 (``tests.e2e.https``).

Two machines, one after the other, in the same working directory (a saved plan names its desired-state
directory by absolute path, so the CA machine applies a runner's plan.json from a checkout at that path):

* the CA machine holds the desired-state checkout, the keys and the publication; it applies, and a web
  server serves a copy of its RRDP files;
* the runner, once the CA machine's directory is out of reach, clones the repository, checks out a pull
  request that adds a ROA, and runs the workflow's own ``run:`` block and step environment, in an
  environment that holds only PATH, HOME, the proxy, the CA bundle and the GITHUB_* files.

The check job of rpki-check.yml finds the repository in order the same way. The plan shows the new ROA
and records the RRDP session and serial it read. Back on the CA machine that
plan applies while nothing moved, and is refused (exit 4) once another publication moved the serial.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from reconciler.publish import rrdp
from tests.e2e.https import ConnectProxy, HttpsServer, ThrowawayCa
from tests.helpers import scratch_copy
from tests.publish.test_rrdp import RRDP_BASE, with_rrdp

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "examples" / "github" / "workflows"
NOTIFICATION = RRDP_BASE + "notification.xml"
ISP = "state/cas/members/example-isp.yaml"
NEW_ROA = "  - {asn: AS64497, prefix: 198.51.100.0/26, comment: new customer}\n"
BIN = Path(sys.executable).parent  # rpkictl, installed with this interpreter
GIT = ["git", "-c", "user.name=Reviewer", "-c", "user.email=rev@example.net", "-c", "init.defaultBranch=main"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def rpkictl(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """rpkictl as the CA machine's apply job runs it (no terminal)."""
    return subprocess.run(
        [str(BIN / "rpkictl"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )


@dataclass
class Machines:
    work: Path  # the working directory both machines use, one at a time
    parked: Path  # where the CA machine's directory is while the runner works: out of the runner's reach
    origin: Path  # the Git remote (GitHub)
    web: Path  # what the web server serves at https://rpki.example.net/
    server: HttpsServer
    proxy: ConnectProxy
    ca: ThrowawayCa
    runner_home: Path  # HOME on the runner: the RRDP cache goes below it
    runner_temp: Path  # ${{ runner.temp }}

    def publish_rrdp(self) -> rrdp.Notification:
        """The web server's copy of the CA machine's RRDP files, as a sync job would keep it."""
        shutil.copytree(self.work / "published" / "rrdp", self.web / "rrdp", dirs_exist_ok=True)
        found = rrdp.read_notification(self.web / "rrdp")
        assert found is not None
        return found

    def park_ca_machine(self) -> None:
        self.work.rename(self.parked)

    def resume_ca_machine(self) -> None:
        shutil.rmtree(self.work)  # the runner is gone
        self.parked.rename(self.work)


@pytest.fixture
def machines(tmp_path: Path, require_tool: object) -> Iterator[Machines]:
    assert callable(require_tool)
    require_tool("git")
    require_tool("openssl")
    work = tmp_path / "work"
    scratch = with_rrdp(scratch_copy(work))  # work/state, and beside it keys/ and published/ once applied
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    (work / ".gitignore").write_text("/keys/\n/published/\n")
    # The workflows' scripts live in the desired-state repository, as docs/github-actions.md says.
    shutil.copytree(ROOT / "scripts" / "github", work / "scripts" / "github")
    git(work, "init", "-q")
    git(work, "add", ".gitignore", "state", "scripts")
    git(work, "commit", "-q", "-m", "desired state")
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-q", "origin", "main")
    applied = rpkictl(work, "apply", "state", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (scratch.root / "keys").is_dir()
    ca = ThrowawayCa.create(tmp_path / "tls", "rpki.example.net")
    web = tmp_path / "web"
    web.mkdir()
    with HttpsServer(web, ca) as server, ConnectProxy(server.port) as proxy:
        home, temp = tmp_path / "runner-home", tmp_path / "runner-temp"
        home.mkdir()
        temp.mkdir()
        found = Machines(work, tmp_path / "ca-machine", origin, web, server, proxy, ca, home, temp)
        found.publish_rrdp()
        yield found


@dataclass
class JobStep:
    code: int
    output: str
    outputs: dict[str, str]
    plan_dir: Path


def run_hosted_step(machines: Machines, workflow: str, job: str, script: str) -> JobStep:
    """The step of ``workflow``'s ``job`` that runs ``scripts/github/SCRIPT``: its run: block and its env,
    with the expressions the runner substitutes, and nothing else from this process's environment."""
    temp, home = machines.runner_temp, machines.runner_home
    jobs = YAML(typ="safe").load((WORKFLOWS / workflow).read_text())["jobs"]
    (step,) = [s for s in jobs[job]["steps"] if f"scripts/github/{script}" in s.get("run", "")]
    expressions = {
        "${{ runner.temp }}": str(temp),
        "${{ vars.RPKI_RRDP_URL }}": NOTIFICATION,
        "${{ github.base_ref }}": "main",
    }
    step_env = {}
    for name, shown in step.get("env", {}).items():
        value = shown
        for expression, substitute in expressions.items():
            value = value.replace(expression, substitute)
        assert "${{" not in value, (name, shown)
        step_env[name] = value
    outputs, summary = temp / "github_output", temp / "step_summary"
    outputs.write_text("")
    summary.write_text("")
    env = {
        "PATH": f"{BIN}{os.pathsep}/usr/bin:/bin",
        "HOME": str(home),
        "https_proxy": machines.proxy.url,
        "SSL_CERT_FILE": str(machines.ca.ca_pem),
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_BASE_REF": "main",
        **step_env,
    }
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],  # as the runner runs run:
        cwd=machines.work,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
        env=env,
    )
    found: dict[str, str] = {}
    for line in outputs.read_text().splitlines():
        key, _, value = line.partition("=")
        found[key] = value
    plan_dir = Path(step_env.get("RPKI_PLAN_DIR", machines.work))
    return JobStep(result.returncode, result.stdout + result.stderr, found, plan_dir)


def plan_step(machines: Machines) -> JobStep:
    """rpki-plan.yml's "Validate and plan", the pull-request job's body."""
    return run_hosted_step(machines, "rpki-plan.yml", "plan", "plan.sh")


def test_a_hosted_runner_plans_a_pull_request_from_rrdp_alone(machines: Machines, tmp_path: Path) -> None:
    served = machines.publish_rrdp()
    machines.park_ca_machine()

    # The runner: a fresh clone of main, where the hourly check finds the repository in order ...
    work = machines.work
    git(tmp_path, "clone", "-q", str(machines.origin), str(work))
    check = run_hosted_step(machines, "rpki-check.yml", "check", "check.sh")
    assert check.code == 0 and check.outputs["status"] == "ok", check.output

    # ... and the pull request's commit on top of main.
    git(work, "checkout", "-q", "-b", "add-roa")
    isp = work / ISP
    isp.write_text(isp.read_text() + NEW_ROA)
    git(work, "commit", "-q", "-am", "example-isp: a ROA for the new customer")
    git(work, "push", "-q", "origin", "add-roa")
    requests_before = len(machines.server.requests)

    step = plan_step(machines)

    assert step.code == 0, step.output
    assert step.outputs["planned"] == "true" and step.outputs["plan_exit"] == "2", step.output
    assert step.outputs["has_changes"] == "true"
    assert step.outputs["approval_required"] == "false"
    comment = (step.plan_dir / "plan.md").read_text()
    assert comment.startswith("<!-- rpkictl-plan -->")
    assert "198.51.100.0/26" in comment and "AS64497" in comment, comment  # the new ROA
    assert "cas/members/example-isp.yaml" in comment  # the entry changed since --base
    plan = json.loads((step.plan_dir / "plan.json").read_text())
    assert plan["observed"]["source"] == {
        "kind": "rrdp",
        "uri": NOTIFICATION,
        "session_id": served.session_id,
        "serial": served.serial,
    }
    assert plan["desired"]["git_commit"] == git(work, "rev-parse", "HEAD")
    # Everything came over HTTPS, through the proxy, for the public host name ...
    assert machines.proxy.tunnels and set(machines.proxy.tunnels) == {"rpki.example.net:443"}
    assert [p.rsplit("/", 1)[-1] for p in machines.server.requests] == [
        "notification.xml",  # the check: the snapshot, into the cache under HOME
        "snapshot.xml",
        "notification.xml",  # the plan: nothing new since
    ]
    assert requests_before == 2
    # ... and nothing was looked for on the runner's disk: no keys, no publication directory made.
    assert not (work / "keys").exists() and not (work / "published").exists()
    artifact = tmp_path / "artifact.json"
    shutil.copy(step.plan_dir / "plan.json", artifact)

    # The CA machine: the pull request merged, its reviewed plan applies while nothing moved ...
    machines.resume_ca_machine()
    git(work, "fetch", "-q", "origin")
    git(work, "merge", "-q", "--ff-only", "origin/add-roa")
    new_roa = work / "published" / "rsync" / "example-isp" / "AS64497_198-51-100-0_26.roa"
    assert not new_roa.exists()
    applied = rpkictl(work, "apply", str(artifact), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert new_roa.is_file()

    # ... and one read before another publication moved the serial is refused. The pull request changes
    # again; the runner plans it against the serial the apply above published ...
    after_first = machines.publish_rrdp()
    assert after_first.session_id == served.session_id and after_first.serial == served.serial + 1
    machines.park_ca_machine()
    git(tmp_path, "clone", "-q", "--branch", "add-roa", str(machines.origin), str(work))
    isp = work / ISP
    isp.write_text(isp.read_text().replace("/26, comment: new", "/26, max_length: 27, comment: new"))
    git(work, "commit", "-q", "-am", "example-isp: the new customer announces /27s too")
    git(work, "push", "-q", "origin", "add-roa")
    again = plan_step(machines)
    assert again.code == 0 and again.outputs["plan_exit"] == "2", again.output
    shutil.copy(again.plan_dir / "plan.json", artifact)
    assert json.loads(artifact.read_text())["observed"]["source"]["serial"] == after_first.serial

    # ... then, on the CA machine, the merge's own apply publishes first (serial + 1), and the plan the
    # runner made before that is stale.
    machines.resume_ca_machine()
    git(work, "fetch", "-q", "origin")
    git(work, "merge", "-q", "--ff-only", "origin/add-roa")
    assert rpkictl(work, "apply", "state", "--yes").returncode == 0
    moved = rrdp.read_notification(work / "published" / "rrdp")
    assert moved is not None and moved.serial == after_first.serial + 1
    served_tree = (work / "published" / "rsync").resolve()
    refused = rpkictl(work, "apply", str(artifact), "--yes")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "stale" in refused.stderr, refused.stderr
    assert (work / "published" / "rsync").resolve() == served_tree  # nothing published
