"""vrouter: many independent network stacks (vnets) in one userspace daemon."""

__version__ = "0.1.0"
