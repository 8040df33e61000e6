"""The host's guest-network dataplane: VXLAN segments and router namespaces (issue 7)."""
