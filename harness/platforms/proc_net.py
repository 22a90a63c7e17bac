"""What the kernel holds for a process on a TCP port, read from the text of /proc: the one parser
both platforms use (locally from this machine's /proc, on Kubernetes from what an exec into the
pod prints), so it is tested on crafted text and cannot drift between them.

/proc/net/tcp and /proc/net/tcp6 list every socket of the network namespace, one per line:
`sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...`,
addresses and queues in hex. A LISTEN socket's rx_queue is its accept backlog (connections the
kernel completed and the process has not accepted); an ESTABLISHED socket's rx_queue is bytes
that arrived and were not read. A connection not yet accepted has no file, so inode 0: it counts
in its listener's backlog, and is listed on its own (ESTABLISHED, or CLOSE_WAIT once its caller
gave up) with the caller's address, which is how `peers` says who is waiting.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["TcpQueues", "socket_inodes", "tcp_queues"]

_LISTEN, _ESTABLISHED, _CLOSE_WAIT = "0A", "01", "08"
_SOCKET = re.compile(r"socket:\[(\d+)\]")


@dataclass(frozen=True)
class TcpQueues:
    """Work the kernel holds for the owner of some sockets on a port, unread."""

    accept_queue: int = 0  # connections waiting to be accepted, over the LISTEN sockets
    unread_bytes: int = 0  # bytes waiting in established connections
    connections_with_unread: int = 0
    listening: int = 0  # LISTEN sockets of the owner on the port: 0 means it was not seen at all
    peers: tuple[tuple[str, int], ...] = ()  # caller address → its connections waiting, sorted

    def counts(self) -> dict[str, int]:
        """The three numbers a kill mid-request looks at."""
        return {
            "accept_queue": self.accept_queue,
            "unread_bytes": self.unread_bytes,
            "connections_with_unread": self.connections_with_unread,
        }


def socket_inodes(text: str) -> set[str]:
    """Socket inodes named in `text`: `readlink /proc/<pid>/fd/<n>` targets or `ls -l` lines,
    both of which show a socket as `socket:[<inode>]`."""
    return set(_SOCKET.findall(text))


def tcp_queues(lines: Iterable[str], port: int, inodes: set[str]) -> TcpQueues:
    """Add up the queues of the sockets in `inodes` whose local port is `port`, from lines of
    /proc/net/tcp or tcp6 (header lines and anything else that is not a socket are skipped);
    `peers` counts the callers of the connections not accepted yet and of those with unread bytes."""
    accept = unread = with_unread = listening = 0
    peers: Counter[str] = Counter()
    for line in lines:
        cols = line.split()
        if len(cols) < 10 or not cols[0].endswith(":"):
            continue
        waiting = cols[9] == "0" and cols[3] in (_ESTABLISHED, _CLOSE_WAIT)  # in a backlog
        if cols[9] not in inodes and not waiting:
            continue
        try:
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            queued = int(cols[4].split(":")[1], 16)
        except (IndexError, ValueError):
            continue
        if local_port != port:
            continue
        if waiting:
            peers[_address(cols[2])] += 1
        elif cols[3] == _LISTEN:
            listening += 1
            accept += queued
        elif cols[3] == _ESTABLISHED and queued:
            unread += queued
            with_unread += 1
            peers[_address(cols[2])] += 1
    return TcpQueues(accept, unread, with_unread, listening, tuple(sorted(peers.items())))


def _address(column: str) -> str:
    """The IP of a /proc/net/tcp* address (`0100007F:1F90`: 32-bit words in host order, which
    is little-endian on the machines we run on); the column itself when it cannot be read."""
    text = column.rsplit(":", 1)[0]
    try:
        raw = bytes.fromhex(text)
        packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
        address = ipaddress.ip_address(packed)
    except ValueError:
        return column
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)
