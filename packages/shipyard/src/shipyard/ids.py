"""Friendly, sortable ids: ``<prefix>_<26 chars>``.

The 26 characters are a ULID in lowercase Crockford base32: a 48-bit millisecond timestamp
followed by 80 random bits. Within one process ids are strictly increasing, even when many are
made in the same millisecond (the random part is incremented instead of redrawn), so sorting
ids sorts by creation order.

Example::

    >>> run_id = new_id("run")
    >>> run_id.startswith("run_") and len(run_id) == 30
    True
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time

from shipyard.errors import ValidationError

__all__ = ["id_timestamp_ms", "new_id", "new_ids"]

# Lowercase Crockford base32; digits sort before letters in ASCII, so string order = value order.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_DECODE = {char: index for index, char in enumerate(_ALPHABET)}
_TIME_CHARS = 10
_RANDOM_CHARS = 16
_ULID_CHARS = _TIME_CHARS + _RANDOM_CHARS
_RANDOM_BITS = 80
_MAX_RANDOM = (1 << _RANDOM_BITS) - 1
_MAX_TIME = (1 << 48) - 1
_PREFIX = re.compile(r"^[a-z][a-z0-9]*$")

_lock = threading.Lock()
_last_ms = -1
_last_random = 0

# Random parts come from the OS's generator 4 KiB at a time (one system call per ~400 ids
# instead of one per id). A forked child drops the parent's bytes and its last id, so it
# neither reuses those bytes nor continues the parent's sequence within one millisecond
# (which would make the parent's next ids again).
_POOL_BYTES = 4096
_pool = b""
_pool_at = 0


def _random_part() -> int:
    """80 random bits from the pool (call with ``_lock`` held)."""
    global _pool, _pool_at
    start = _pool_at
    if start + 10 > len(_pool):
        _pool, start = os.urandom(_POOL_BYTES), 0
    _pool_at = start + 10
    return int.from_bytes(_pool[start : start + 10], "big")


def _forget_pool() -> None:
    global _pool, _pool_at, _last_ms, _last_random
    _pool, _pool_at = b"", 0
    _last_ms, _last_random = -1, 0


os.register_at_fork(after_in_child=_forget_pool)


# Every 10-bit value as its two base32 digits: ids are encoded two digits per step. The
# trigger hot path makes one id per run; a digit-by-digit loop cost ~10 µs of it, the base64
# module's base32 (a Python loop in CPython, plus a translation to this alphabet) ~2.4 µs,
# this ~1.5 µs.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def _encode_digits(value: int, digits: int) -> str:
    """``value`` as ``digits`` base32 digits (an even count), most significant first."""
    return "".join(_PAIRS[(value >> shift) & 1023] for shift in range(5 * digits - 10, -1, -10))


def _encode_ulid(ms: int, rnd: int) -> str:
    # 26 digits hold 130 bits: the 48-bit time, right-aligned, then the 80 random bits.
    return _encode_digits((ms << _RANDOM_BITS) | rnd, _ULID_CHARS)


def _next_ulid_parts() -> tuple[int, int]:
    global _last_ms, _last_random
    with _lock:
        now = time.time_ns() // 1_000_000
        # A clock that steps backwards must not break ordering: keep using the last ms.
        if now <= _last_ms:
            now = _last_ms
            rnd = _last_random + 1
            if rnd > _MAX_RANDOM:
                now += 1
                rnd = _random_part()
        else:
            rnd = _random_part()
        _last_ms, _last_random = now, rnd
        return now, rnd


def new_id(prefix: str) -> str:
    """Return a new id ``"<prefix>_<ulid>"``; later ids sort after earlier ones.

    Shipyard uses the prefixes ``run``, ``batch``, ``waitpoint``, ``sched``, ``queue`` and
    ``worker``. Thread-safe.

    Raises:
        ValidationError: ``prefix`` is not lowercase letters and digits starting with a letter.

    Example::

        >>> new_id("batch")[:6]
        'batch_'
    """
    if not _PREFIX.match(prefix):
        raise ValidationError(
            f"Invalid id prefix {prefix!r}: use lowercase letters and digits, e.g. 'run'",
            prefix=prefix,
        )
    ms, rnd = _next_ulid_parts()
    if ms > _MAX_TIME:
        raise ValidationError("The clock is past the year 10889; ULIDs cannot encode it")
    return f"{prefix}_{_encode_ulid(ms, rnd)}"


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` new ids at once, in increasing order, as ``count`` calls of :func:`new_id`
    would make them (one millisecond, consecutive random parts). Thread-safe.

    A batch trigger makes one id per run: encoding every random part in one base32 call costs
    a fraction of ``count`` separate ids.

    Example::

        >>> a, b = new_ids("run", 2)
        >>> a < b and a[:14] == b[:14]
        True
    """
    if count <= 0:
        return []
    if not _PREFIX.match(prefix):
        raise ValidationError(
            f"Invalid id prefix {prefix!r}: use lowercase letters and digits, e.g. 'run'",
            prefix=prefix,
        )
    global _last_ms, _last_random
    with _lock:
        now = time.time_ns() // 1_000_000
        if now <= _last_ms:
            now = _last_ms
            first = _last_random + 1
        else:
            first = _random_part()
        if first + count - 1 > _MAX_RANDOM:
            # The random part would overflow within this millisecond: the next one.
            now += 1
            first = secrets.randbits(_RANDOM_BITS - 1)  # room for any count below 2**79
        _last_ms, _last_random = now, first + count - 1
    if now > _MAX_TIME:
        raise ValidationError("The clock is past the year 10889; ULIDs cannot encode it")
    # Consecutive random parts share all but their last two digits (10 bits) within each run
    # of 1,024: those are encoded once per run, and each id adds its last two from the table
    # (encoding each id whole cost ~1 µs, a seventh of a batch trigger's client time).
    time_digits = f"{prefix}_{_encode_digits(now, _TIME_CHARS)}"
    made: list[str] = []
    value, end = first, first + count
    while value < end:
        stop = min(end, (value | 1023) + 1)
        head = time_digits + _encode_digits(value >> 10, _RANDOM_CHARS - 2)
        made += [head + _PAIRS[k & 1023] for k in range(value, stop)]
        value = stop
    return made


def id_timestamp_ms(id: str) -> int:
    """The creation time (epoch milliseconds) encoded in an id made by :func:`new_id`.

    Raises:
        ValidationError: ``id`` does not end in ``_`` plus 26 base32 characters.

    Example::

        >>> import time
        >>> abs(id_timestamp_ms(new_id("run")) - time.time() * 1000) < 1000
        True
    """
    _, sep, ulid = id.rpartition("_")
    ulid = ulid.lower()
    if not sep or len(ulid) != _ULID_CHARS or any(char not in _DECODE for char in ulid):
        raise ValidationError(f"Not a Shipyard id: {id!r}", id=id)
    value = 0
    for char in ulid[:_TIME_CHARS]:
        value = value * 32 + _DECODE[char]
    return value
