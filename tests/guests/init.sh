#!/bin/sh
# /init of kiln's test initramfs (busybox). Prints KILN-INIT-READY, then runs the guest test
# named by kiln.test= on the kernel command line, or gives an interactive shell.
#   facts     print "KILN-FACT key=value" lines about what the guest sees, then power off
#   poweroff  power off          reboot  reboot          panic  crash the kernel (sysrq c)
#   hang      wait forever (for signal tests)
#   disks     report virtio disks and rng; on /dev/vda (ext4): read hello.txt, write
#             written.bin (8 MiB, synced), fstrim; try to write /dev/vdb when it exists
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "/lib/modules/$m" || echo "init: insmod $m failed"; done < /etc/modules-load
# Firecracker's boot-timer register: tells the VMM that /init has started.
devmem 0xc0000000 8 123 2>/dev/null
echo KILN-INIT-READY

test=""
for arg in $(cat /proc/cmdline); do
	case $arg in kiln.test=*) test=${arg#kiln.test=} ;; esac
done

fact() { echo "KILN-FACT $1=$2"; }
case $test in
facts)
	fact nproc "$(nproc)"
	fact cpus_in_cpuinfo "$(grep -c ^processor /proc/cpuinfo)"
	fact memtotal_kb "$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
	fact date_epoch "$(date +%s)"
	fact acpi_tables "$(ls /sys/firmware/acpi/tables | tr '\n' ' ')"
	fact uname_r "$(uname -r)"
	fact cmdline "$(cat /proc/cmdline)"
	echo KILN-FACTS-END
	poweroff -f ;;
disks)
	for d in /sys/block/vd*; do
		[ -e "$d" ] || continue
		n=${d##*/}
		fact "${n}_sectors" "$(cat "$d/size")"
		fact "${n}_ro" "$(cat "$d/ro")"
		fact "${n}_serial" "$(cat "$d/serial" 2>/dev/null)"
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
poweroff) poweroff -f ;;
reboot) reboot -f ;;
panic)
	echo 1 > /proc/sys/kernel/sysrq
	echo c > /proc/sysrq-trigger ;;
hang) while :; do sleep 3600; done ;;
"")
	# Interactive: "poweroff" and "reboot" act at once, as there is no init system to ask.
	echo 'alias poweroff="poweroff -f"; alias reboot="reboot -f"; PS1="kiln# "' > /etc/profile
	export ENV=/etc/profile
	exec setsid cttyhack sh -l ;;
*) echo "init: unknown kiln.test=$test"; poweroff -f ;;
esac
sleep 5
echo "init: test $test did not end the VM"
poweroff -f
