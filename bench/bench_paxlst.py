"""Throughput of the PAXLST parser on a 400-passenger manifest, against two yardsticks.

Run from the repository root: ``.venv/bin/python -m bench.bench_paxlst`` (or ``bench/bench_paxlst.py``).
Prints passengers per second for :func:`connectors.formats.paxlst.parse_paxlst` (tokenize, check the
envelope and control totals, build typed people), for its tokenizer alone, for a bare
``str.split("'")`` (a floor: no elements, no escapes, no checks) and for pydifact 0.2.3's parser
(segments only, no PAXLST semantics).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.formats.edifact import tokenize
from connectors.formats.paxlst import parse_paxlst

PASSENGERS = 400
ROUNDS = 200


def manifest(passengers: int = PASSENGERS) -> bytes:
    """A PAXLST interchange with ``passengers`` people, one segment per line, a few released quotes."""
    body = [
        "UNH+PAX001+PAXLST:D:05B:UN:IATA",
        "BGM+745",
        "NAD+MS+++SV APIS DESK",
        "TDT+20+SV817+++SV",
        "LOC+125+CGK",
        "DTM+189:2403151040:201",
        "LOC+87+JED",
        "DTM+232:2403151630:201",
    ]
    for n in range(passengers):
        surname = f"O?'BRIEN{n}" if n % 50 == 0 else f"PILGRIM{n}"
        body += [
            f"NAD+FL+++{surname}:SITI:AMINAH",
            f"ATT+2++{'MF'[n % 2]}",
            f"DTM+329:{50 + n % 40:02d}{1 + n % 12:02d}{1 + n % 28:02d}",
            "LOC+178+CGK",
            "LOC+179+JED",
            "NAT+2+IDN",
            f"RFF+AVF:BK{n:05d}",
            f"DOC+P:110:111+C{n:07d}",
            "DTM+36:290101",
            "LOC+91+IDN",
        ]
    body.append(f"CNT+42:{passengers}")
    body.append(f"UNT+{len(body) + 1}+PAX001")
    lines = [
        "UNA:+.? '",
        "UNB+UNOA:4+SV+SAUDIAPIS+240315:0930+000000001++APIS'",
        *(segment + "'" for segment in body),
        "UNZ+1+000000001'",
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def rate(label: str, work: Callable[[], object], passengers: int = PASSENGERS, rounds: int = ROUNDS) -> float:
    work()  # warm-up
    started = time.perf_counter()
    for _ in range(rounds):
        work()
    elapsed = time.perf_counter() - started
    per_second = passengers * rounds / elapsed
    print(f"{label:<34} {elapsed / rounds * 1000:8.2f} ms/manifest {per_second:12,.0f} passengers/s")
    return per_second


def main() -> None:
    data = manifest()
    text = data.decode("ascii")
    parsed = parse_paxlst(data, "bench.edi")
    assert len(parsed.messages[0].people) == PASSENGERS, parsed.rejections[:3]
    print(f"{PASSENGERS} passengers, {len(data):,} bytes, {ROUNDS} rounds each")
    rate("parse_paxlst", lambda: parse_paxlst(data, "bench.edi"))
    rate("edifact.tokenize (segments only)", lambda: tokenize(data))
    rate('str.split("\'") (floor)', lambda: text.split("'"))
    try:
        from pydifact.parser import Parser
    except ImportError:  # pragma: no cover - pydifact is a test extra
        print("pydifact not installed")
        return
    with warnings.catch_warnings():  # pydifact warns about its missing segment catalogues on every parse
        warnings.simplefilter("ignore")
        rate("pydifact Parser.parse (segments)", lambda: list(Parser().parse(text)))


if __name__ == "__main__":
    main()
