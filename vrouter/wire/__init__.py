"""Pure bytes <-> values, one module per protocol.

Nothing in this package imports the rest of vrouter: parsers and builders take
bytes and return values (or raise :class:`~vrouter.wire.errors.IntegrityError`
/ :class:`~vrouter.wire.errors.SanityError`), builders return bytes.
"""
