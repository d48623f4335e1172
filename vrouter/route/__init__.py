"""Routing: per-vnet forwarding tables."""
