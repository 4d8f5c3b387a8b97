"""The RRDP serial benchmark (``benchmarks/rrdp_serial.py``): it publishes each serial as it says (spliced
or encoded afresh), serves the tree it was given, and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import rrdp_serial
from reconciler.publish import rrdp


def test_each_serial_is_made_as_it_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rrdp_serial, "_SETTLE_S", 0.0)
    made: list[bool] = []
    original = rrdp.publish_rrdp

    def recorded(*args: object, **kwargs: object) -> rrdp.Written | None:
        written = original(*args, **kwargs)  # type: ignore[arg-type]
        assert written is not None
        made.append(written.spliced)
        return written

    monkeypatch.setattr(rrdp, "publish_rrdp", recorded)
    found = rrdp_serial.measure(tmp_path, objects=40, directories=3, snapshot_bytes=40 * 400, repeat=3)
    assert len(found.spliced_s) == len(found.encoded_s) == 3
    assert made == [False, True, False, False, True, True, False]  # the first serial, then alternating
    state = rrdp.read_notification(tmp_path / "rrdp")
    assert state is not None and state.serial == 7 and len(state.deltas) == 6


def test_it_prints_both_and_removes_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rrdp_serial, "_SETTLE_S", 0.0)
    rrdp_serial.main(
        [
            "--objects",
            "30",
            "--directories",
            "2",
            "--snapshot-mb",
            "0.02",
            "--repeat",
            "2",
            "--scratch",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert "objects 30" in out and "snapshot spliced" in out and "snapshot encoded" in out
    assert list(tmp_path.iterdir()) == []
