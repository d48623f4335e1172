"""The daemon: config, host namespaces, start-up and shutdown, signals."""
