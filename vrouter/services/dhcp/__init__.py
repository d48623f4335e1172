"""DHCPv4: the server (RFC 2131), sans-IO decisions in ``server``, the wire side in ``state``."""
