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
