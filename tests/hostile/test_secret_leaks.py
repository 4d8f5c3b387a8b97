"""Secrets stay where they are: a pull request that links a private key, a shadow file or a credentials
file into the desired-state repository never gets a byte of it into any output.

The secrets are made here, at test time (a fresh RSA key, a shadow-shaped file, a JSON credentials file);
nothing real is read. Every channel a CI job or a monitoring system sees is searched for them: each
command's stdout and stderr, saved plans, status pages, the audit log and every cache file.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from tests.helpers import scratch_copy
from tests.test_cli import rpkictl


def _pem_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


def _make_secrets(directory: Path) -> dict[Path, list[str]]:
    """Three secret files and, for each, the strings that must never appear anywhere."""
    directory.mkdir()
    pem = _pem_key()
    pem_path = directory / "ta.pem"
    pem_path.write_text(pem)
    body = [line for line in pem.splitlines() if not line.startswith("-----")]
    # Any 24 characters of the key's body would be a leak: look for a window of each line.
    needles = [line[20:44] for line in body[:-1]]

    user = f"svc{secrets.token_hex(3)}"
    salt = secrets.token_hex(4)
    digest = base64.b64encode(secrets.token_bytes(48)).decode().replace("+", ".").rstrip("=")
    shadow_path = directory / "shadow"
    shadow_path.write_text(
        f"root:!:19700:0:99999:7:::\n{user}:$6${salt}${digest}:19700:0:99999:7:::\n"
        "daemon:*:19700:0:99999:7:::\n"
    )

    client_secret = f"cs-{secrets.token_urlsafe(24)}"
    api_token = base64.b64encode(secrets.token_bytes(30)).decode()
    credentials_path = directory / "credentials.json"
    credentials_path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_id": "1234567890",
                "client_secret": client_secret,
                "api_token": api_token,
                "private_key": pem,
            }
        )
    )
    return {
        pem_path: needles,
        shadow_path: [user, salt, digest[:24]],
        credentials_path: [client_secret, client_secret[3:20], api_token[:24], *needles[:3]],
    }


def _every_file(root: Path, skip: tuple[Path, ...]) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if any(path == s or s in path.parents for s in skip):
            continue
        if path.is_file() and not path.is_symlink():
            found.append(path)
    return found


def _assert_nowhere(needles: list[str], channels: dict[str, str]) -> None:
    leaks = [(name, needle) for name, text in channels.items() for needle in needles if needle in text]
    assert not leaks, f"secret text found in: {sorted({name for name, _ in leaks})}"


def _run_everything(base: Path, repo: Path, out: Path) -> dict[str, str]:
    """Each command a pipeline or an operator runs, in every output format; their stdout and stderr."""
    out.mkdir(exist_ok=True)
    commands: list[tuple[str, ...]] = [
        ("validate", str(repo)),
        ("plan", str(repo)),
        ("plan", str(repo), "--format", "markdown", "--out", str(out / "plan-md.json")),
        ("plan", str(repo), "--format", "json", "--out", str(out / "plan.json")),
        ("apply", str(repo), "--yes"),
        ("apply", str(out / "plan.json"), "--yes"),
        ("check", str(repo)),
        ("log", str(repo), "--verify"),
        ("tal", str(repo), "--out", str(out / "ta.tal")),
        ("status", str(repo)),
    ]
    for status_format in ("table", "json", "prometheus", "html"):
        commands.append(
            ("status", str(repo), "--format", status_format, "--out", str(out / f"st.{status_format}"))
        )
    channels: dict[str, str] = {}
    for command in commands:
        result = rpkictl(*command, cwd=base)
        assert "Traceback" not in result.stderr, (command, result.stderr[-2000:])
        channels[f"{' '.join(command[:1] + command[2:])}: stdout"] = result.stdout
        channels[f"{' '.join(command[:1] + command[2:])}: stderr"] = result.stderr
    return channels


def test_linked_secrets_reach_no_output_channel(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    first = rpkictl("apply", str(scratch.repo), "--yes", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    planted = _make_secrets(tmp_path / "secrets")
    pem, shadow, credentials = planted
    (scratch.repo / "cas" / "leak.yaml").symlink_to(os.path.relpath(pem, scratch.repo / "cas"))
    (scratch.repo / "cas" / "sub").mkdir()
    (scratch.repo / "cas" / "sub" / "shadow.yaml").symlink_to(shadow)
    (scratch.repo / "cas" / "credentials.yaml").symlink_to(credentials)

    channels = _run_everything(tmp_path, scratch.repo, tmp_path / "out")
    files = _every_file(tmp_path, skip=(tmp_path / "secrets", tmp_path / "keys"))
    assert any(f.parent.name == "cache" for f in files) and any(f.name == "audit.jsonl" for f in files)
    for path in files:
        channels[str(path.relative_to(tmp_path))] = path.read_bytes().decode("utf-8", "replace")
    _assert_nowhere([needle for needles in planted.values() for needle in needles], channels)

    validate = rpkictl("validate", str(scratch.repo), cwd=tmp_path)
    assert validate.returncode == 1
    for name in ("cas/leak.yaml", "cas/sub/shadow.yaml", "cas/credentials.yaml"):
        line = next((ln for ln in validate.stderr.splitlines() if name in ln), "")
        assert "outside the desired-state" in line, validate.stderr


def test_a_link_inside_the_repository_is_still_read(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    (scratch.repo / "shared").mkdir()
    (scratch.repo / "cas" / "online.yaml").rename(scratch.repo / "shared" / "online.yaml")
    (scratch.repo / "cas" / "online.yaml").symlink_to("../shared/online.yaml")
    result = rpkictl("validate", str(scratch.repo), cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_key_material_written_into_the_repository_is_never_echoed(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    pem = _pem_key()
    scratch.write("cas/oops.yaml", pem)
    scratch.write("cas/quoted.yaml", f"name: {json.dumps(pem)}\nresources: {{asn: [1]}}\n")
    token = base64.b64encode(secrets.token_bytes(60)).decode()
    scratch.write("cas/token.yaml", f"name: ta2\nparent: ta\nsigner: {token}\nresources: {{asn: [1]}}\n")
    result = rpkictl("validate", str(scratch.repo), cwd=tmp_path)
    assert result.returncode == 1
    body = [line for line in pem.splitlines() if not line.startswith("-----")]
    output = result.stdout + result.stderr
    assert "oops.yaml" in output and "quoted.yaml" in output and "token.yaml" in output, output
    _assert_nowhere([line[20:44] for line in body[:-1]] + [token[10:34]], {"validate": output})


def test_a_long_value_is_quoted_as_a_short_excerpt(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    scratch.write("cas/long.yaml", f"name: {'x' * 5000}\nresources: {{asn: [1]}}\n")
    result = rpkictl("validate", str(scratch.repo), cwd=tmp_path)
    assert result.returncode == 1
    line = next(ln for ln in result.stderr.splitlines() if "long.yaml" in ln)
    assert "xxxx" in line and len(line) < 400, line


def test_an_invalid_file_is_not_kept_in_the_parse_cache(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert rpkictl("apply", str(scratch.repo), "--yes", cwd=tmp_path).returncode == 0
    value = f"v-{secrets.token_hex(12)}"
    scratch.write("cas/notes.yaml", f"password: {value}\nname: notes\n")
    assert rpkictl("validate", str(scratch.repo), cwd=tmp_path).returncode == 1
    cache = tmp_path / "published" / "cache" / "desired.json"
    assert cache.is_file()
    assert value not in cache.read_text()


def _cache_modes(cache: Path) -> dict[str, int]:
    return {f.name: stat.S_IMODE(f.stat().st_mode) for f in cache.iterdir()}


def test_caches_are_private(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    assert rpkictl("apply", str(scratch.repo), "--yes", cwd=tmp_path).returncode == 0
    cache = tmp_path / "published" / "cache"
    after_apply = _cache_modes(cache)
    assert {"desired.json", "memo.json"} <= set(after_apply)
    scratch.edit("cas/online.yaml", "name: online", "name: online  # edited")
    assert rpkictl("plan", str(scratch.repo), cwd=tmp_path).returncode == 0
    after_plan = _cache_modes(cache)
    assert "plans.json" in after_plan
    modes = [*after_apply.values(), *after_plan.values()]
    assert all(mode == 0o600 for mode in modes), (after_apply, after_plan)
    assert stat.S_IMODE(cache.stat().st_mode) & 0o077 == 0
