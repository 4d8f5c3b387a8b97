"""The benchmark's key pool (``benchmarks/keypool.py``): keys generated beforehand, each CA key drawn once,
the one-time keys in turn; only where keys come from changes, not what apply does with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import keypool
from reconciler.signers import files
from reconciler.signers.files import FileSigner, OneTimeKey


def test_the_pool_is_topped_up_and_a_piece_cut_short_is_left_out(tmp_path: Path) -> None:
    pool = tmp_path / "keys.bin"
    assert keypool.ensure(pool, cas=3) == 3 + keypool.ONE_TIME
    assert keypool.ensure(pool, cas=3) == 0
    assert keypool.ensure(pool, cas=5) == 2
    stored = list(keypool._stored(pool))
    assert len(stored) == len(set(stored)) == 5 + keypool.ONE_TIME
    pool.write_bytes(pool.read_bytes()[:-10])  # an interrupted top-up
    assert len(list(keypool._stored(pool))) == 4 + keypool.ONE_TIME


def test_ca_keys_are_drawn_once_and_one_time_keys_in_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = tmp_path / "keys.bin"
    keypool.ensure(pool, cas=2)
    monkeypatch.setattr(files, "rsa", files.rsa)  # put back after the test
    monkeypatch.setattr(OneTimeKey, "__init__", OneTimeKey.__init__)
    keypool.install(pool)
    signer = FileSigner(tmp_path / "ca-keys")
    made = [signer.create_key("a"), signer.create_key("b")]
    assert len(set(made)) == 2
    assert FileSigner(tmp_path / "ca-keys").find_key("a") == made[0]  # written as any key file is
    with pytest.raises(SystemExit, match="too few keys"):
        signer.create_key("c")
    one_time = [OneTimeKey().key_id for _ in range(keypool.ONE_TIME + 1)]
    assert len(set(one_time)) == keypool.ONE_TIME and one_time[0] == one_time[-1]
    assert not set(made) & set(one_time)
