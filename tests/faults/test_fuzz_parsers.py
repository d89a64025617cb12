"""Fuzzing every parser with generated and mutated inputs: no crash but the documented rejection,
no hang (a CPU-time bound per input), bounded memory.

CI runs a few hundred cases per parser; ``make faults`` (``HUB_FAULTS_SCALE=full``) runs 100,000 per
parser (``HUB_FUZZ_EXAMPLES`` overrides).
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import REGISTRY, load_all
from connectors.formats.mrz import MrzError, parse_td3
from connectors.formats.ota import parse_hotel_res_notif
from connectors.formats.paxlst import parse_paxlst
from connectors.rejections import InputRejected

pytestmark = pytest.mark.faults

FIXTURES = Path(__file__).parents[1] / "fixtures"
EXAMPLES = int(
    os.environ.get("HUB_FUZZ_EXAMPLES") or (100_000 if os.environ.get("HUB_FAULTS_SCALE") == "full" else 300)
)
TIME_BOUND_S = 2.0
MEMORY_BOUND_BYTES = 64 * 1024 * 1024

load_all()


def seeds(folder: str, *suffixes: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((FIXTURES / folder).rglob("*")) if p.is_file() and p.suffix in suffixes]


def connector_parse(type_name: str) -> Callable[[bytes, str], object]:
    model, factory = REGISTRY[type_name]
    config = model.model_validate({"name": "fuzz", "type": type_name, "transport": {"kind": "http", "path": "/x"}})
    return factory(config).parse  # type: ignore[no-any-return]


def mrz(data: bytes, _: str) -> object:
    try:
        return parse_td3(data.decode("latin-1"))
    except MrzError:
        return None


PARSERS: dict[str, tuple[Callable[[bytes, str], object], list[bytes]]] = {
    "paxlst": (parse_paxlst, seeds("airlines", ".edi", ".paxlst")),
    "ota": (parse_hotel_res_notif, seeds("hotels", ".xml")),
    "mrz": (mrz, [line.encode() for line in (FIXTURES / "immigration" / "mrz_samples.txt").read_text().split("\n\n")]),
    **{
        f"connector:{t}": (
            connector_parse(t),
            seeds(t if t != "airlines" else "airlines", ".json", ".csv", ".edi", ".paxlst", ".xml"),
        )
        for t in sorted(REGISTRY)
    },
}


def mutate(seed: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(seed)
    for kind, position, chunk in edits:
        at = position % (len(data) + 1)
        if kind == 0:
            data[at:at] = chunk  # insert
        elif kind == 1:
            del data[at : at + len(chunk) + 1]  # delete
        else:
            data[at : at + len(chunk)] = chunk  # overwrite
    return bytes(data)


EDITS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=12)), max_size=6)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parser_survives_generated_and_mutated_inputs(name: str) -> None:
    parse, corpus = PARSERS[name]
    assert corpus, f"no seed inputs for {name}"
    slowest = 0.0
    peak = 0
    count = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        data=st.one_of(
            st.binary(max_size=4096),
            st.tuples(st.sampled_from(corpus), EDITS).map(lambda pair: mutate(*pair)),
        )
    )
    def check(data: bytes) -> None:
        nonlocal slowest, peak, count, retimed
        elapsed, used = timed(parse, data)
        if elapsed >= TIME_BOUND_S:
            # A full garbage collection of the run's own objects (hypothesis keeps many) can land in
            # any parse; a slow input is slow every time, so time it again after collecting.
            gc.collect()
            elapsed, used = timed(parse, data)
            retimed += 1
        count += 1
        slowest = max(slowest, elapsed)
        peak = max(peak, used)
        assert elapsed < TIME_BOUND_S, f"{name}: {elapsed:.2f}s on a {len(data)}-byte input: {data[:300]!r}"
        assert used < MEMORY_BOUND_BYTES, f"{name}: {used} bytes on a {len(data)}-byte input: {data[:300]!r}"

    retimed = 0
    check()
    print(
        f"{name}: {count} inputs, slowest {slowest * 1000:.1f} ms, peak memory {peak / 1024:.0f} KiB, "
        f"{retimed} over the bound once and timed again"
    )


def timed(parse: Callable[[bytes, str], object], data: bytes) -> tuple[float, int]:
    """CPU seconds of this thread (a loaded machine does not count) and peak traced bytes of one parse."""
    tracemalloc.start()
    started = time.thread_time()
    try:
        parse(data, "fuzz")
    except InputRejected:
        pass
    finally:
        elapsed = time.thread_time() - started
        _, used = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return elapsed, used
