"""Why an input, or one record in it, was refused.

The hierarchy decides how much of an input is lost::

    Rejected
    ├── InputRejected    the whole input is unusable: not EDIFACT/XML/JSON at all, broken control
    │                    counts, a truncated interchange. Nothing from it is published.
    └── RecordRejected   one record is unusable (an impossible date, a bad MRZ check digit, a
                         missing hotel code). That record is quarantined; the good records of the
                         same input still go through.

Every rejection names the input, where in it (segment number, line, XPath, JSON path), the field
and the reason, so that the sender can fix it without asking us.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refusal, as told to the sender and kept with the quarantined payload."""

    input: str
    """The input's name: file name, HTTP request id, poll cursor."""
    location: str
    """Where in the input: ``segment 14 (DTM)``, ``line 7``, ``/OTA_HotelResNotifRQ/...[2]``, ``$.pilgrims[3]``."""
    field: str | None
    """The offending field (``birth_date``, ``DOC/1154``), or None when the whole location is at fault."""
    reason: str
    """What is wrong, in words the sender understands."""

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.input} {self.location}"
        return f"{where} [{self.field}]: {self.reason}" if self.field else f"{where}: {self.reason}"


class Rejected(Exception):
    """Base of all rejections; carries the :class:`Rejection`."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(str(rejection))
        self.rejection = rejection


class InputRejected(Rejected):
    """The whole input is refused."""


class RecordRejected(Rejected):
    """One record is refused; the rest of the input is unaffected."""
