"""Cross-process wake-ups for the SQLite store: a UDP datagram on the loopback interface.

SQLite has no LISTEN/NOTIFY. Each worker binds a UDP socket on 127.0.0.1 and records its port
in ``workers``; a process that makes runs ready sends one empty datagram to each live worker.
A lost datagram costs at most the worker's backup poll interval, so delivery need not be
reliable, and a doorbell costs a few microseconds instead of a 1 ms poll loop per worker.
A datagram says which wake-up it is: :data:`READY` (runs are ready to claim) or :data:`WANTS`
(a worker's want of more runs changed: its peers recount their share, ``worker/share.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

__all__ = ["READY", "WANTS", "Doorbell", "DoorbellListener", "FanoutEvent", "WakeSignal"]

READY = b"!"
"""The datagram that says runs are ready to claim."""
WANTS = b"w"
"""The datagram that says a worker's want of more runs changed."""


class Doorbell:
    """Sends wake-up datagrams. Never raises: a dead port is simply skipped."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None

    def ring(self, ports: list[int], message: bytes = READY) -> None:
        """Send ``message`` (:data:`READY` or :data:`WANTS`) to each port on 127.0.0.1."""
        if not ports:
            return
        if self._sock is None:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        for port in ports:
            with contextlib.suppress(OSError):
                self._sock.sendto(message, ("127.0.0.1", port))

    def close(self) -> None:
        """Close the sending socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class FanoutEvent(asyncio.Event):
    """An event that also sets its followers' events whenever it is set.

    The claimer consumes a listener's event; other services (the worker's scheduler of
    delayed runs) follow the same wake-ups without stealing them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.followers: list[asyncio.Event] = []

    def set(self) -> None:
        """Set this event and every follower."""
        super().set()
        for follower in self.followers:
            follower.set()

    def set_alone(self) -> None:
        """Set this event only (a wake-up meant for the waiter alone)."""
        super().set()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, event: asyncio.Event, wants: asyncio.Event) -> None:
        self.event = event
        self.wants = wants

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        (self.wants if data == WANTS else self.event).set()


class WakeSignal:
    """An event a waiter consumes: :meth:`wait` returns early once it was set, then clears it.

    The base of every backend's wake-up listener (doorbell, LISTEN/NOTIFY).
    """

    def __init__(self) -> None:
        self._event = FanoutEvent()
        self.wants = asyncio.Event()
        """Set when another worker's want of more runs changed (its owner, the worker's share
        service, clears it): a wake-up of its own, apart from "runs are ready"."""

    def follow(self) -> asyncio.Event:
        """A new event set on every wake-up from outside (not by :meth:`poke`); its owner clears
        it. The signal's own waiter is unaffected."""
        follower = asyncio.Event()
        self._event.followers.append(follower)
        return follower

    def poke(self) -> None:
        """Wake the waiter from inside this process (followers are not woken: a poke says
        slots were freed or runs were made ready here, which they already know)."""
        self._event.set_alone()

    async def wait(self, timeout: float) -> bool:
        """Wait for a wake-up or ``timeout`` seconds; True if woken."""
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        woken = self._event.is_set()
        self._event.clear()
        return woken


class DoorbellListener(WakeSignal):
    """Receives wake-ups; :meth:`wait` returns early when one arrives."""

    def __init__(
        self, transport: asyncio.DatagramTransport, event: FanoutEvent, wants: asyncio.Event
    ) -> None:
        super().__init__()
        self._transport = transport
        self._event = event
        self.wants = wants
        self.port: int | None = transport.get_extra_info("sockname")[1]

    @classmethod
    async def start(cls) -> DoorbellListener:
        """Bind an ephemeral UDP port on 127.0.0.1."""
        event = FanoutEvent()
        wants = asyncio.Event()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(event, wants), local_addr=("127.0.0.1", 0)
        )
        return cls(transport, event, wants)

    def close(self) -> None:
        """Stop listening."""
        self._transport.close()
