"""Secrets: the ``secret()`` values of expressions (``SECRET_<KEY>`` environment variables, base64) and the
key that encrypts SECRET inputs (``kestra.encryption.secret-key``)."""
from __future__ import annotations

import base64
import os

from falconet.runtime.config import Config
from falconet.runtime.kernel.errors import IllegalArgument


class Secrets:
    def __init__(self, config: Config):
        self.config = config

    def secret(self, key: str) -> str:
        from falconet.runtime.expr.render import ExpressionError

        name = "SECRET_" + key.upper()
        raw = os.environ.get(name)
        if raw is None:
            raise ExpressionError(f"Cannot find secret for key '{key}'.")
        try:
            return base64.b64decode(raw).decode("utf-8")
        except ValueError as exc:
            raise ExpressionError(f"Secret '{key}' is not valid base64") from exc

    def encrypt(self, plaintext: str, key: str | None = None) -> str:
        from falconet.runtime.flow.inputs import encrypt_secret

        return encrypt_secret(key or self._key(), plaintext)

    def decrypt(self, ciphertext: str, key: str | None = None) -> str:
        from falconet.runtime.flow.inputs import decrypt_secret

        return decrypt_secret(key or self._key(), ciphertext)

    def _key(self) -> str:
        if not self.config.secret_key:
            raise IllegalArgument("Unable to use a SECRET input as encryption is not configured "
                                  "(kestra.encryption.secret-key)")
        return self.config.secret_key
