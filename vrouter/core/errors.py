"""Errors shared across layers.

:class:`OpError` is what a refused or failed run-time operation raises
(:class:`vrouter.daemon.ops.Ops`); it lives here, at the bottom, so the
layers that call operations (the control API, the route socket) can catch
it without importing the daemon.
"""

from __future__ import annotations


class OpError(Exception):
    """An operation was refused or failed; the message names the vnet and interface."""
