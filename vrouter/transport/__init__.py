"""Transport: the sockets programs hold in a vnet (UDP, raw IP, route), sans-IO."""
