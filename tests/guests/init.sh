#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# /init of kiln's test initramfs (busybox). Prints KILN-INIT-READY, then runs the guest test
# named by kiln.test= on the kernel command line, or gives an interactive shell.
#   facts     print "KILN-FACT key=value" lines about what the guest sees, then power off
#   poweroff  power off          reboot  reboot          panic  crash the kernel (sysrq c)
#   hang      wait forever (for signal tests)
#   flood     print to the serial console forever
#   hostile   drive the virtio-mmio rng in slot 0 as a hostile driver (devmem), report status
#   hostile-net  the same for virtio-net in slot 0 (kiln.ip=, kiln.peer=), then ping the peer
#   serve-net eth0 at kiln.ip= (or DHCP) and an iperf3 server (the bench initramfs has iperf3)
#   hostile-all  attack every device kiln has for kiln.secs= seconds (tests/guests/hostile.c)
#   disks     report virtio disks and rng; on /dev/vda (ext4): read hello.txt, write
#             written.bin (8 MiB, synced), fstrim; try to write /dev/vdb when it exists
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "/lib/modules/$m" || echo "init: insmod $m failed"; done < /etc/modules-load
# udhcpc's hook (udhcpc -s /etc/udhcpc.sh): configure the lease it got.
cat > /etc/udhcpc.sh <<'EOF'
#!/bin/sh
case $1 in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
	: > /etc/resolv.conf
	for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done ;;
esac
EOF
chmod +x /etc/udhcpc.sh
# Firecracker's boot-timer register: tells the VMM that /init has started.
devmem 0xc0000000 8 123 2>/dev/null
echo KILN-INIT-READY

test=""
for arg in $(cat /proc/cmdline); do
	case $arg in kiln.test=*) test=${arg#kiln.test=} ;; esac
done

fact() { echo "KILN-FACT $1=$2"; }
# A hostile driver's tools for the virtio-mmio device in slot 0, written with devmem: its
# registers, and a descriptor table, available and used ring in the low 1 MiB that Linux keeps
# for itself (and /dev/mem may reach).
base=$((0xd0000000)) desc=$((0x80000)) avail=$((0x81000)) used=$((0x82000))
w() { devmem $((base + $1)) 32 "$2"; }
r() { devmem $((base + $1)) 32; }
status() { echo $(( $(r 0x70) & 0x40 )); }  # DEVICE_NEEDS_RESET
d() { # descriptor $1: addr $2, len $3, flags $4, next $5
	devmem $((desc + 16 * $1)) 64 "$2"; devmem $((desc + 16 * $1 + 8)) 32 "$3"
	devmem $((desc + 16 * $1 + 12)) 16 "$4"; devmem $((desc + 16 * $1 + 14)) 16 "$5"
}
offer() { # head $1 at avail index $2 (ring of 8)
	devmem $((avail + 4 + 2 * ($2 % 8))) 16 "$1"; devmem $((avail + 2)) 16 $(($2 + 1))
}
version_1() { w 0x70 0; w 0x70 3; w 0x24 1; w 0x20 1; w 0x24 0; w 0x20 0; w 0x70 11; }
case $test in
facts)
	fact nproc "$(nproc)"
	fact cpus_in_cpuinfo "$(grep -c ^processor /proc/cpuinfo)"
	fact memtotal_kb "$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
	fact date_epoch "$(date +%s)"
	fact acpi_tables "$(ls /sys/firmware/acpi/tables | tr '\n' ' ')"
	fact uname_r "$(uname -r)"
	fact cmdline "$(cat /proc/cmdline)"
	fact clockevent "$(cat /sys/devices/system/clockevents/clockevent0/current_device)"
	echo KILN-FACTS-END
	poweroff -f ;;
disks)
	for d in /sys/block/vd*; do
		[ -e "$d" ] || continue
		n=${d##*/}
		fact "${n}_sectors" "$(cat "$d/size")"
		fact "${n}_ro" "$(cat "$d/ro")"
		fact "${n}_serial" "$(cat "$d/serial" 2>/dev/null)"
		fact "${n}_write_cache" "$(cat "$d/queue/write_cache")"
	done
	fact msix_vectors "$(grep -c 'PCI-MSI' /proc/interrupts)"
	fact virtio_transport "$(basename "$(readlink /sys/bus/virtio/devices/virtio0/../driver 2>/dev/null)")"
	rng=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
	fact rng "$rng"
	# /dev/hwrng blocks forever when no RNG is behind it.
	[ "$rng" = none ] || [ -z "$rng" ] || fact rng_bytes "$(head -c 65536 /dev/hwrng | wc -c)"
	mkdir -p /mnt
	if mount -t ext4 /dev/vda /mnt; then
		fact hello "$(cat /mnt/hello.txt)"
		dd if=/dev/urandom of=/mnt/written.bin bs=1M count=8 2>/dev/null
		sync
		fact written_sha256 "$(sha256sum /mnt/written.bin | cut -d' ' -f1)"
		fstrim /mnt && fact fstrim ok
		umount /mnt && fact umount ok
	fi
	if [ -b /dev/vdb ]; then
		if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync 2>/dev/null; then
			fact vdb_write ok
		else
			fact vdb_write refused
		fi
		fact vdb_sha256 "$(sha256sum /dev/vdb | cut -d' ' -f1)"
	fi
	echo KILN-FACTS-END
	poweroff -f ;;
hostile)
	# A hostile driver for the virtio-rng device in virtio-mmio slot 0. Each case must leave
	# kiln running; the device says DEVICE_NEEDS_RESET (0x40) where the spec wants.
	echo LNRO0005:00 > /sys/bus/platform/drivers/virtio-mmio/unbind
	start() { # queue 0 with size $1, then DRIVER_OK
		version_1
		w 0x30 0; w 0x38 "$1"
		w 0x80 $desc; w 0x84 0; w 0x90 $avail; w 0x94 0; w 0xa0 $used; w 0xa4 0
		w 0x44 1; w 0x70 15
	}
	fact magic "$(r 0)"
	w 0x70 0; w 0x70 3; w 0x24 1; w 0x20 0; w 0x70 11          # no VERSION_1
	fact no_version_1_features_ok $(( $(r 0x70) & 8 ))
	start 3; fact bad_size "$(status)"                          # not a power of two
	start 8; fact good_start "$(status)"
	d 0 $((0x90000)) 16 3 1; d 1 $((0x90000)) 16 3 0; offer 0 0; w 0x50 0
	sleep 1; fact loop "$(status)"                              # a chain that loops
	start 8; d 0 $((0xfffff000)) 4096 2 0; offer 0 0; w 0x50 0
	sleep 1; fact outside_ram "$(status)"                       # a buffer in the MMIO hole
	start 8; devmem $((avail + 2)) 16 100; w 0x50 0
	sleep 1; fact avail_jump "$(status)"                        # more buffers than the ring
	start 8; w 0x50 7; w 0x50 0x12345; sleep 1
	fact bad_queue_notify "$(status)"                           # queues that do not exist
	w 0x70 0
	echo LNRO0005:00 > /sys/bus/platform/drivers/virtio-mmio/bind
	sleep 1
	fact rng_after_reset "$(head -c 64 /dev/hwrng | wc -c)"     # the device works again
	echo KILN-FACTS-END
	poweroff -f ;;
hostile-net)
	# A hostile driver for the virtio-net device in virtio-mmio slot 0 (on a tap; kiln.ip= and
	# kiln.peer= on the command line): a frame shorter than its headers, one longer than any
	# frame, one whose virtio-net header the host refuses, then a valid one, then a looping
	# chain. kiln drops and counts the bad frames, returns every buffer, breaks the ring only
	# for the loop, and the device works again after a reset.
	for arg in $(cat /proc/cmdline); do
		case $arg in kiln.ip=*) ip=${arg#kiln.ip=} ;; kiln.peer=*) peer=${arg#kiln.peer=} ;; esac
	done
	echo LNRO0005:00 > /sys/bus/platform/drivers/virtio-mmio/unbind
	send() { offer "$1" "$2"; w 0x50 1; sleep 1; }  # and kick the transmit queue
	queue() { # queue $1 of size 8 with its rings at $2, $2 + 4K, $2 + 8K
		w 0x30 "$1"; w 0x38 8; w 0x80 "$2"; w 0x84 0; w 0x90 $(($2 + 0x1000)); w 0x94 0
		w 0xa0 $(($2 + 0x2000)); w 0xa4 0; w 0x44 1; }
	version_1                                                # and no device features
	queue 0 $((0x83000)); queue 1 $desc; w 0x70 15
	hdr=$((0x86000)) bad=$((0x87000))
	for off in 0 4 8 12 16 20 24 28 32 36 40 44 48 52 56 60 64 68; do devmem $((hdr + off)) 32 0; done
	devmem $((hdr + 12)) 32 0xffffffff; devmem $((hdr + 16)) 16 0xffff      # broadcast
	devmem $((hdr + 18)) 32 0x00545202; devmem $((hdr + 22)) 16 0x0101      # from 02:52:54:00:01:01
	devmem $((hdr + 24)) 16 0xb588                                          # local ethertype
	for off in 0 4 8; do devmem $((bad + off)) 32 0; done
	devmem $((bad + 1)) 8 0x55                                              # no such gso_type
	d 0 $hdr 20 0 0; send 0 0                                               # too short
	d 1 $((0x88000)) 65536 1 2; d 2 $((0x98000)) 8192 0 0; send 1 1        # too long
	d 3 $bad 12 1 4; d 4 $((hdr + 12)) 60 0 0; send 3 2                     # bad header
	d 5 $hdr 72 0 0; send 5 3                                               # a good frame
	fact used_idx $(( $(devmem $((used + 2)) 16) ))
	fact needs_reset "$(status)"
	d 6 $hdr 72 1 7; d 7 $hdr 72 1 6; send 6 4                              # a looping chain
	fact loop_needs_reset "$(status)"
	w 0x70 0
	echo LNRO0005:00 > /sys/bus/platform/drivers/virtio-mmio/bind
	sleep 1
	ip addr add "$ip" dev eth0 && ip link set eth0 up
	ping -c 2 -W 5 "$peer" > /dev/null && fact ping_after_reset ok
	echo KILN-FACTS-END
	poweroff -f ;;
serve-net)
	# For bench/net.py: eth0 at kiln.ip= (DHCP when none), an iperf3 server, then wait.
	ip=""
	for arg in $(cat /proc/cmdline); do case $arg in kiln.ip=*) ip=${arg#kiln.ip=} ;; esac; done
	ip link set eth0 up
	if [ -n "$ip" ]; then ip addr add "$ip" dev eth0; else udhcpc -i eth0 -s /etc/udhcpc.sh -q -n; fi
	iperf3 -s -D && echo KILN-NET-READY
	while :; do sleep 3600; done ;;
hostile-all)
	# tests/guests/hostile for kiln.secs= seconds (seed kiln.seed=) while the drivers keep
	# using their devices, then a report and a power-off.
	secs=30 seed=""
	for arg in $(cat /proc/cmdline); do
		case $arg in kiln.secs=*) secs=${arg#kiln.secs=} ;; kiln.seed=*) seed=${arg#kiln.seed=} ;; esac
	done
	for d in /dev/vd?; do
		[ -b "$d" ] && (while :; do dd if="$d" of=/dev/null bs=4k count=64 iflag=direct; done) >/dev/null 2>&1 &
	done
	[ -c /dev/hwrng ] && (while :; do head -c 4096 /dev/hwrng; done) >/dev/null 2>&1 &
	ip link set eth0 up 2>/dev/null && (udhcpc -i eth0 -s /etc/udhcpc.sh -q -n; while :; do ping -c 1 -W 1 10.0.2.2; done) >/dev/null 2>&1 &
	# The kernel's log shows the guest alive every 10 s, whatever the attack did to the
	# serial port's settings: a test that times out tells a dead guest from a stuck kiln.
	(while :; do sleep 10; echo "hostile-all: alive" > /dev/kmsg; done) &
	# The report goes through the kernel's log, which reaches the serial port by polling it:
	# the attack may have made the guest kernel give up on the port's interrupt ("irq 4:
	# nobody cared", its decision, not kiln's), which stops tty output but not printk.
	hostile "$secs" $seed > /tmp/hostile.out 2>&1 && echo "hostile: exit 0" >> /tmp/hostile.out
	while read -r line; do echo "$line" > /dev/kmsg; done < /tmp/hostile.out
	grep -q "^hostile: exit 0" /tmp/hostile.out && echo "KILN-FACT hostile=done" > /dev/kmsg
	echo KILN-FACTS-END > /dev/kmsg
	poweroff -f ;;
poweroff) poweroff -f ;;
reboot) reboot -f ;;
panic)
	echo 1 > /proc/sys/kernel/sysrq
	echo c > /proc/sysrq-trigger ;;
hang) while :; do sleep 3600; done ;;
flood) while :; do echo "kiln-flood 0123456789abcdefghijklmnopqrstuvwxyz"; done ;;
"")
	# Interactive: "poweroff" and "reboot" act at once, as there is no init system to ask.
	echo 'alias poweroff="poweroff -f"; alias reboot="reboot -f"; PS1="kiln# "' > /etc/profile
	export ENV=/etc/profile
	# A second console (virtio-console): a login shell there too.
	[ -c /dev/hvc0 ] && setsid sh -c 'exec sh -l </dev/hvc0 >/dev/hvc0 2>&1' &
	exec setsid cttyhack sh -l ;;
*) echo "init: unknown kiln.test=$test"; poweroff -f ;;
esac
sleep 5
echo "init: test $test did not end the VM"
poweroff -f
