"""The control plane: the control socket server, its protocol, the client."""
