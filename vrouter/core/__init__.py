"""The vnet core: vnets and their tree, the subsystem registry, time and timers."""
