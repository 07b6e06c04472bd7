#!/bin/sh
# /init of kiln's test initramfs (busybox). Prints KILN-INIT-READY, then runs the guest test
# named by kiln.test= on the kernel command line, or gives an interactive shell.
#   facts     print "KILN-FACT key=value" lines about what the guest sees, then power off
#   poweroff  power off          reboot  reboot          panic  crash the kernel (sysrq c)
#   hang      wait forever (for signal tests)
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
