"""CloudStack's usage types (reference §7.1; ``UsageTypes.java``): id, name, description."""

from __future__ import annotations

RUNNING_VM, ALLOCATED_VM, IP_ADDRESS = 1, 2, 3
VOLUME, TEMPLATE, ISO, SNAPSHOT, VM_SNAPSHOT = 6, 7, 8, 9, 25
BUCKET = 29
SECURITY_GROUP, LOAD_BALANCER_POLICY, PORT_FORWARDING_RULE, NETWORK_OFFERING = 10, 11, 12, 13
# Cumulo's own object-storage types (ids 100-119 are reserved for them; docs/usage.md).
S3_REQUESTS_WRITE, S3_REQUESTS_READ, S3_BYTES_IN, S3_BYTES_OUT = 100, 101, 102, 103

USAGE_TYPES: dict[int, tuple[str, str]] = {
    1: ("RUNNING_VM", "Running Vm Usage"),
    2: ("ALLOCATED_VM", "Allocated Vm Usage"),
    3: ("IP_ADDRESS", "IP Address Usage"),
    4: ("NETWORK_BYTES_SENT", "Network Usage (Bytes Sent)"),
    5: ("NETWORK_BYTES_RECEIVED", "Network Usage (Bytes Received)"),
    6: ("VOLUME", "Volume Usage"),
    7: ("TEMPLATE", "Template Usage"),
    8: ("ISO", "ISO Usage"),
    9: ("SNAPSHOT", "Snapshot Usage"),
    10: ("SECURITY_GROUP", "Security Group Usage"),
    11: ("LOAD_BALANCER_POLICY", "Load Balancer Usage"),
    12: ("PORT_FORWARDING_RULE", "Port Forwarding Usage"),
    13: ("NETWORK_OFFERING", "Network Offering Usage"),
    14: ("VPN_USERS", "VPN users usage"),
    21: ("VM_DISK_IO_READ", "VM Disk usage(I/O Read)"),
    22: ("VM_DISK_IO_WRITE", "VM Disk usage(I/O Write)"),
    23: ("VM_DISK_BYTES_READ", "VM Disk usage(Bytes Read)"),
    24: ("VM_DISK_BYTES_WRITE", "VM Disk usage(Bytes Write)"),
    25: ("VM_SNAPSHOT", "VM Snapshot storage usage"),
    26: ("VOLUME_SECONDARY", "Volume on secondary storage usage"),
    27: ("VM_SNAPSHOT_ON_PRIMARY", "VM Snapshot on primary storage usage"),
    28: ("BACKUP", "Backup storage usage"),
    29: ("BUCKET", "Bucket storage usage"),
    30: ("NETWORK", "Network usage"),
    31: ("VPC", "VPC usage"),
    100: ("S3_REQUESTS_WRITE", "Object storage PUT, COPY, POST and LIST requests"),
    101: ("S3_REQUESTS_READ", "Object storage GET and other requests"),
    102: ("S3_BYTES_IN", "Object storage bytes received"),
    103: ("S3_BYTES_OUT", "Object storage bytes sent"),
}
