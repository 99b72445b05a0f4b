"""Sealing addresses at rest: AES-GCM with the key id in front, and key rotation."""

from __future__ import annotations

import pytest

from suppression.domain.sealing import AddressSealer, SealError

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(32, 64))
ADDRESS = "jane.doe@example.com"
HEADER = 2  # key id
NONCE = 12
TAG = 16


@pytest.fixture
def sealer() -> AddressSealer:
    return AddressSealer({1: KEY_1}, current=1)


@pytest.mark.parametrize(
    "canonical",
    ["jane.doe@example.com", "a+tag@x.com", "jöhn@xn--bcher-kva.de", "", "x" * 254],
)
def test_seal_then_open_returns_the_address(sealer, canonical):
    assert sealer.open(sealer.seal(canonical)) == canonical


def test_sealed_address_does_not_contain_the_plaintext(sealer):
    sealed = sealer.seal(ADDRESS)
    assert ADDRESS.encode() not in sealed
    assert b"example" not in sealed


def test_sealed_address_starts_with_the_current_key_id():
    sealer = AddressSealer({1: KEY_1, 513: KEY_2}, current=513)
    assert sealer.seal(ADDRESS)[:HEADER] == (513).to_bytes(2, "big")


def test_sealed_address_is_key_id_nonce_ciphertext_and_tag(sealer):
    sealed = sealer.seal(ADDRESS)
    assert len(sealed) == HEADER + NONCE + len(ADDRESS.encode()) + TAG


def test_two_seals_of_the_same_address_differ(sealer):
    first, second = sealer.seal(ADDRESS), sealer.seal(ADDRESS)
    assert first != second
    assert first[HEADER : HEADER + NONCE] != second[HEADER : HEADER + NONCE]
    assert sealer.open(first) == sealer.open(second) == ADDRESS


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize(
    "index",
    [HEADER, HEADER + NONCE - 1, HEADER + NONCE, HEADER + NONCE + 5, -TAG, -1],
    ids=["nonce-start", "nonce-end", "body-start", "body", "tag-start", "tag-end"],
)
def test_tampered_ciphertext_raises_seal_error(sealer, index):
    sealed = sealer.seal(ADDRESS)
    with pytest.raises(SealError, match="does not verify"):
        sealer.open(_flip(sealed, index))


def test_every_single_bit_flip_is_detected(sealer):
    sealed = sealer.seal(ADDRESS)
    rejected = 0
    for index in range(len(sealed)):
        for bit in range(8):
            tampered = sealed[:index] + bytes([sealed[index] ^ (1 << bit)]) + sealed[index + 1 :]
            with pytest.raises(SealError):
                sealer.open(tampered)
            rejected += 1
    assert rejected == len(sealed) * 8


def test_key_id_changed_to_another_held_key_raises_seal_error():
    sealer = AddressSealer({1: KEY_1, 2: KEY_2}, current=1)
    sealed = sealer.seal(ADDRESS)
    with pytest.raises(SealError):
        sealer.open((2).to_bytes(2, "big") + sealed[HEADER:])


@pytest.mark.parametrize("length", [0, 1, 2, 5, HEADER + NONCE - 1, HEADER + NONCE, 20, -1])
def test_truncated_ciphertext_raises_seal_error(sealer, length):
    sealed = sealer.seal(ADDRESS)
    with pytest.raises(SealError):
        sealer.open(sealed[:length])


def test_truncated_ciphertext_under_key_id_zero_raises_seal_error():
    sealer = AddressSealer({0: KEY_1}, current=0)
    for length in range(HEADER + NONCE + TAG):
        with pytest.raises(SealError):
            sealer.open(bytes(length))
    assert sealer.open(sealer.seal(ADDRESS)) == ADDRESS


def test_appended_bytes_raise_seal_error(sealer):
    with pytest.raises(SealError):
        sealer.open(sealer.seal(ADDRESS) + b"\x00")


def test_seal_error_is_a_value_error():
    assert issubclass(SealError, ValueError)


def test_old_key_still_opens_after_a_new_current_key_is_added():
    old = AddressSealer({1: KEY_1}, current=1)
    sealed_with_old = old.seal(ADDRESS)
    rotated = AddressSealer({1: KEY_1, 2: KEY_2}, current=2)
    assert rotated.open(sealed_with_old) == ADDRESS


def test_new_seals_use_the_new_current_key_after_rotation():
    old = AddressSealer({1: KEY_1}, current=1)
    rotated = AddressSealer({1: KEY_1, 2: KEY_2}, current=2)
    sealed_with_new = rotated.seal(ADDRESS)
    assert sealed_with_new[:HEADER] == (2).to_bytes(2, "big")
    assert rotated.open(sealed_with_new) == ADDRESS
    with pytest.raises(SealError, match="no longer held"):
        old.open(sealed_with_new)


def test_ciphertext_sealed_with_a_key_no_longer_held_raises_seal_error():
    sealed_with_key_1 = AddressSealer({1: KEY_1}, current=1).seal(ADDRESS)
    key_1_retired = AddressSealer({2: KEY_2}, current=2)
    with pytest.raises(SealError, match="no longer held"):
        key_1_retired.open(sealed_with_key_1)


def test_same_key_id_with_different_key_material_raises_seal_error():
    sealed = AddressSealer({1: KEY_1}, current=1).seal(ADDRESS)
    with pytest.raises(SealError, match="does not verify"):
        AddressSealer({1: KEY_2}, current=1).open(sealed)


def test_current_key_must_be_among_the_keys():
    with pytest.raises(ValueError, match="current sealing key"):
        AddressSealer({1: KEY_1}, current=2)


@pytest.mark.parametrize("key_length", [16, 24, 32])
def test_aes_key_sizes_are_accepted(key_length):
    sealer = AddressSealer({7: bytes(key_length)}, current=7)
    assert sealer.open(sealer.seal(ADDRESS)) == ADDRESS


EVIDENCE_JSON = b'{"reply":"From: jane.doe@example.com","text":"\xc3\xa9"}'


def test_sealed_evidence_opens_to_the_same_bytes_and_hides_them(sealer):
    sealed = sealer.seal_evidence(EVIDENCE_JSON)
    assert ADDRESS.encode() not in sealed
    assert sealed[:HEADER] == (1).to_bytes(2, "big")
    assert len(sealed) == HEADER + NONCE + len(EVIDENCE_JSON) + TAG
    assert sealer.open_evidence(sealed) == EVIDENCE_JSON


def test_an_address_and_evidence_ciphertext_do_not_open_as_each_other(sealer):
    # Bound to their kind: a sealed address moved into an event's evidence (or
    # back) does not open.
    with pytest.raises(SealError):
        sealer.open_evidence(sealer.seal(ADDRESS))
    with pytest.raises(SealError):
        sealer.open(sealer.seal_evidence(ADDRESS.encode()))


def test_evidence_sealed_with_key_1_opens_after_key_2_is_added_and_key_2_seals():
    before = AddressSealer({1: KEY_1}, current=1).seal_evidence(EVIDENCE_JSON)
    rotated = AddressSealer({1: KEY_1, 2: KEY_2}, current=2)
    assert rotated.open_evidence(before) == EVIDENCE_JSON
    after = rotated.seal_evidence(EVIDENCE_JSON)
    assert after[:HEADER] == (2).to_bytes(2, "big")
    with pytest.raises(SealError, match="no longer held"):
        AddressSealer({1: KEY_1}, current=1).open_evidence(after)
