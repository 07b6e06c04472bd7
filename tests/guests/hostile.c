/* SPDX-License-Identifier: Apache-2.0 */
/* hostile — a guest program that attacks kiln's devices from inside the VM, for the hostile-guest
 * integration test (tests/integration/test_hostile_guest.py).
 *
 * For SECONDS it reads and writes random values of random sizes at every I/O port kiln claims
 * (iopl), every MMIO range it claims (/dev/mem: the boot timer, the virtio-mmio slots, PCI ECAM)
 * and every BAR of every PCI device (sysfs resource files: virtio-pci registers, notify areas,
 * MSI-X tables and PBAs), and from time to time takes a virtio device from under its driver:
 * resets it in the middle of its requests, negotiates, and hands it a queue of random
 * descriptors and rings in the low 1 MiB (which /dev/mem reaches), then kicks it. The
 * descriptors' buffers stay in that region or lie outside RAM, so that devices following them
 * faithfully do not corrupt the guest kernel (nor is the balloon taken over: it discards the
 * pages it is given). The kernel's own drivers keep using the devices meanwhile.
 *
 * It never asks kiln to stop the machine (no ACPI sleep, no i8042 reset command, no pvpanic
 * "panicked"), never sends an MSI with an exception vector (the guest kernel would die of it,
 * not kiln), and gives the serial port its line settings back at the end, so that the test can
 * expect the guest to report and power off. Accesses the guest kernel refuses (a fault) are
 * skipped. Prints "hostile: seed S", then "hostile: N accesses M takeovers F faults".
 *   hostile SECONDS [SEED]
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* kiln's map (include/kiln/layout.h). */
#define BOOT_TIMER 0xC0000000ul
#define VIRTIO_MMIO 0xD0000000ul
#define VIRTIO_MMIO_SLOTS 8
#define ECAM 0xE0000000ul
#define ECAM_SIZE 0x100000ul
#define COM1 0x3F8
/* The takeover's queue in low memory the guest kernel leaves alone: descriptor table (also
 * where indirect tables point) at +0, avail ring at +0x1000, used ring at +0x2000, the buffers'
 * data at +0x3000 up to LOW_SIZE. */
#define LOW_RINGS 0x80000ul
#define LOW_DATA 0x3000ul
#define LOW_SIZE 0x10000ul

struct range {
	volatile uint8_t *p;
	unsigned long len;
	int msix;             /* an MSI-X table is at [msix_off, msix_off + 16 * n) */
	unsigned long msix_off, msix_len;
};

static const struct { uint16_t port, len; } ports[] = {
	{ 0x60, 1 }, { 0x64, 1 }, { 0x70, 2 }, { 0x80, 1 }, { COM1, 8 }, { 0x505, 1 },
	{ 0x600, 4 }, { 0x604, 2 }, { 0xCF8, 8 },
};

static struct range mmio[64];
static unsigned nr_mmio;
static int mem_fd;
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static volatile uint8_t *map_phys(unsigned long addr, unsigned long len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mem_fd, (off_t)addr);

	return p == MAP_FAILED ? NULL : p;
}

static void add_range(volatile uint8_t *p, unsigned long len)
{
	if (p && nr_mmio < sizeof(mmio) / sizeof(mmio[0]))
		mmio[nr_mmio++] = (struct range){ .p = p, .len = len };
}

/* Every BAR of every PCI device, mapped through sysfs; where a BAR holds an MSI-X table, note
 * it (from the capability list in config space). */
static void add_pci_bars(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[300];
		uint8_t cfg[256] = { 0 };
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", e->d_name);
		fd = open(path, O_RDONLY);
		if (fd >= 0) {
			if (read(fd, cfg, sizeof(cfg)) < 0)
				memset(cfg, 0, sizeof(cfg));
			close(fd);
		}
		for (int bar = 0; bar < 6; bar++) {
			unsigned first = nr_mmio;
			off_t len;

			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource%d", e->d_name, bar);
			fd = open(path, O_RDWR | O_SYNC);
			if (fd < 0)
				continue;
			len = lseek(fd, 0, SEEK_END);
			if (len > 0) {
				void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

				add_range(p == MAP_FAILED ? NULL : p, (unsigned long)len);
			}
			close(fd);
			/* The MSI-X capability (ID 0x11): table offset and BIR, entries. */
			for (unsigned c = cfg[0x34]; nr_mmio > first && c && c < 0xfc; c = cfg[c + 1]) {
				uint32_t table;

				if (cfg[c] != 0x11)
					continue;
				memcpy(&table, cfg + c + 4, 4);
				if ((int)(table & 7) != bar)
					continue;
				mmio[first].msix = 1;
				mmio[first].msix_off = table & ~7u;
				mmio[first].msix_len = 16ul * (((cfg[c + 2] | cfg[c + 3] << 8) & 0x7ff) + 1);
			}
		}
	}
	if (d)
		closedir(d);
}

/* Byte @v written at port @port, made one that does not ask kiln to end the machine. */
static uint8_t tame_port_byte(uint16_t port, uint8_t v)
{
	switch (port) {
	case 0x64: /* i8042 commands: no reset (0xFE, pulses 0xF0-0xFF), no output port (0xD1) */
		return v >= 0xF0 || v == 0xD1 ? 0x20 : v;
	case 0x605: /* PM1a_CNT's high byte: never SLP_EN (bit 13) */
		return v & ~0x20;
	case 0x505: /* pvpanic: never "panicked" */
		return v & ~1;
	default:
		return v;
	}
}

static void port_access(void)
{
	unsigned i = (unsigned)(rnd() % (sizeof(ports) / sizeof(ports[0])));
	uint16_t port = (uint16_t)(ports[i].port + rnd() % ports[i].len);
	uint32_t v = (uint32_t)rnd();
	unsigned size = 1u << (rnd() % 3);

	if (rnd() & 1) {
		v = size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
		(void)v;
		return;
	}
	for (unsigned b = 0; b < size; b++) /* a wide write covers the ports after it: tame each */
		v = (v & ~(0xffu << 8 * b)) |
		    (uint32_t)tame_port_byte((uint16_t)(port + b), (uint8_t)(v >> 8 * b)) << 8 * b;
	if (size == 1)
		outb((uint8_t)v, port);
	else if (size == 2)
		outw((uint16_t)v, port);
	else
		outl(v, port);
}

/* The guest kernel may take a mapping back (a driver claiming the range revokes /dev/mem's):
 * an access that faults is skipped and counted. */
static sigjmp_buf fault_jump;
static unsigned long faults;

static void fault(int sig)
{
	(void)sig;
	siglongjmp(fault_jump, 1);
}

static void mmio_access(void)
{
	struct range *r = &mmio[rnd() % nr_mmio];
	unsigned size = 1u << (rnd() % 4);
	unsigned long off = (rnd() % r->len) & ~(unsigned long)(size - 1);
	volatile uint8_t *p = r->p + off;
	uint64_t v = rnd();

	if (off + size > r->len)
		return;
	if (rnd() & 1) {
		v = size == 1 ? *p : size == 2 ? *(volatile uint16_t *)p :
		    size == 4 ? *(volatile uint32_t *)p : *(volatile uint64_t *)p;
		(void)v;
		return;
	}
	/* An MSI-X entry's message data (bytes 8-11): only whole, with a vector the guest kernel
	 * can take (0x40-0xef, fixed delivery); kiln sees every other field random. */
	if (r->msix && off >= r->msix_off && off < r->msix_off + r->msix_len) {
		unsigned long in = (off - r->msix_off) & 15;

		if (in < 12 && in + size > 8) {
			if (in != 8 || size < 4)
				return;
			v = (v & ~0xffffffffull) | (0x40 + v % 0xb0);
		}
	}
	if (size == 1)
		*p = (uint8_t)v;
	else if (size == 2)
		*(volatile uint16_t *)p = (uint16_t)v;
	else if (size == 4)
		*(volatile uint32_t *)p = (uint32_t)v;
	else
		*(volatile uint64_t *)p = v;
}

/* Take virtio-mmio slot @slot from its driver: reset mid-request, then a queue of random
 * descriptors and rings in low memory, and a kick (virtio 1.2 §4.2.3). */
/* A random descriptor that a device may follow without reaching guest memory outside the
 * takeover's region: its address is in the data area with a length that stays there, or an
 * indirect table within the descriptor table (never written by a device), or nowhere in RAM
 * (above 1 TiB, or where address + length wraps), which kiln must refuse. Its flags and next
 * index are random. (A descriptor into the guest kernel's memory would let kiln's faithful
 * DMA corrupt the guest, which would prove nothing about kiln.) */
static void random_descriptor(volatile uint8_t *d)
{
	uint64_t addr, len, pick = rnd() % 8;
	uint16_t flags = (uint16_t)(rnd() & 7); /* NEXT, WRITE, INDIRECT */

	if (pick < 5) {
		addr = LOW_RINGS + LOW_DATA + rnd() % (LOW_SIZE - LOW_DATA);
		len = rnd() % (LOW_RINGS + LOW_SIZE - addr + 1);
		flags &= (uint16_t)~4;
	} else if (pick == 5) {
		addr = LOW_RINGS + (rnd() % 0x1000 & ~15ul);
		len = rnd() % (LOW_RINGS + 0x1000 - addr + 1);
		flags = (uint16_t)((flags & 1) | 4); /* read-only: an indirect table */
	} else if (pick == 6) {
		addr = rnd() | 1ull << 40;
		len = (uint32_t)rnd();
	} else {
		addr = ~0ull - rnd() % 0x10000;
		len = (uint32_t)rnd() | 1;
	}
	*(volatile uint64_t *)d = addr;
	*(volatile uint32_t *)(d + 8) = (uint32_t)len;
	*(volatile uint16_t *)(d + 12) = flags;
	*(volatile uint16_t *)(d + 14) = (uint16_t)rnd();
}

/* Take virtio-mmio slot @slot from its driver: reset mid-request, then a queue of random
 * descriptors and random rings in low memory, and a kick (virtio 1.2 §4.2.3). */
static int take_over_mmio(volatile uint32_t *r, volatile uint8_t *low)
{
	/* magic "virt", a device present; not the balloon, whose inflate queue carries page
	 * numbers the host then discards: random ones would discard the guest kernel's memory
	 * (fuzz_balloon covers its parsing) */
	if (r[0] != 0x74726976 || r[0x8 / 4] == 0 || r[0x8 / 4] == 5)
		return 0;
	for (unsigned i = 0; i < 0x1000; i += 16)
		random_descriptor(low + i);
	for (unsigned i = 0x1000; i < LOW_DATA; i++)
		low[i] = (uint8_t)rnd();
	r[0x70 / 4] = 0;             /* reset, whatever was in flight */
	r[0x70 / 4] = 1 | 2;         /* ACKNOWLEDGE | DRIVER */
	r[0x24 / 4] = 1;             /* driver features, the upper half: VERSION_1 */
	r[0x20 / 4] = 1;
	r[0x24 / 4] = 0;
	r[0x20 / 4] = (uint32_t)rnd();
	r[0x70 / 4] = 1 | 2 | 8;     /* FEATURES_OK */
	r[0x30 / 4] = (uint32_t)(rnd() % 3); /* QueueSel */
	r[0x38 / 4] = 8;             /* QueueNum */
	r[0x80 / 4] = (uint32_t)LOW_RINGS;
	r[0x84 / 4] = 0;
	r[0x90 / 4] = (uint32_t)LOW_RINGS + 0x1000;
	r[0x94 / 4] = 0;
	r[0xa0 / 4] = (uint32_t)LOW_RINGS + 0x2000;
	r[0xa4 / 4] = 0;
	r[0x44 / 4] = 1;             /* QueueReady */
	r[0x70 / 4] = 1 | 2 | 8 | 4; /* DRIVER_OK */
	r[0x50 / 4] = r[0x30 / 4];   /* QueueNotify */
	return 1;
}

int main(int argc, char **argv)
{
	uint16_t com1_saved[2];
	uint8_t lcr, mcr, ier;
	volatile uint8_t *low, *slots;
	volatile unsigned long accesses = 0, takeovers = 0;
	time_t end;

	if (argc < 2) {
		fprintf(stderr, "usage: hostile SECONDS [SEED]\n");
		return 2;
	}
	end = time(NULL) + atoi(argv[1]);
	signal(SIGSEGV, fault);
	signal(SIGBUS, fault);
	rng_state = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
	rng_state |= 1;
	printf("hostile: seed %llu\n", (unsigned long long)rng_state);
	fflush(stdout);
	mem_fd = open("/dev/mem", O_RDWR | O_SYNC);
	if (mem_fd < 0 || iopl(3)) {
		perror("hostile: /dev/mem or iopl");
		return 1;
	}
	add_range(map_phys(BOOT_TIMER, 0x1000), 0x1000);
	slots = map_phys(VIRTIO_MMIO, VIRTIO_MMIO_SLOTS * 0x1000ul);
	add_range(slots, VIRTIO_MMIO_SLOTS * 0x1000ul);
	add_range(map_phys(ECAM, ECAM_SIZE), ECAM_SIZE);
	add_pci_bars();
	low = map_phys(LOW_RINGS, LOW_SIZE);
	/* The serial console's line settings, given back at the end. */
	lcr = inb(COM1 + 3);
	mcr = inb(COM1 + 4);
	outb(lcr | 0x80, COM1 + 3);
	com1_saved[0] = inb(COM1);
	com1_saved[1] = inb(COM1 + 1);
	outb(lcr & 0x7f, COM1 + 3);
	ier = inb(COM1 + 1);
	if (sigsetjmp(fault_jump, 1))
		faults++; /* and on with the next access */
	while (time(NULL) < end) {
		for (int i = 0; i < 1000; i++, accesses++) {
			if (rnd() % 4 == 0 || !nr_mmio)
				port_access();
			else
				mmio_access();
		}
		if (slots && low && rnd() % 4 == 0)
			takeovers = takeovers + (unsigned long)take_over_mmio(
				(volatile uint32_t *)(slots + 0x1000 * (rnd() % VIRTIO_MMIO_SLOTS)), low);
	}
	outb(0x80, COM1 + 3);
	outb((uint8_t)com1_saved[0], COM1);
	outb((uint8_t)com1_saved[1], COM1 + 1);
	outb(lcr & 0x7f, COM1 + 3);
	outb(mcr & ~0x10, COM1 + 4); /* never left in loopback */
	/* The kernel's 8250 driver keeps its own copy of IER and enables the transmitter interrupt
	 * only when it has output: the IER read at the start may lack it while output waits now.
	 * Enabling it raises a THRE interrupt (THR is empty), which restarts a stalled transmitter;
	 * an idle driver just turns it off again. */
	outb(ier | 0x07, COM1 + 1); /* ERBFI, ETBEI, ELSI */
	printf("hostile: %lu accesses %lu takeovers %lu faults\n", accesses, takeovers, faults);
	return 0;
}
