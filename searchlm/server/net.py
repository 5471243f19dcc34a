"""Binding the server's socket, and which names count as this machine."""

from __future__ import annotations

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def listen(host: str, port: int):
    """A socket bound to (host, port), or an InputError that names the address and a fix. Binding before the
    app starts means a taken port is reported before any model loads or any banner claims the address."""
    import socket

    from searchlm.errors import InputError

    if not 1 <= port <= 65535:
        raise InputError(f"port {port} is out of range (use a port from 1 to 65535, e.g. --port 8000)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"host '{host}' cannot be resolved ({exc}); use an address such as --host 127.0.0.1") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart without a wait
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise InputError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); is another server there? Use another port, "
            f"e.g. --port {port + 1 if port < 65535 else 8000}"
        ) from None
    sock.set_inheritable(True)
    return sock
