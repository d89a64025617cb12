"""Throughput of the ``OTA_HotelResNotifRQ`` parser against bare defusedxml parsing.

Builds one notification of 1,000 reservations (two guests each), parses it repeatedly and prints
reservations per second for :func:`connectors.formats.ota.parse_hotel_res_notif` and for
``defusedxml.ElementTree.fromstring`` alone (the floor: tree building, no reading). Best of
several rounds, so a noisy neighbour does not count against the parser.

Run from the repository root::

    .venv/bin/python -m bench.bench_ota [--reservations N] [--rounds N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import defusedxml.ElementTree as safe_etree

from connectors.formats.ota import OTA_NAMESPACE, parse_hotel_res_notif


def build_notification(reservations: int) -> bytes:
    """A realistic notification: every reservation has a room stay, two guests and a hotel number."""
    parts = [
        f'<OTA_HotelResNotifRQ xmlns="{OTA_NAMESPACE}" EchoToken="bench" TimeStamp="2024-05-20T08:15:00Z">'
    ]
    parts.append("<HotelReservations>")
    for n in range(1, reservations + 1):
        guests = "".join(
            f'<ResGuest><Profiles><ProfileInfo><Profile><Customer BirthDate="1970-01-{g + 10}">'
            f"<PersonName><GivenName>Given{g}</GivenName><GivenName>Middle</GivenName>"
            f"<Surname>Family{n}</Surname></PersonName>"
            f'<Document DocType="2" DocID="X{n:06d}{g}" DocHolderNationality="ID" ExpireDate="2030-12-31"/>'
            "</Customer></Profile></ProfileInfo></Profiles></ResGuest>"
            for g in (1, 2)
        )
        parts.append(
            f'<HotelReservation ResStatus="Commit" CreateDateTime="2024-05-01T10:00:00Z">'
            f'<UniqueID Type="14" ID="RES-{n}"/>'
            "<RoomStays><RoomStay>"
            '<RoomTypes><RoomType RoomTypeCode="DBL"/></RoomTypes>'
            '<GuestCounts><GuestCount AgeQualifyingCode="10" Count="2"/></GuestCounts>'
            '<TimeSpan Start="2024-06-10" End="2024-06-17"/>'
            '<BasicPropertyInfo HotelCode="MAK001" HotelName="Example Hotel Ajyad"/>'
            "</RoomStay></RoomStays>"
            f"<ResGuests>{guests}</ResGuests>"
            "<ResGlobalInfo><HotelReservationIDs>"
            f'<HotelReservationID ResID_Type="10" ResID_Value="H-{n}"/>'
            "</HotelReservationIDs></ResGlobalInfo>"
            "</HotelReservation>"
        )
    parts.append("</HotelReservations></OTA_HotelResNotifRQ>")
    return "".join(parts).encode()


def best_seconds(work: Callable[[], object], rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    arguments.add_argument("--reservations", type=int, default=1_000)
    arguments.add_argument("--rounds", type=int, default=20)
    options = arguments.parse_args()

    data = build_notification(options.reservations)
    result = parse_hotel_res_notif(data, "bench.xml")
    if len(result.reservations) != options.reservations or result.rejections:
        raise SystemExit(f"benchmark document did not parse cleanly: {result.rejections[:3]}")

    candidates: dict[str, Callable[[], object]] = {
        "parse_hotel_res_notif": lambda: parse_hotel_res_notif(data, "bench.xml"),
        "defusedxml fromstring": lambda: safe_etree.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        ),
    }
    print(f"{options.reservations} reservations, {len(data) / 1e6:.2f} MB, best of {options.rounds} rounds")
    for name, work in candidates.items():
        seconds = best_seconds(work, options.rounds)
        print(
            f"  {name:<22} {seconds * 1e3:8.1f} ms  {options.reservations / seconds:>10,.0f} reservations/s"
            f"  {len(data) / seconds / 1e6:6.1f} MB/s"
        )


if __name__ == "__main__":
    main()
