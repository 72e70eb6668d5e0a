"""The emulator's process on its port: a port whose last connections wait out TIME_WAIT is free, and
the port of an emulator just killed is waited for a moment."""

from __future__ import annotations

import socket

from runner.local.process import LOOPBACK, port_frees, port_in_use


def listening(port: int = 0) -> tuple[socket.socket, int]:
    """A server socket on loopback, as the emulator binds it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((LOOPBACK, port))
    server.listen()
    return server, server.getsockname()[1]


def test_a_listening_port_is_in_use_and_one_in_time_wait_is_not():
    server, port = listening()
    client = socket.create_connection((LOOPBACK, port))
    accepted, _ = server.accept()
    assert port_in_use(port)
    accepted.close()  # the server's side closes first, so its end of the connection enters TIME_WAIT
    client.close()
    server.close()
    assert not port_in_use(port)


def test_the_port_a_killed_emulator_had_is_waited_for_a_moment_and_no_longer():
    server, port = listening()
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the socket goes away while the start waits
        waits.append(seconds)
        if len(waits) == 3:
            server.close()

    assert port_frees(port, sleep=sleep) and len(waits) == 3
    taken, _ = listening(port)
    assert not port_frees(port, within=0.2)  # another program took it: the start picks another
    taken.close()
