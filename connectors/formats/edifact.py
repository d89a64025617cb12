"""UN/EDIFACT tokenizer: the bytes of one interchange in, a flat list of segments out.

Contract of :func:`tokenize`:

* **Encoding.** The input is decoded as UTF-8; if it is not valid UTF-8 it is decoded as Latin-1
  (ISO 8859-1), which never fails. That covers the syntax identifiers senders use in practice
  (UNOA/UNOB are ASCII subsets, UNOC is Latin-1, UNOW/UNOY are UTF-8) without trusting UNB. A
  Latin-1 file whose accented letters happen to form valid UTF-8 pairs (``Ã©``) would be read as
  UTF-8; real names practically never do that. A leading UTF-8 byte order mark is skipped.
* **Separators.** An optional ``UNA`` service string advice gives, in order, the component
  separator, element separator, decimal mark, release character, repetition separator (reserved)
  and segment terminator. Without UNA the defaults ``:+.? '`` apply. A space in the release
  position is read as "no release character" (a space is data in every name). Component, element,
  release and terminator must differ, or the input is rejected.
* **Release character.** It makes the next character literal and is itself dropped: ``O?'BRIEN``
  is ``O'BRIEN``, ``??`` is ``?``.
* **Line breaks.** Spaces, tabs, CR and LF before a segment tag are not significant and are
  skipped (senders put one segment per line, with LF or CRLF, or everything on one line). Anything
  between a tag and its terminator is data, verbatim (except that when the UNA makes LF the segment
  terminator, a CR just before it is dropped).
* **Output.** One :class:`Segment` per segment, UNA excluded (it is an advice, not a segment).
  ``index`` is the 1-based segment number in the interchange (UNB is 1), ``offset`` the byte offset
  of the segment's tag in the input bytes, so a rejection or a resume point can point into the file.
  Elements are lists of components; nothing is stripped, padded or interpreted. Segments are plain
  (non-frozen) slotted dataclasses because building 4,000 frozen ones costs a quarter of the
  tokenizer's time: treat them as read-only.
* **Errors.** Only :class:`~connectors.rejections.InputRejected`, located as ``segment N`` or
  ``segment N (TAG)`` (``UNA`` for a bad service string advice), with the byte offset in the reason:
  the input does not start with UNA or UNB (after an optional BOM and whitespace), the UNA is short
  or ambiguous, a segment is empty or its tag is not three upper-case letters/digits, or the
  interchange does not end with a segment terminator (it was truncated).

Speed: segments without a release character are split with ``str.split`` (the common case, and
the whole interchange when it contains no release character at all); only segments that contain
one go through a character scanner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from connectors.rejections import InputRejected, Rejection

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_SEPARATORS", "Segment", "Separators", "tokenize"]

_BOM = b"\xef\xbb\xbf"
_LAYOUT = " \t\r\n"
"""Characters skipped before a segment tag (unless the UNA made one of them a separator)."""


@dataclass(slots=True)
class Segment:
    """One segment: ``tag``, then its data elements, each a list of components (at least one)."""

    tag: str
    elements: list[list[str]]
    index: int
    """1-based segment number in the interchange; UNB is 1, UNA is not counted."""
    offset: int
    """Byte offset of the segment's tag in the input."""

    def value(self, element: int, component: int = 1) -> str:
        """Component ``component`` of data element ``element``, both 1-based as in the message
        implementation guides (``TDT+20+SV817``: ``value(2)`` is ``SV817``); ``""`` when absent."""
        elements = self.elements
        if 0 < element <= len(elements):
            components = elements[element - 1]
            if 0 < component <= len(components):
                return components[component - 1]
        return ""

    def components(self, element: int) -> list[str]:
        """All components of 1-based data element ``element``; ``[]`` when absent."""
        if 0 < element <= len(self.elements):
            return self.elements[element - 1]
        return []


@dataclass(frozen=True, slots=True)
class Separators:
    """The service characters of an interchange, as given by UNA (or the defaults)."""

    component: str = ":"
    element: str = "+"
    decimal_mark: str = "."
    release: str | None = "?"
    """None when the sender uses no release character."""
    repetition: str = " "
    segment: str = "'"

    @classmethod
    def from_una(cls, advice: str) -> Separators:
        """Read the six characters that follow ``UNA``; raises ValueError when they are unusable."""
        if len(advice) != 6:
            raise ValueError(f"UNA must be followed by 6 service characters, got {advice!r}")
        component, element, decimal_mark, release, repetition, segment = list(advice)
        structural = [component, element, segment] + ([] if release == " " else [release])
        if len(set(structural)) != len(structural):
            raise ValueError(
                f"UNA{advice}: component separator, element separator, release character and "
                "segment terminator must all differ"
            )
        if any(c.isalnum() for c in structural):
            raise ValueError(f"UNA{advice}: a letter or digit cannot be a separator")
        return cls(component, element, decimal_mark, None if release == " " else release, repetition, segment)


DEFAULT_SEPARATORS = Separators()


def tokenize(data: bytes, input_name: str = "<input>") -> list[Segment]:
    """Split one interchange into segments; see the module docstring for the exact contract."""
    bom = len(_BOM) if data.startswith(_BOM) else 0
    if bom:
        data = data[bom:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    multibyte = len(text) != len(data)

    start = len(text) - len(text.lstrip(_LAYOUT))
    head = text[start : start + 3]
    if head == "UNA":
        try:
            separators = Separators.from_una(text[start + 3 : start + 9])
        except ValueError as exc:
            raise _reject(input_name, "UNA", f"{exc} (at byte {bom + start})") from None
        start += 9
    elif head == "UNB":
        separators = DEFAULT_SEPARATORS
    else:
        raise _reject(
            input_name,
            "segment 1",
            f"not a UN/EDIFACT interchange: it must start with UNA or UNB, not {text[start : start + 20]!r}",
        )

    # Offsets count bytes of the input; for ASCII or Latin-1 input that is one per character.
    at = bom + (len(text[:start].encode("utf-8")) if multibyte else start)
    return _scan(text[start:], at, separators, multibyte, input_name)


def _scan(text: str, at: int, seps: Separators, multibyte: bool, input_name: str) -> list[Segment]:
    """The segments of ``text`` (the interchange after UNA); ``at`` is the byte offset of ``text``."""
    terminator, element_sep, component_sep, release = seps.segment, seps.element, seps.component, seps.release
    layout = "".join(c for c in _LAYOUT if c not in (terminator, element_sep, component_sep, release))
    cr_before_lf = terminator == "\n" and "\r" not in (element_sep, component_sep, release)
    terminator_size = len(terminator.encode("utf-8")) if multibyte else 1
    if release is not None and release not in text:
        release = None

    pieces = _split_segments(text, terminator, release)
    trailer = pieces.pop()
    segments: list[Segment] = []
    append = segments.append
    valid_tags: set[str] = set()
    for index, piece in enumerate(pieces, 1):
        body = piece.lstrip(layout)
        offset = at + len(piece) - len(body)
        at += (len(piece.encode("utf-8")) if multibyte else len(piece)) + terminator_size
        if cr_before_lf and body.endswith("\r"):
            body = body[:-1]
        if release is not None and release in body:
            elements = _split_released(body, element_sep, component_sep, release)
        else:
            elements = [element.split(component_sep) for element in body.split(element_sep)]
        tag = elements[0][0]
        if tag not in valid_tags:
            if not body:
                raise _reject(
                    input_name,
                    f"segment {index}",
                    f"empty segment (two terminators in a row) at byte {offset}",
                )
            if len(elements[0]) != 1 or not (len(tag) == 3 and tag.isascii() and tag.isalnum() and tag == tag.upper()):
                raise _reject(
                    input_name,
                    f"segment {index}",
                    f"segment tag must be three upper-case letters or digits, not {body[:20]!r} (at byte {offset})",
                )
            valid_tags.add(tag)
        del elements[0]
        append(Segment(tag, elements, index, offset))

    rest = trailer.strip(layout)
    if rest:
        # Name the cut segment by its tag when it got that far.
        tag = rest[:3] if len(rest) > 3 and rest[3] == element_sep else ""
        raise _reject(
            input_name,
            f"segment {len(segments) + 1} ({tag})" if tag else f"segment {len(segments) + 1}",
            f"the interchange ends without a segment terminator {terminator!r} after {rest[:40]!r} "
            f"(at byte {at + len(trailer) - len(trailer.lstrip(layout))}): it is truncated",
        )
    return segments


def _split_segments(text: str, terminator: str, release: str | None) -> list[str]:
    """``text`` cut at unreleased segment terminators; the last item is what follows the last one."""
    parts = text.split(terminator)
    if release is None:
        return parts
    pieces: list[str] = []
    held: list[str] = []  # parts of a segment whose terminators so far were released
    for part in parts:
        # A terminator preceded by an odd run of release characters is data (``?'``, ``???'``).
        if part.endswith(release) and (len(part) - len(part.rstrip(release))) % 2:
            held.append(part)
            continue
        if held:
            held.append(part)
            part = terminator.join(held)
            held = []
        pieces.append(part)
    if held:
        pieces.append(terminator.join(held))
    return pieces


def _split_released(body: str, element_sep: str, component_sep: str, release: str) -> list[list[str]]:
    """Elements and components of one segment that contains the release character."""
    elements: list[list[str]] = []
    components: list[str] = []
    chars: list[str] = []
    i, n = 0, len(body)
    while i < n:
        char = body[i]
        if char == release:
            i += 1
            if i < n:
                chars.append(body[i])
        elif char == element_sep:
            components.append("".join(chars))
            elements.append(components)
            components, chars = [], []
        elif char == component_sep:
            components.append("".join(chars))
            chars = []
        else:
            chars.append(char)
        i += 1
    components.append("".join(chars))
    elements.append(components)
    return elements


def _reject(input_name: str, location: str, reason: str) -> InputRejected:
    return InputRejected(Rejection(input=input_name, location=location, field=None, reason=reason))
