"""The link layer: interfaces, Ethernet demux, epair links."""
