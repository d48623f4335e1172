"""IPv6: ND, router advertisements, input/forwarding/output and ICMPv6, per vnet, sans-IO."""
