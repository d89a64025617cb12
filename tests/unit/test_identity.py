"""The pseudonymous pilgrim key."""

from __future__ import annotations

import pytest

from config import ConfigError, load_config
from connectors.identity import PilgrimKeyer

SECRET = b"unit-test-secret-0123456789"


def test_same_person_same_key_whatever_the_spelling() -> None:
    keyer = PilgrimKeyer(SECRET)
    key = keyer.key("IDN", "C4721938")
    assert key.startswith("pk_") and len(key) == 35
    assert keyer.key("ID", "c4721938") == key  # hotels send alpha-2, lower case
    assert keyer.key(" idn ", "C 472 1938") == key
    assert keyer.key("IDN", "C4721938<") == key  # MRZ filler
    assert keyer.key("D", "C01X00T47") == keyer.key("DEU", "C01X00T47")  # ICAO Germany


def test_different_people_and_secrets_give_different_keys() -> None:
    keyer = PilgrimKeyer(SECRET)
    assert keyer.key("IDN", "C4721938") != keyer.key("MYS", "C4721938")
    assert keyer.key("IDN", "C4721938") != keyer.key("IDN", "C4721939")
    assert PilgrimKeyer(b"another-secret-0123456789").key("IDN", "C4721938") != keyer.key("IDN", "C4721938")


def test_the_key_hides_the_passport_number_and_the_secret_is_not_printed() -> None:
    keyer = PilgrimKeyer(SECRET)
    assert "C4721938" not in keyer.key("IDN", "C4721938")
    assert SECRET.decode() not in repr(keyer)


def test_bad_inputs_are_refused() -> None:
    keyer = PilgrimKeyer(SECRET)
    with pytest.raises(ValueError, match="nationality"):
        keyer.key("PAKISTAN", "AB1234567")
    with pytest.raises(ValueError):
        keyer.key("PAK", " < ")
    with pytest.raises(ValueError, match="16 bytes"):
        PilgrimKeyer(b"short")


def test_production_mode_needs_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_PILGRIM_KEY_SECRET", raising=False)
    with pytest.raises(ConfigError, match="pilgrim_key_secret"):
        load_config(overrides={"mode": "production"}).keyer()
    monkeypatch.setenv("HUB_PILGRIM_KEY_SECRET", "a-real-secret-from-the-vault-0001")
    assert load_config(overrides={"mode": "production"}).keyer().key("SAU", "X1").startswith("pk_")
