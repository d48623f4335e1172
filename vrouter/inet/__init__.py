"""IPv4: ARP, IP input/forwarding/output and ICMP, all per vnet and sans-IO."""
