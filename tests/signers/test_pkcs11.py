"""PKCS#11 signer, for real against SoftHSM2: keys are made and kept inside a throw-away token.

python-pkcs11 loads the module into this process and SoftHSM2 reads ``SOFTHSM2_CONF`` when it is
initialised, so each token fixture points the variable at its own configuration and re-initialises the
module: every test gets a fresh token directory and sees only its own token.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.exceptions import AttributeSensitive, UserAlreadyLoggedIn

from reconciler.desired.model import Pkcs11SignerConfig
from reconciler.signers import Pkcs11Signer, Signer, SignerError, open_signer
from reconciler.signers.base import key_id
from tests.helpers import missing_tool

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
SOFTHSM_INSTALL_HINT = "apt-get install softhsm2"
PIN = "1234"
SO_PIN = "5678"
PIN_ENV = "RPKI_TEST_HSM_PIN"


@dataclass(frozen=True)
class HsmToken:
    """A freshly initialised SoftHSM2 token, with ``SOFTHSM2_CONF`` pointing at it for this test."""

    module: Path
    label: str
    pin: str
    pin_env: str

    def yaml_entry(self, name: str = "hsm") -> str:
        """This token as an entry of rpki.yaml's ``signers``."""
        return (
            f"  {name}:\n    type: pkcs11\n    module: {self.module}\n    token: {self.label}\n"
            f"    pin_env: {self.pin_env}\n"
        )

    def signer(self) -> Pkcs11Signer:
        return Pkcs11Signer(self.module, self.label, self.pin, pin_env=self.pin_env)

    def session(self) -> pkcs11.Session:
        """A session of the test's own, to look at the token behind the signer's back."""
        token = pkcs11.lib(str(self.module.resolve())).get_token(token_label=self.label)
        try:
            return token.open(user_pin=self.pin, rw=True)
        except UserAlreadyLoggedIn:  # a signer of this test is logged in; the login is per process
            return token.open(rw=True)


@pytest.fixture(name="softhsm")
def softhsm_fixture() -> str:
    """The path of softhsm2-util; the one place that decides what happens when SoftHSM2 is missing."""
    tool = shutil.which("softhsm2-util")
    if tool is None or not SOFTHSM_MODULE.is_file():
        missing_tool(f"SoftHSM2 is not installed (install with: {SOFTHSM_INSTALL_HINT})", "the HSM tests")
    return tool


@pytest.fixture(name="hsm_token")
def hsm_token_fixture(
    softhsm: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HsmToken]:
    """A token labelled ``test`` (user PIN 1234, its variable set) in its own ``SOFTHSM2_CONF``."""
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    monkeypatch.setenv(PIN_ENV, PIN)
    subprocess.run(
        [softhsm, "--init-token", "--free", "--label", "test", "--pin", PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
    )
    # SoftHSM2 reads its configuration in C_Initialize: start it again so it sees this token directory.
    pkcs11.lib(str(SOFTHSM_MODULE.resolve())).reinitialize()
    yield HsmToken(SOFTHSM_MODULE, "test", PIN, PIN_ENV)


def test_is_a_signer(hsm_token: HsmToken) -> None:
    assert isinstance(hsm_token.signer(), Signer)


def test_create_find_sign_and_verify(hsm_token: HsmToken) -> None:
    with hsm_token.signer() as signer:
        assert signer.find_key("online") is None
        kid = signer.create_key("online")
        assert signer.find_key("online") == kid
        public = signer.public_key(kid)
        assert public.key_size == 2048 and public.public_numbers().e == 65537
        assert key_id(public) == kid and len(kid) == 20
        signature = signer.sign(kid, b"to be signed")
        public.verify(signature, b"to be signed", padding.PKCS1v15(), hashes.SHA256())
        with pytest.raises(SignerError, match="already exists"):
            signer.create_key("online")


def test_private_key_stays_in_the_token(hsm_token: HsmToken) -> None:
    with hsm_token.signer() as signer:
        kid = signer.create_key("ta")
    session = hsm_token.session()
    try:
        private = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.RSA, label="ta")
        public = session.get_key(ObjectClass.PUBLIC_KEY, KeyType.RSA, label="ta")
        assert private[Attribute.TOKEN] is True
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        assert private[Attribute.SIGN] is True
        assert private[Attribute.ID] == public[Attribute.ID] == kid
        with pytest.raises(AttributeSensitive):
            private[Attribute.PRIVATE_EXPONENT]
    finally:
        session.close()


def test_a_new_session_finds_the_key_by_label(hsm_token: HsmToken) -> None:
    first = hsm_token.signer()
    kid = first.create_key("example-isp")
    first.close()
    with hsm_token.signer() as again:
        assert again.find_key("example-isp") == kid
        public = again.public_key(kid)
        public.verify(again.sign(kid, b"x"), b"x", padding.PKCS1v15(), hashes.SHA256())


def test_several_keys_with_one_label_are_refused(hsm_token: HsmToken) -> None:
    with hsm_token.signer() as signer:
        signer.create_key("online")
        session = hsm_token.session()
        try:
            session.generate_keypair(KeyType.RSA, 2048, label="online", store=True)
        finally:
            session.close()
        with pytest.raises(SignerError, match="2 private keys with label='online'"):
            signer.find_key("online")


def test_a_deleted_key_is_reported(hsm_token: HsmToken) -> None:
    with hsm_token.signer() as signer:
        kid = signer.create_key("online")
        session = hsm_token.session()
        try:
            session.get_key(ObjectClass.PRIVATE_KEY, KeyType.RSA, label="online").destroy()
        finally:
            session.close()
        with pytest.raises(SignerError, match=f"no key with identifier {kid.hex()}.*deleted"):
            signer.sign(kid, b"x")


def test_destroy_key(hsm_token: HsmToken) -> None:
    """Both halves of the pair leave the token; other keys stay, and a second destroy is an error."""
    with hsm_token.signer() as signer:
        old = signer.create_key("online")
        new = signer.create_key("online-2")
        signer.destroy_key(old)
        assert signer.find_key("online") is None
        with pytest.raises(SignerError, match=f"no key with identifier {old.hex()}"):
            signer.sign(old, b"x")
        with pytest.raises(SignerError, match=f"no key with identifier {old.hex()}"):
            signer.destroy_key(old)
        assert signer.find_key("online-2") == new
        signer.public_key(new).verify(signer.sign(new, b"x"), b"x", padding.PKCS1v15(), hashes.SHA256())
    session = hsm_token.session()
    try:
        assert list(session.get_objects({Attribute.ID: old})) == []
        assert list(session.get_objects({Attribute.LABEL: "online"})) == []
        assert len(list(session.get_objects({Attribute.ID: new}))) == 2
    finally:
        session.close()
    with hsm_token.signer() as again:  # a new session does not find it either
        assert again.find_key("online") is None


def test_destroy_key_finishes_a_half_destroyed_pair(hsm_token: HsmToken) -> None:
    with hsm_token.signer() as signer:
        kid = signer.create_key("online")
        session = hsm_token.session()
        try:
            session.get_key(ObjectClass.PRIVATE_KEY, KeyType.RSA, id=kid).destroy()
            signer.destroy_key(kid)  # only the public key was left
            assert list(session.get_objects({Attribute.ID: kid})) == []
        finally:
            session.close()


def test_two_signers_on_one_token_share_the_login(hsm_token: HsmToken) -> None:
    """PKCS#11 logs in per process: a second signer (a second workspace) must still work."""
    with hsm_token.signer() as first, hsm_token.signer() as second:
        kid = first.create_key("online")
        assert second.find_key("online") == kid
        second.public_key(kid).verify(second.sign(kid, b"x"), b"x", padding.PKCS1v15(), hashes.SHA256())


def test_wrong_pin_names_the_variable_and_not_the_pin(hsm_token: HsmToken) -> None:
    signer = Pkcs11Signer(hsm_token.module, hsm_token.label, "987654", pin_env=PIN_ENV)
    with pytest.raises(SignerError) as info:
        signer.find_key("ta")
    assert PIN_ENV in str(info.value) and "987654" not in str(info.value)
    assert "987654" not in repr(signer)


def test_unknown_token_lists_the_labels_found(hsm_token: HsmToken) -> None:
    signer = Pkcs11Signer(hsm_token.module, "production", PIN, pin_env=PIN_ENV)
    with pytest.raises(SignerError, match=r"no token labelled 'production'.*tokens found: 'test'"):
        signer.find_key("ta")


def test_missing_module_is_named(tmp_path: Path) -> None:
    module = tmp_path / "libmissing.so"
    with pytest.raises(SignerError, match=f"{module} does not exist.*install"):
        Pkcs11Signer(module, "test", PIN, pin_env=PIN_ENV).find_key("ta")


def _config(token: HsmToken, pin_env: str = PIN_ENV) -> Pkcs11SignerConfig:
    return Pkcs11SignerConfig(
        name="hsm", type="pkcs11", module=token.module, token=token.label, pin_env=pin_env
    )


def test_open_signer_reads_the_pin_from_the_environment(hsm_token: HsmToken) -> None:
    signer = open_signer(_config(hsm_token))
    assert isinstance(signer, Pkcs11Signer)
    kid = signer.create_key("online")
    assert signer.find_key("online") == kid
    signer.close()


@pytest.mark.parametrize("value", [None, ""])
def test_open_signer_without_the_pin(
    hsm_token: HsmToken, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(PIN_ENV)
    else:
        monkeypatch.setenv(PIN_ENV, value)
    with pytest.raises(SignerError, match=f"environment variable {PIN_ENV} .* is (not set|empty)"):
        open_signer(_config(hsm_token))
