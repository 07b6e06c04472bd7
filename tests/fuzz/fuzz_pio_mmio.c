/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a hostile guest's port I/O and MMIO against every device kiln registers.
 *
 * Each input builds a machine's devices afresh, as vm_create() does: the PC platform devices
 * (8250, i8042, CMOS RTC, ACPI PM, pvpanic, POST port, boot timer), the PCI host bridge (CF8/CFC
 * and ECAM) and virtio-blk, -net (user-mode), -vsock, -rng, -balloon and -console on the
 * transport its first byte picks (virtio-pci with MSI-X tables and PBAs, or virtio-mmio). The
 * rest is a list of accesses, 12 bytes each: the space and direction, the size, which
 * registered range, the offset in it (or, one time in eight, anywhere in the 32-bit space) and
 * 8 bytes of data; the event loop runs between accesses, so kicks and tasks are served too.
 * Guest memory is 1 MiB of zeroes the devices may DMA into. AddressSanitizer and UBSan turn any
 * bad access into a crash; a device that asks the VM to stop just sets a flag. Build and run:
 * scripts/fuzz [SECONDS].
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/devmgr.h"
#include "kiln/bus.h"
#include "kiln/layout.h"
#include "kiln/log.h"
#include "kiln/net_backend.h"
#include "kiln/pci.h"
#include "kiln/virtio_balloon.h"
#include "kiln/virtio_blk.h"
#include "kiln/virtio_console.h"
#include "kiln/virtio_net.h"
#include "kiln/virtio_rng.h"
#include "kiln/virtio_vsock.h"

#define RAM (1u << 20)
#define OP_BYTES 12

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static uint8_t *ram;
static struct guest_mem mem;
static struct loop *loop;
static char image[64], uds[64], console[64];
static int sink = -1, next_gsi = KILN_MSI_GSI_BASE;

static void set_irq(struct dev_host *h, unsigned gsi, bool level) {}
static void request_stop(struct dev_host *h, enum vm_stop_reason r) {}
static int ioeventfd(struct dev_host *h, bool mmio, uint64_t addr, uint32_t len, uint64_t value,
		     int fd) { return 0; }
static int irqfd(struct dev_host *h, unsigned gsi, int fd) { return 0; }
static int ioeventfd_remove(struct dev_host *h, bool mmio, uint64_t addr, uint32_t len,
			    uint64_t value, int fd) { return 0; }
static int alloc_msi_gsi(struct dev_host *h) { return next_gsi++; }
static int set_msi_route(struct dev_host *h, unsigned gsi, uint64_t addr, uint32_t data)
{
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd;
	char err[600];

	signal(SIGPIPE, SIG_IGN); /* as kiln's main() */
	log_set_level(LOG_OFF);
	/* libslirp for the user-mode NIC, loaded as `kiln run --net user` loads it. */
	if (loop_new(&loop) || net_user_library_load(err, sizeof(err)))
		abort();
	ram = calloc(1, RAM);
	mem = (struct guest_mem){ .nr_regions = 1, .size = RAM,
				  .region = { { .gpa = 0, .size = RAM, .hva = ram } } };
	fd = memfd_create("fuzz-disk", 0);
	if (!ram || fd < 0 || ftruncate(fd, 1 << 20))
		abort();
	snprintf(image, sizeof(image), "/proc/self/fd/%d", fd);
	snprintf(uds, sizeof(uds), "/tmp/kiln-fuzz-pio-%d.vsock", getpid());
	snprintf(console, sizeof(console), "/tmp/kiln-fuzz-pio-%d.console", getpid());
	sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
	return sink < 0 ? -1 : 0;
}

/* One access: @op's bit 0 the space (port or MMIO), bit 1 the direction, bits 2-3 the size. */
static void guest_access(struct bus *pio, struct bus *mmio, const uint8_t *op)
{
	struct bus *bus = op[0] & 1 ? mmio : pio;
	uint32_t len = 1u << ((op[0] >> 2) & 3), off;
	uint64_t addr;
	uint8_t d[8];

	memcpy(&off, op + 1, sizeof(off));
	memcpy(d, op + 4, sizeof(d));
	if (bus->nr_ranges && (op[0] >> 5) != 7) {
		const struct bus_range *r = &bus->range[off % bus->nr_ranges];

		addr = r->base + (off >> 8) % (r->len ? r->len : 1);
	} else {
		addr = off;
	}
	bus_dispatch(bus, addr, d, len, op[0] & 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bus pio, mmio;
	struct pci_bus *pci = NULL;
	struct disk_config disk = { .path = image, .engine = BLOCK_ENGINE_SYNC, .readonly = true };
	struct net_config net = { .kind = NET_USER, .restrict_guest = true };
	struct vsock_config vsock = { .guest_cid = 3, .uds_path = uds };
	struct balloon_config balloon = { .target_bytes = 1 << 20, .free_page_reporting = true,
					  .stats_interval_s = 1 };
	struct console_config cons = { .kind = CONSOLE_FILE, .path = console, .file_limit = 1 << 20 };
	struct vm_config cfg = { .transport = size && (data[0] & 1) ? VM_TRANSPORT_MMIO : VM_TRANSPORT_PCI };
	struct dev_host host = { .pio = &pio, .mmio = &mmio, .set_irq = set_irq,
				 .request_stop = request_stop, .loop = loop, .ioeventfd = ioeventfd,
				 .ioeventfd_remove = ioeventfd_remove,
				 .irqfd = irqfd, .alloc_msi_gsi = alloc_msi_gsi,
				 .set_msi_route = set_msi_route, .mem = &mem, .console_out_fd = sink };
	static struct devmgr m;
	struct error e;

	cfg.device[cfg.nr_devices++] = (struct vm_device_config){ &virtio_blk_class, &disk };
	cfg.device[cfg.nr_devices++] = (struct vm_device_config){ &virtio_net_class, &net };
	cfg.device[cfg.nr_devices++] = (struct vm_device_config){ &virtio_vsock_class, &vsock };
	cfg.device[cfg.nr_devices++] = (struct vm_device_config){ &virtio_rng_class, NULL };
	cfg.device[cfg.nr_devices++] = (struct vm_device_config){ &virtio_balloon_class, &balloon };
	cfg.device[cfg.nr_devices++] = (struct vm_device_config){ &virtio_console_class, &cons };
	memset(ram, 0, RAM);
	next_gsi = KILN_MSI_GSI_BASE;
	bus_init(&pio, "port");
	bus_init(&mmio, "mmio");
	unlink(uds);
	if (pci_bus_create(&host, PCI_HOST_GENERIC, &pci))
		abort();
	host.pci = pci;
	memset(&m, 0, sizeof(m));
	if (devmgr_create(&m, &host, &cfg, &e)) {
		fprintf(stderr, "fuzz_pio_mmio: %s\n", e.msg);
		abort();
	}
	for (size_t at = 1; at + OP_BYTES <= size; at += OP_BYTES) {
		guest_access(&pio, &mmio, data + at);
		loop_wait(loop, 0);
	}
	devmgr_destroy(&m);
	pci_bus_destroy(pci);
	bus_destroy(&pio);
	bus_destroy(&mmio);
	unlink(console);
	return 0;
}
