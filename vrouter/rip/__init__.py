"""RIP for vnets: RIPv2 (RFC 2453) and RIPng (RFC 2080), sans-IO, and ``vrouter-ripd``."""
