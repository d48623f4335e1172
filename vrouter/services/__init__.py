"""Services a vnet runs in the daemon itself (DHCP)."""
