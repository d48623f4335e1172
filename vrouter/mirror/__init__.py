"""The control-plane mirror: a Linux namespace that shadows a vnet for unmodified programs.

Each vnet with a ``[vnets.NAME.mirror]`` gets a network namespace holding a
*representor* TAP per vnet interface (same name, MAC, MTU and addresses).
Traffic for the vnet that the vnet does not serve itself is punted to the
representor of the interface it came in on (:mod:`.punt`); what the mirror's
kernel sends on a representor leaves through the vnet's own output; routes
that routing daemons install in the mirror come back over netlink as route
sources of their own (:mod:`.rtnetlink`, :mod:`.sync`).  :mod:`.state` is the
per-vnet, sans-IO part; :mod:`.manager` does the I/O.
"""
