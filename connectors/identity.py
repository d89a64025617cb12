"""The pseudonymous pilgrim key that joins what the four agencies say about one person.

No identifier spans all agencies; the practical join key is nationality + passport number. Those
are personal data, so they never travel as Kafka keys in clear: the key is an HMAC-SHA256, under a
hub secret, of the normalised pair (alpha-3 nationality, passport number without spaces or
fillers, upper case). Every connector derives it the same way, so an airline manifest, a hotel
check-in and a border entry of the same person land on the same key and partition.
"""

from __future__ import annotations

import hashlib
import hmac

from connectors.formats.countries import normalize_document_number, normalize_nationality

KEY_PREFIX = "pk_"


class PilgrimKeyer:
    """Derives ``pilgrim_key`` values; holds the secret, never prints it."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the pilgrim key secret must be at least 16 bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "PilgrimKeyer(secret=***)"

    def key(self, nationality: str, passport_number: str) -> str:
        """Key for a nationality (alpha-2, alpha-3 or ICAO code) and passport number.

        Raises ValueError for an unknown nationality code or an empty passport number.
        """
        document = normalize_document_number(passport_number)
        if not document:
            raise ValueError("passport number is empty")
        material = f"{normalize_nationality(nationality)}|{document}".encode()
        return KEY_PREFIX + hmac.new(self._secret, material, hashlib.sha256).hexdigest()[:32]
