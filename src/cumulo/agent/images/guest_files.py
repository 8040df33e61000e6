# ruff: noqa: E501  (the guest scripts are shell: their long lines read better unbroken)
"""The tiny test guest's own programs: busybox shell scripts baked into its image.

They follow the measured recipe in ``shared/reference/compute-probe.md`` §3. The same
``/init`` serves two boots: from the self-contained disk (syslinux passes ``root=/dev/vda2``)
and from a bare kernel + initramfs with no disk (the accelerator probe), where it runs
``stage2`` straight from the initramfs.

Instance data comes, lowest priority first, from the kernel command line
(``guest.hostname=``), the SMBIOS OEM string ``cumulo.hostname=`` the QEMU driver sets, and
the CloudStack metadata service on the DHCP server (``/latest/meta-data/local-hostname``,
``/latest/meta-data/public-keys``, ``/latest/user-data``; ``shared/reference/ecosystem.md``
§4). Without a network the guest skips the service quietly.
"""

from __future__ import annotations

# Load order from the modules' depends= fields (busybox insmod does not resolve them);
# button + evdev let busybox acpid see the ACPI power button, so a soft stop is quick.
MODULES = (
    "drivers/virtio/virtio_ring",
    "drivers/virtio/virtio",
    "drivers/virtio/virtio_pci_modern_dev",
    "drivers/virtio/virtio_pci_legacy_dev",
    "drivers/virtio/virtio_pci",
    "drivers/virtio/virtio_mmio",
    "net/core/failover",
    "drivers/net/net_failover",
    "drivers/net/virtio_net",
    "drivers/block/virtio_blk",
    "drivers/input/evdev",
    "drivers/acpi/button",
)

_MODULE_NAMES = " ".join(path.rsplit("/", 1)[1] for path in MODULES)

INIT = f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
echo "GUEST-INIT uptime=$(cut -d' ' -f1 /proc/uptime)"
for m in {_MODULE_NAMES}; do
  insmod /lib/modules/$m.ko 2>/dev/null
done
ROOT=""
for a in $(cat /proc/cmdline); do case "$a" in root=*) ROOT="${{a#root=}}";; esac; done
if [ -n "$ROOT" ]; then
  i=0; while [ ! -b "$ROOT" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  mount -t ext4 -o rw "$ROOT" /newroot || {{ echo "GUEST-FAIL mount $ROOT"; exec sh; }}
  mount --move /proc /newroot/proc; mount --move /sys /newroot/sys
  mount --move /dev /newroot/dev
  exec switch_root /newroot /sbin/stage2
fi
exec /sbin/stage2
"""

STAGE2 = r"""#!/bin/busybox sh
[ -e /proc/self ] || mount -t proc proc /proc
[ -d /sys/class ] || mount -t sysfs sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin 2>/dev/null
mkdir -p /tmp /run /root/.ssh /www /var/log
HN=guest
for f in /sys/firmware/dmi/entries/11-*/raw; do
  [ -r "$f" ] || continue
  v=$(strings "$f" | sed -n 's/^cumulo.hostname=//p' | head -1)
  [ -n "$v" ] && HN="$v"
done
for a in $(cat /proc/cmdline); do case "$a" in guest.hostname=*) HN="${a#guest.hostname=}";; esac; done
hostname "$HN"; ip link set lo up; IP=none
acpid -c /etc/acpi -l /var/log/acpid.log 2>/dev/null
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up; n=0
  while [ $n -lt 4 ]; do            # one udhcpc -t 10 sometimes gave up under TCG: retry
    udhcpc -i eth0 -n -q -t 3 -T 2 -s /sbin/udhcpc.script >/dev/null 2>&1
    IP=$(ip -4 -o addr show eth0 | awk '{print $4}'); [ -n "$IP" ] && break; n=$((n+1))
  done
  [ -n "$IP" ] || IP=none
fi
/sbin/metadata
[ -s /run/hostname ] && HN=$(cat /run/hostname) && hostname "$HN"
echo "hostname=$HN" > /www/index.html
httpd -p 80 -h /www
echo "GUEST-READY host=$HN ip=$IP root=$(awk '$2=="/"{print $1":"$3}' /proc/mounts | tail -1) uptime=$(cut -d' ' -f1 /proc/uptime)"
[ -x /run/user-data ] && /run/user-data > /www/user-data.out 2>&1 &
while true; do sleep 3600; done
"""

# The DHCP server is the virtual router, which also serves metadata on port 80.
METADATA = r"""#!/bin/sh
[ -s /run/dhcp-server ] || exit 0
MD="http://$(cat /run/dhcp-server)/latest"
get() { timeout 5 wget -q -O "$2" "$MD/$1" 2>/dev/null; }
if get meta-data/local-hostname /tmp/hn && [ -s /tmp/hn ]; then
  tr -d '\r\n' < /tmp/hn > /run/hostname
fi
if get meta-data/public-keys /tmp/keys && [ -s /tmp/keys ]; then
  cp /tmp/keys /root/.ssh/authorized_keys; chmod 600 /root/.ssh/authorized_keys
  cp /tmp/keys /www/ssh-key
fi
if get user-data /tmp/ud && [ -s /tmp/ud ]; then
  cp /tmp/ud /www/user-data
  head -c 2 /tmp/ud | grep -q '#!' && cp /tmp/ud /run/user-data && chmod +x /run/user-data
fi
exit 0
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
case "$1" in bound|renew)
  ip addr flush dev $interface; ip addr add $ip/${mask:-24} dev $interface
  [ -n "$router" ] && ip route add default via ${router%% *} dev $interface 2>/dev/null
  [ -n "$serverid" ] && echo "$serverid" > /run/dhcp-server ;;
esac; exit 0
"""

# busybox acpid runs /etc/acpi/PWRF/00000080 on the power button; -f because there is
# no init to signal.
POWER_BUTTON = """#!/bin/sh
echo "GUEST-POWEROFF" > /dev/console
sync
poweroff -f
"""

# East-west probe for tests: GET /cgi-bin/fetch?ADDR makes this guest fetch http://ADDR/.
# ``wget -T`` segfaults in Debian's busybox 1.35, hence ``timeout``.
FETCH_CGI = r"""#!/bin/sh
echo "Content-Type: text/plain"; echo ""
if out=$(timeout 5 wget -q -O - "http://$QUERY_STRING/" 2>&1); then echo "OK $out"; else echo "FAIL $out"; fi
"""

# Block-device probe for the volume tests: GET /cgi-bin/disk?list prints "vdX serial sectors"
# per virtio disk; ?write=SERIAL&mb=N fills the disk with that serial with N MiB of random
# data (fsynced); ?sha=SERIAL&mb=N prints the sha256 of its first N MiB read from the device.
DISK_CGI = r"""#!/bin/sh
echo "Content-Type: text/plain"; echo ""
op=""; arg=""; mb=1
for kv in $(echo "$QUERY_STRING" | tr '&' ' '); do
  case "$kv" in list) op=list;; write=*) op=write; arg="${kv#write=}";; sha=*) op=sha; arg="${kv#sha=}";; mb=*) mb="${kv#mb=}";; esac
done
dev_of() { for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = "$1" ] && { echo "${d##*/}"; return; }; done; }
sha() { sync; echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/$1 bs=1M count=$mb 2>/dev/null | sha256sum | cut -d' ' -f1; }
case "$op" in
list) for d in /sys/block/vd*; do echo "${d##*/} $(cat $d/serial 2>/dev/null) $(cat $d/size)"; done ;;
write) dev=$(dev_of "$arg"); [ -n "$dev" ] || { echo "NODEV"; exit 0; }
  dd if=/dev/urandom of=/dev/$dev bs=1M count=$mb conv=fsync 2>/dev/null; sha $dev ;;
sha) dev=$(dev_of "$arg"); [ -n "$dev" ] || { echo "NODEV"; exit 0; }; sha $dev ;;
*) echo "usage: list | write=SERIAL&mb=N | sha=SERIAL&mb=N" ;;
esac
"""

# path in the guest tree -> (text, executable)
FILES: dict[str, tuple[str, bool]] = {
    "init": (INIT, True),
    "sbin/stage2": (STAGE2, True),
    "sbin/metadata": (METADATA, True),
    "sbin/udhcpc.script": (UDHCPC_SCRIPT, True),
    "etc/acpi/PWRF/00000080": (POWER_BUTTON, True),
    "www/cgi-bin/fetch": (FETCH_CGI, True),
    "www/cgi-bin/disk": (DISK_CGI, True),
    "etc/hostname": ("guest\n", False),
}
