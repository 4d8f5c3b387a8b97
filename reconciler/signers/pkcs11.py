"""CA keys inside an HSM, used through its PKCS#11 library (python-pkcs11).

Keys are generated inside the token and never leave it: the private key is a token object that is
sensitive and not extractable, so the reconciler only ever sees public keys and signatures. Each key pair
carries the CA name as ``CKA_LABEL`` (how a CA finds its key again, e.g. after a lost publication point)
and the RFC 6487 key identifier as ``CKA_ID`` (how every later call addresses it).

``CKA_ID`` is set *after* generation: the key identifier is the SHA-1 of the public key, which does not
exist before the token has generated it. The pair is generated without an id and both objects then get
it; a key whose ``CKA_ID`` was never set (a crash in between) is still found by label, and its id is
then repaired from its public key.

The PIN is held only in memory and never appears in a message or a log line; messages name the
environment variable that holds it instead.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric import rsa
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import (
    NoSuchToken,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    PKCS11Error,
    UserAlreadyLoggedIn,
)

from reconciler.signers.base import RSA_KEY_BITS, RSA_PUBLIC_EXPONENT, SignerError, key_id


def _exponent_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


class Pkcs11Signer:
    """RSA-2048 key pairs in one PKCS#11 token, found by label and addressed by key identifier.

    One read-write user session is opened on first use and reused; :meth:`close` ends it.
    """

    def __init__(self, module: Path, token_label: str, pin: str, *, pin_env: str | None = None) -> None:
        self.module = module
        self.token_label = token_label
        self._pin = pin
        self._pin_source = f"the environment variable {pin_env}" if pin_env else "the configured PIN"
        self._session: Any = None  # pkcs11.Session once opened (python-pkcs11's types are loose)

    def __repr__(self) -> str:  # never the PIN
        return f"Pkcs11Signer(module={str(self.module)!r}, token_label={self.token_label!r})"

    # --- the session --------------------------------------------------------------------------------

    def _where(self) -> str:
        return f"token {self.token_label!r} ({self.module})"

    def key_location(self, label: str) -> str:
        """Where the key of ``label`` would be, for a message about a key that is not there."""
        return f"no private key labelled {label!r} in {self._where()}"

    def _open(self) -> Any:
        if self._session is not None:
            return self._session
        if not self.module.is_file():
            raise SignerError(
                f"the PKCS#11 module {self.module} does not exist "
                "(fix: install the HSM's PKCS#11 library, e.g. apt-get install softhsm2, "
                "or correct `module` in rpki.yaml)"
            )
        try:
            # python-pkcs11 keeps one loaded library per path *string*; a second string for the same file
            # (a symlink) would initialise the module twice, which PKCS#11 forbids. Hence the real path.
            library = pkcs11.lib(str(self.module.resolve()))
        except PKCS11Error as exc:
            raise SignerError(f"cannot load the PKCS#11 module {self.module}: {exc}") from exc
        try:
            token = library.get_token(token_label=self.token_label)
        except NoSuchToken:
            labels = sorted({t.label for t in library.get_tokens() if t.label})
            found = ", ".join(repr(label) for label in labels) if labels else "none (no initialised token)"
            raise SignerError(
                f"no token labelled {self.token_label!r} in {self.module}; tokens found: {found} "
                "(fix: correct `token` in rpki.yaml, or initialise the token)"
            ) from None
        except PKCS11Error as exc:  # e.g. MultipleTokensReturned
            raise SignerError(f"cannot use token {self.token_label!r} in {self.module}: {exc!r}") from None
        try:
            self._session = token.open(user_pin=self._pin, rw=True)
        except UserAlreadyLoggedIn:
            # PKCS#11 logins belong to the process, not the session: another signer on this token (e.g. a
            # second workspace opened by the same process) is logged in, and new sessions share that login.
            self._session = token.open(rw=True)
        except (PinIncorrect, PinInvalid, PinLenRange) as exc:
            raise SignerError(
                f"the PIN for {self._where()} was refused ({type(exc).__name__}) "
                f"(fix: set {self._pin_source} to the token's user PIN)"
            ) from None
        except PinLocked:
            raise SignerError(
                f"the user PIN of {self._where()} is locked after too many wrong attempts "
                "(fix: have the security officer unlock it, e.g. softhsm2-util or the HSM's tools)"
            ) from None
        except PKCS11Error as exc:
            raise SignerError(f"cannot log in to {self._where()}: {type(exc).__name__}") from None
        return self._session

    def close(self) -> None:
        """End the session (and with it the login); a later call opens a new one."""
        session, self._session = self._session, None
        if session is not None:
            # PKCS11Error: the module was finalised already, so the session is gone anyway.
            with contextlib.suppress(PKCS11Error):
                session.close()

    def __enter__(self) -> Pkcs11Signer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- objects ------------------------------------------------------------------------------------

    def _objects(self, template: dict[Attribute, Any]) -> list[Any]:
        try:
            return list(self._open().get_objects(template))
        except PKCS11Error as exc:
            raise SignerError(f"cannot search {self._where()}: {type(exc).__name__}") from exc

    def _one(self, cls: ObjectClass, **match: Any) -> Any:
        """The single key of this class matching ``match`` (``label`` or ``id``), or None."""
        template: dict[Attribute, Any] = {Attribute.CLASS: cls, Attribute.KEY_TYPE: KeyType.RSA}
        template.update({Attribute.LABEL if k == "label" else Attribute.ID: v for k, v in match.items()})
        found = self._objects(template)
        if len(found) > 1:
            what = ", ".join(f"{k}={v.hex() if isinstance(v, bytes) else repr(v)}" for k, v in match.items())
            raise SignerError(
                f"{len(found)} {cls.name.lower().replace('_', ' ')}s with {what} in {self._where()}; "
                "cannot tell which one is the CA's (fix: delete the extra keys with the HSM's tools)"
            )
        return found[0] if found else None

    @staticmethod
    def _public(public: Any) -> rsa.RSAPublicKey:
        modulus = int.from_bytes(public[Attribute.MODULUS], "big")
        exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()

    def _gone(self, key: bytes) -> SignerError:
        return SignerError(
            f"no key with identifier {key.hex()} in {self._where()}; was it deleted from the token? "
            "(fix: restore the token from its backup)"
        )

    # --- the Signer protocol ------------------------------------------------------------------------

    def find_key(self, label: str) -> bytes | None:
        private = self._one(ObjectClass.PRIVATE_KEY, label=label)
        if private is None:
            return None
        kid: bytes = private[Attribute.ID]
        if kid:
            return kid
        # Generated but never given its id: take it from the public key of the same label.
        public = self._one(ObjectClass.PUBLIC_KEY, label=label)
        if public is None:
            raise SignerError(
                f"the key labelled {label!r} in {self._where()} has no CKA_ID and no public key "
                "(fix: delete it with the HSM's tools so that a new key can be created)"
            )
        return self._label_with_id(private, public)

    def _label_with_id(self, private: Any, public: Any) -> bytes:
        kid = key_id(self._public(public))
        try:
            public[Attribute.ID] = kid
            private[Attribute.ID] = kid
        except PKCS11Error as exc:
            raise SignerError(f"cannot set CKA_ID on a new key in {self._where()}: {exc!r}") from exc
        return kid

    def create_key(self, label: str) -> bytes:
        if self._one(ObjectClass.PRIVATE_KEY, label=label) is not None:
            raise SignerError(f"a key labelled {label!r} already exists in {self._where()}")
        try:
            public, private = self._open().generate_keypair(
                KeyType.RSA,
                RSA_KEY_BITS,
                label=label,
                store=True,  # CKA_TOKEN: the key outlives the session
                public_template={
                    Attribute.PUBLIC_EXPONENT: _exponent_bytes(RSA_PUBLIC_EXPONENT),
                    Attribute.VERIFY: True,
                },
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.PRIVATE: True,
                },
            )
        except PKCS11Error as exc:
            raise SignerError(
                f"cannot generate an RSA-{RSA_KEY_BITS} key in {self._where()}: {exc!r}"
            ) from exc
        return self._label_with_id(private, public)

    def public_key(self, key: bytes) -> rsa.RSAPublicKey:
        public = self._one(ObjectClass.PUBLIC_KEY, id=key)
        if public is None:
            raise self._gone(key)
        return self._public(public)

    def sign(self, key: bytes, data: bytes) -> bytes:
        private = self._one(ObjectClass.PRIVATE_KEY, id=key)
        if private is None:
            raise self._gone(key)
        try:
            signature: bytes = private.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)
        except PKCS11Error as exc:
            raise SignerError(f"signing with key {key.hex()} in {self._where()} failed: {exc!r}") from exc
        return signature

    def destroy_key(self, key: bytes) -> None:
        """Destroy the key pair with this ``CKA_ID``: the private key first (what must never be used again),
        then the public key. A pair whose private key is already gone counts as destroyed once its
        public key is, so a second call after a crash in between finishes the job."""
        private = self._one(ObjectClass.PRIVATE_KEY, id=key)
        public = self._one(ObjectClass.PUBLIC_KEY, id=key)
        if private is None and public is None:
            raise self._gone(key)
        for obj in (private, public):
            if obj is None:
                continue
            try:
                obj.destroy()
            except PKCS11Error as exc:
                raise SignerError(
                    f"cannot destroy key {key.hex()} in {self._where()}: {type(exc).__name__}"
                ) from exc
