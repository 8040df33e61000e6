"""Hypervisor drivers: ``sim`` (in-process simulator) and ``qemu`` (QEMU over QMP)."""
