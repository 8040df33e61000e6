"""Compute: the VM state machine, placement, and the VM lifecycle orchestration."""
