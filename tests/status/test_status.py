"""``rpkictl status`` and ``check`` on a real publication point: what each CA's objects say, drift told
apart from scheduled renewals, and every format rendering the same report."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler import engine, layout
from reconciler.apply import audit
from reconciler.plan.model import Severity
from reconciler.status import prometheus
from reconciler.status.model import ObjectKind, StatusReport
from tests.helpers import T0, Scratch, later, scratch_copy
from tests.test_cli_review import rpkictl


def _at(hours: float) -> str:
    return later(hours).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def applied(tmp_path: Path) -> Scratch:
    scratch = scratch_copy(tmp_path)
    assert scratch.apply(T0) is not None
    return scratch


def _status(scratch: Scratch, hours: float = 1) -> StatusReport:
    return engine.status(engine.open_workspace(scratch.repo), later(hours))


def test_status_reads_each_ca_back_from_the_publication_point(applied: Scratch) -> None:
    report = _status(applied)
    assert [(ca.name, ca.depth, ca.parent) for ca in report.cas] == [
        ("ta", 0, None),
        ("online", 1, "ta"),
        ("example-isp", 2, "online"),
    ]
    isp = report.cas[2]
    desired = engine.open_workspace(applied.repo).desired.ca("example-isp")
    assert isp.roas_desired == len(desired.roas) and isp.roa_objects == len(desired.roas)
    assert isp.vrps == isp.vrps_desired == len(applied.desired_vrps())
    assert isp.resources["asn"] == "AS64496-AS64497"
    key = engine.open_workspace(applied.repo).keys()["example-isp"][1]
    assert isp.key.key_id == key.hex() and isp.key.signer_type == "file" and isp.key.roll_phase is None
    times = {o.kind: o for o in isp.objects}
    assert set(times) == {ObjectKind.CERTIFICATE, ObjectKind.MANIFEST, ObjectKind.CRL, ObjectKind.ROA}
    # read back from the DER: the manifest published at T0 is valid 24 h and renewed 8 h before
    assert times[ObjectKind.MANIFEST].expires == T0 + timedelta(hours=24)
    assert times[ObjectKind.MANIFEST].renew_at == T0 + timedelta(hours=16)
    assert times[ObjectKind.MANIFEST].path == layout.repository("example-isp") + layout.manifest_name(key)
    assert times[ObjectKind.CERTIFICATE].expires == T0 + timedelta(weeks=52)
    assert isp.manifest_number is not None and isp.drift == 0 and isp.renewals_due == 0
    assert report.severity == "info" and not report.problems and all(not ca.problems for ca in report.cas)
    assert report.last_apply is None  # the library apply writes no audit record; the CLI does


def test_scheduled_renewals_are_not_drift_but_a_deleted_roa_is(applied: Scratch) -> None:
    due = _status(applied, 17)  # inside the 8 h renewal window of the manifests and CRLs
    isp = due.cas[2]
    assert isp.renewals_due == 2 and isp.drift == 0 and due.severity == "info"
    roa = next(applied.rsync.resolve().glob("example-isp/*.roa"))
    roa.unlink()
    drifted = _status(applied, 1)
    isp = drifted.cas[2]
    assert isp.drift >= 1 and isp.drift_review >= 1 and isp.roa_objects == isp.roas_desired - 1
    assert drifted.severity == "warning"
    assert any("between the desired state and what is published" in p.message for p in isp.problems)


def test_check_fails_on_drift_and_on_the_soonest_expiry_anywhere(applied: Scratch) -> None:
    assert rpkictl("check", str(applied.repo), "--now", _at(1)).returncode == 0
    # a certificate expiring: 52 weeks after T0 (the planner would renew it 4 weeks before)
    late = (T0 + timedelta(weeks=52) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = rpkictl("check", str(applied.repo), "--now", late, "--warn", "12h", "--critical", "4h")
    assert result.returncode == 2
    assert "CRITICAL: example-isp: certificate expires in 3h" in result.stdout
    assert "CRITICAL: example-isp: ROA example-isp/" in result.stdout
    (applied.rsync.resolve() / "example-isp").joinpath("stray.roa").write_bytes(b"not a ROA")
    drift = rpkictl("check", str(applied.repo), "--now", _at(1))
    assert drift.returncode == 1, drift.stdout
    # the stray file is withdrawn (a reviewed change) and the manifest and CRL re-signed without it
    assert (
        "WARNING: example-isp: 3 changes between the desired state and what is published "
        "(1 need a reviewed apply)" in drift.stdout
    )


def test_status_json_is_the_report_and_last_apply_comes_from_the_audit_log(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert rpkictl("apply", str(scratch.repo), "--yes", "--simulate-time", "--now", _at(0)).returncode == 0
    result = rpkictl("status", str(scratch.repo), "--format", "json", "--now", _at(2))
    assert result.returncode == 0, result.stderr
    report = StatusReport.model_validate_json(result.stdout)
    assert report.last_apply is not None and report.last_apply.status == "applied"
    assert report.last_success == report.last_apply.time
    assert [ca.name for ca in report.cas] == ["ta", "online", "example-isp"]
    assert json.loads(result.stdout)["format_version"] == "1.0"


def test_status_table_shows_the_tree_and_the_problems(applied: Scratch) -> None:
    narrow = rpkictl("status", str(applied.repo), "--now", _at(23))
    assert narrow.returncode == 0
    lines = narrow.stdout.splitlines()
    assert any(line.startswith("└── ta") for line in lines)
    assert any(re.match(r"\s+└── online\b", line) for line in lines)
    assert any(re.match(r"\s+└── example-isp\b", line) for line in lines)
    assert "overdue since 7h ago" in narrow.stdout and "mft/CRL 1h" in narrow.stdout
    assert "WARNING: 2 problem(s)" in narrow.stdout
    out = applied.root / "status.txt"
    wide = rpkictl("status", str(applied.repo), "--now", _at(1), "--out", str(out))
    assert wide.returncode == 0 and wide.stdout == ""
    text = out.read_text()
    assert "│ ta " in text and "└─ example-isp" in text and "OK: 0 problem(s)" in text


def test_prometheus_exposition_carries_timestamps_per_ca_and_kind(applied: Scratch) -> None:
    report = _status(applied)
    text = prometheus.render(report)
    samples = dict(
        re.match(r"^(\S+) (\S+)$", line).groups()  # type: ignore[union-attr]
        for line in text.splitlines()
        if not line.startswith("#")
    )
    mft = samples['rpki_object_next_update_timestamp_seconds{ca="example-isp",kind="manifest"}']
    assert float(mft) == (T0 + timedelta(hours=24)).timestamp()
    renew = samples['rpki_object_renewal_timestamp_seconds{ca="example-isp",kind="manifest"}']
    assert float(renew) == (T0 + timedelta(hours=16)).timestamp()
    assert samples['rpki_vrps{ca="example-isp"}'] == str(len(applied.desired_vrps()))
    assert samples['rpki_drift_changes{ca="example-isp"}'] == "0"
    assert samples["rpki_status_severity"] == "0"
    assert float(samples["rpki_status_generated_timestamp_seconds"]) == later(1).timestamp()
    # every metric has HELP and TYPE, and names are valid
    names = {line.split(" ")[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert all(re.fullmatch(r"rpki_[a-z_]+", name) for name in names) and len(names) >= 15


def test_prometheus_out_replaces_the_file_in_one_rename(applied: Scratch) -> None:
    target = applied.root / "textfile" / "rpki.prom"
    target.parent.mkdir()
    target.write_text("old\n")
    inode = target.stat().st_ino
    result = rpkictl("status", str(applied.repo), "--format", "prometheus", "--out", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_text().startswith("# HELP rpki_status_generated_timestamp_seconds")
    assert target.stat().st_ino != inode  # a new file renamed over the old one, not rewritten in place
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["rpki.prom"]  # no temporary left behind


def test_check_findings_are_the_status_problems(applied: Scratch) -> None:
    workspace = engine.open_workspace(applied.repo)
    report = engine.status(workspace, later(23))
    findings = engine.findings(report)
    assert {(f.severity, f.ca) for f in findings} == {
        (Severity.WARNING, "online"),
        (Severity.WARNING, "example-isp"),
    }
    assert report.severity == "warning"


def test_an_apply_killed_after_it_started_is_the_last_apply_and_not_a_success(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert rpkictl("apply", str(scratch.repo), "--yes", "--simulate-time", "--now", _at(0)).returncode == 0
    applied = _status(scratch).last_success
    log = engine.open_workspace(scratch.repo).desired.audit_log_path
    audit.append(log, {"status": "started", "plan_id": "p2", "who": "cron"}, now=later(2))
    report = _status(scratch, 3)
    assert report.last_apply is not None and report.last_apply.status == audit.INTERRUPTED
    assert applied is not None and report.last_success == applied
    assert report.last_apply.who == "cron"
