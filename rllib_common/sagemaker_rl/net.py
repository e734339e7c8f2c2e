"""Ports and addresses on this machine: the one free-port helper of the project, and a TCP probe.

Everything that starts a server on a port it picks (a Ray node's servers, the local runner's Ray head, the moto
stand-ins, the notebooks' arena server, the Docker stage's S3) asks here, so every pick is made the same way. The
module uses the standard library only: the tests, the Docker scripts and the notebooks import it as freely as the
platform layer does (the game and the server never need it).
"""

from __future__ import annotations

import socket


def free_ports(count: int, host: str = "") -> list[int]:
    """``count`` different TCP ports nothing is bound to on ``host`` right now (``""``: every address, as Ray binds
    some of its servers).

    Every socket is held until all are picked, so the picks differ; the ports are free again when this returns, and
    whoever binds them next is expected to do it at once.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((host, 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """One TCP port nothing listens on right now on ``host`` (for a server started next)."""
    return free_ports(1, host)[0]


def tcp_answers(address: str, timeout_s: float = 2.0) -> bool:
    """Whether something accepts TCP connections at ``ip:port``."""
    ip, _, port = address.rpartition(":")
    try:
        with socket.create_connection((ip, int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False
