"""The host agent: hypervisor drivers, host storage and networking (imports agentrpc only)."""
