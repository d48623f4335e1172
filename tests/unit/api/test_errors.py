"""Error replies carry the errno a socket call would fail with."""

from __future__ import annotations

import errno

from vrouter.api.protocol import ApiError


def test_an_error_with_an_errno_names_it_and_comes_back_whole() -> None:
    reply = ApiError("connect to port 80: ECONNREFUSED: Connection refused", errno.ECONNREFUSED)
    assert reply.reply() == {
        "ok": False,
        "error": "connect to port 80: ECONNREFUSED: Connection refused",
        "errno": "ECONNREFUSED",
    }
    back = ApiError.from_reply(reply.reply())
    assert (str(back), back.errno) == (str(reply), errno.ECONNREFUSED)
    assert isinstance(OSError(back.errno, str(back)), ConnectionRefusedError)


def test_an_error_without_an_errno_or_with_a_bogus_one_has_none() -> None:
    assert ApiError("no vnet named 'red'").reply() == {"ok": False, "error": "no vnet named 'red'"}
    assert ApiError.from_reply({"ok": False, "error": "x", "errno": "ENOPE"}).errno is None
    assert ApiError.from_reply({"ok": False}).errno is None
    assert str(ApiError.from_reply({"ok": False})) == "request failed"


def test_errors_are_oserrors_of_the_subclass_their_errno_calls_for() -> None:
    refused = ApiError.from_reply(
        {"ok": False, "error": "permission denied: uid 1000 may not manage vnet red",
         "errno": "EACCES"}
    )
    assert isinstance(refused, ApiError) and isinstance(refused, PermissionError)
    assert refused.errno == errno.EACCES
    assert str(refused) == "permission denied: uid 1000 may not manage vnet red"
    full = ApiError.from_reply({"ok": False, "error": "socket limit 1 reached", "errno": "EMFILE"})
    assert isinstance(full, OSError) and full.errno == errno.EMFILE
    in_use = ApiError.from_reply({"ok": False, "error": "port 80 in use", "errno": "EADDRINUSE"})
    try:
        raise in_use
    except OSError as err:  # what code written for kernel sockets catches
        assert err.errno == errno.EADDRINUSE
    assert isinstance(ApiError.from_reply({"ok": False, "errno": "ETIMEDOUT"}), TimeoutError)
