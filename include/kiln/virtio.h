/* virtio — the device side of virtio 1.2: split virtqueues, the device status and feature
 * state machine, and the interface between devices (blk, rng, ...) and transports (mmio, pci).
 *
 * Owns: every read of a descriptor table, available ring or used ring. A device never touches a
 * ring itself: it pops a checked descriptor chain (virtq_pop), works on the host iovecs it was
 * given, and returns the chain (virtq_push). Devices know nothing of the transport; transports
 * know nothing of device types. The guest is hostile: a malformed ring marks the device
 * DEVICE_NEEDS_RESET (virtio 1.2 §2.1.2), is logged once, and never touches host memory
 * outside guest RAM.
 */
#ifndef KILN_VIRTIO_H
#define KILN_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kiln/block.h"
#include "kiln/guest_mem.h"
#include "kiln/log.h"

struct dev_host;
struct acpi_config;

#define VIRTQ_MAX_SIZE 1024u    /* largest queue size kiln offers (§2.7: at most 32768) */
#define VIRTQ_CHAIN_MAX 256u    /* most descriptors kiln accepts in one chain, indirect included */
#define VIRTIO_MAX_QUEUES 8u

/* One split virtqueue (virtio 1.2 §2.7). Addresses are guest-physical; the ring pointers are
 * resolved (and bounds-checked) once when the driver enables the queue. */
struct virtq {
	uint16_t max_size;       /* offered to the driver */
	uint16_t size;           /* chosen by the driver, a power of two <= max_size */
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t msix_vector;    /* PCI transport only */
	/* Device-side state, valid while ready. */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;     /* next available-ring index to consume */
	uint16_t used_idx;       /* next used-ring index to publish */
	uint16_t signalled_used; /* used_idx when the driver was last notified */
	bool signalled_valid;
	const struct guest_mem *mem; /* where the rings are (set by virtq_enable) */
	bool event_idx;          /* VIRTIO_F_RING_EVENT_IDX negotiated */
	bool indirect;           /* VIRTIO_F_RING_INDIRECT_DESC negotiated */
};

/* A descriptor chain popped from a queue: the driver-written buffers (out) come first in
 * iov[], then the device-writable ones (in), as §2.7.4.2 requires. */
struct virtq_chain {
	uint16_t head;
	unsigned nr_out, nr_in;
	uint64_t out_len, in_len;   /* bytes */
	struct iovec iov[VIRTQ_CHAIN_MAX];
};

struct virtio_dev;
struct vring_used_elem;

/* What a device type provides. Callbacks run with the device lock held. */
struct virtio_dev_ops {
	uint32_t device_id;          /* VIRTIO_ID_* (§5) */
	unsigned nr_queues;
	uint16_t queue_size;         /* max size of every queue */
	uint32_t config_len;         /* bytes of device-specific configuration (§4.x.y "config") */
	/* Device-type feature bits offered, besides VERSION_1, EVENT_IDX and INDIRECT_DESC. */
	uint64_t features;
	/* Copy configuration bytes [off, off + len) into @data (range already checked). */
	void (*read_config)(struct virtio_dev *dev, uint32_t off, uint8_t *data, uint32_t len);
	/* A driver write to configuration bytes (may be NULL: writes ignored). */
	void (*write_config)(struct virtio_dev *dev, uint32_t off, const uint8_t *data, uint32_t len);
	/* The driver notified queue @q (on kiln's event loop thread). */
	void (*queue_notify)(struct virtio_dev *dev, unsigned q);
	/* The driver set DRIVER_OK: the negotiated features are final (may be NULL). */
	void (*activate)(struct virtio_dev *dev);
	/* The driver reset the device; forget in-flight work (may be NULL). */
	void (*reset)(struct virtio_dev *dev);
	/* Release the device type's state, the struct virtio_dev included. */
	void (*free)(struct virtio_dev *dev);
	/* Snapshot (all may be NULL / 0). quiesce: finish the requests in flight so the rings
	 * hold everything (the vCPUs are paused). state_size/save/load: the device type's own
	 * guest-visible state beyond the rings, in a fixed little-endian layout; load refuses
	 * out-of-range values with -EINVAL and a message in @err. restored: the whole VM is
	 * back and the driver is running; tell it what the host side lost (vsock). */
	void (*quiesce)(struct virtio_dev *dev);
	size_t state_size;
	void (*save)(struct virtio_dev *dev, void *buf);
	int (*load)(struct virtio_dev *dev, const void *buf, char *err, size_t errlen);
	void (*restored)(struct virtio_dev *dev);
};

/* The transport's side: how to interrupt the driver. */
struct virtio_transport {
	/* Signal a used-buffer notification for queue @q (§2.3), or a configuration change when
	 * @q is VIRTIO_CONFIG_IRQ. Called with the device lock held. */
	void (*notify)(struct virtio_dev *dev, unsigned q);
	void *opaque;
};
#define VIRTIO_CONFIG_IRQ (~0u)

/* Interrupt status bits (§4.1.4.5, §4.2.2 InterruptStatus). */
#define VIRTIO_ISR_QUEUE 1u
#define VIRTIO_ISR_CONFIG 2u

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *opaque;                    /* the device type's state */
	const struct guest_mem *mem;
	struct virtio_transport transport;
	pthread_mutex_t lock;            /* taken by transports (vCPU threads) and the event loop */
	uint64_t device_features;
	uint64_t driver_features;
	uint8_t status;                  /* §2.1 device status field */
	uint8_t config_generation;
	uint32_t isr;                    /* §4.1.4.5 / §4.2.2 interrupt status: bit 0 used, bit 1 config */
	struct virtq q[VIRTIO_MAX_QUEUES];
	struct log_once bad_ring;
};

/* Initialise @dev for @ops over guest memory @mem (borrowed; must outlive the device).
 * Returns 0 or -errno (-EINVAL when ops ask for more than VIRTIO_MAX_QUEUES or a queue size
 * that is not a power of two). */
int virtio_dev_init(struct virtio_dev *dev, const struct virtio_dev_ops *ops, void *opaque,
		    const struct guest_mem *mem) __attribute__((warn_unused_result));
void virtio_dev_destroy(struct virtio_dev *dev);

/* The device status register (§2.1, §3.1.1). Writing 0 resets the device; FEATURES_OK is kept
 * only when the driver accepted VERSION_1 and nothing the device did not offer; DRIVER_OK
 * needs FEATURES_OK. Lock held. */
void virtio_dev_set_status(struct virtio_dev *dev, uint8_t status);

/* The driver enabled (@ready) or disabled queue @index (< ops->nr_queues): enabling resolves
 * and checks the rings (virtq_enable); bad ones set DEVICE_NEEDS_RESET. Lock held. */
void virtio_dev_set_queue_ready(struct virtio_dev *dev, unsigned index, bool ready);

/* Driver feature word @sel (0: bits 0-31, 1: bits 32-63); ignored after FEATURES_OK. Lock held. */
void virtio_dev_set_driver_features(struct virtio_dev *dev, unsigned sel, uint32_t value);

/* Device feature word @sel. */
uint32_t virtio_dev_device_features(const struct virtio_dev *dev, unsigned sel);

/* Configuration space access at @off (bounds-checked against ops->config_len: out-of-range
 * reads give zeros, writes are dropped). Lock held. */
void virtio_dev_config_read(struct virtio_dev *dev, uint32_t off, uint8_t *data, uint32_t len);
void virtio_dev_config_write(struct virtio_dev *dev, uint32_t off, const uint8_t *data, uint32_t len);

/* The driver's notification for queue @q (event loop thread; takes the lock). Notifications for
 * queues that do not exist or are not ready are logged once and ignored. */
void virtio_dev_queue_notify(struct virtio_dev *dev, unsigned q);

/* Mark the device broken (DEVICE_NEEDS_RESET, config interrupt), logging @why once. Lock held. */
void virtio_dev_needs_reset(struct virtio_dev *dev, const char *why);

/* The device's configuration space changed (§2.5.1): a new config_generation, and the
 * configuration change interrupt once the driver is running. Device lock held. */
void virtio_dev_config_changed(struct virtio_dev *dev);

/* True when the driver set DRIVER_OK and the device does not need a reset. */
bool virtio_dev_live(const struct virtio_dev *dev);

/* Pop the next available descriptor chain of @q into @chain, following indirect tables
 * (§2.7.5.3) and checking every address and length against guest memory.
 * Returns 1 with a chain, 0 when the ring is empty, -EINVAL when the ring or the chain is
 * malformed (loop, too long, out of RAM, write-only before read-only, bad indirect table);
 * the caller then calls virtio_dev_needs_reset(). */
int virtq_pop(const struct guest_mem *mem, struct virtq *q, struct virtq_chain *chain);

/* Return chain @head to the driver with @len bytes written into its device-writable buffers
 * (§2.7.8). */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/* Return @n chains at once (e[i].id heads, e[i].len bytes written): the driver sees all of
 * them or none, as a frame spread over several buffers needs (§5.1.6.4). */
void virtq_push_many(struct virtq *q, const struct vring_used_elem *e, unsigned n);

/* After pushes: whether the driver asked to be notified (§2.7.10: used_event with EVENT_IDX,
 * else VIRTQ_AVAIL_F_NO_INTERRUPT). Updates the bookkeeping when it returns true. */
bool virtq_should_notify(struct virtq *q);

/* Before sleeping on the queue: publish avail_event (EVENT_IDX) so the driver kicks for the
 * next buffer; returns true when more buffers arrived meanwhile (pop again). */
bool virtq_arm_notify(struct virtq *q);

/* Resolve and check the ring addresses of @q for the negotiated @features; returns 0 or
 * -EFAULT when a ring is not entirely in guest RAM or misaligned. */
int virtq_enable(const struct guest_mem *mem, struct virtq *q, uint64_t features);

/* What serve() returns for a chain it will complete later (virtq_push from a completion). */
#define VIRTQ_DEFERRED UINT32_MAX

/* Serve queue @q: pop every available chain, hand it to @serve (which returns the bytes it
 * wrote into the chain, or VIRTQ_DEFERRED), return it, interrupt the driver if it asked, and repeat until the ring
 * stays empty after re-arming notifications. A malformed chain marks the device
 * DEVICE_NEEDS_RESET. Lock held. */
void virtio_dev_process(struct virtio_dev *dev, unsigned q,
			uint32_t (*serve)(struct virtio_dev *dev, const struct virtq_chain *c));

/* Snapshot of the transport-independent state (features, status, ISR, configuration
 * generation, every queue's size, ring addresses and ring positions) and the device type's
 * own state, as section "virtio" / @instance. Finishes the requests in flight first. Lock
 * taken. */
struct snap_writer;
struct snap_reader;
void virtio_dev_save(struct virtio_dev *dev, struct snap_writer *w, uint32_t instance);

/* Give a device just created with the same configuration the state virtio_dev_save() wrote.
 * Ring addresses are checked against guest memory as when the driver enables a queue.
 * Returns 0 or -EINVAL with a message naming the device in @err. */
int virtio_dev_load(struct virtio_dev *dev, const struct snap_reader *r, uint32_t instance,
		    char *err, size_t errlen) __attribute__((warn_unused_result));

/* After the whole VM was restored and before its vCPUs run: a running driver's device is
 * activated again (backends, timers), told what its host side lost (ops->restored), and every
 * ready queue is served once for buffers that were waiting. */
void virtio_dev_restored(struct virtio_dev *dev);

/* Release @dev through its type's free(). NULL is ignored. */
void virtio_dev_free(struct virtio_dev *dev);

/* Pushes used buffers of @q and interrupts the driver if it asked (lock held). */
void virtio_dev_complete(struct virtio_dev *dev, unsigned q, uint16_t head, uint32_t len);

/* Interrupt the driver for queue @q if virtq_should_notify() says so (lock held). */
void virtio_dev_notify_if_needed(struct virtio_dev *dev, unsigned q);

/* Copy up to @len bytes from the chain's driver-written buffers starting @off bytes in, into
 * @dst; returns bytes copied. */
uint64_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, uint64_t len);

/* Copy up to @len bytes into the chain's device-writable buffers starting @off bytes into them;
 * returns bytes copied. */
uint64_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, uint64_t len);

/* Queue notifications of one device (§2.9), shared by the transports. */
struct virtio_kick {
	struct virtio_dev *dev;
	unsigned q;
	int fd;  /* eventfd, -1 for queues the device does not have */
};

/* An eventfd per queue of @dev (kicks[VIRTIO_MAX_QUEUES]), served on host's event loop, and a
 * KVM_IOEVENTFD for a @len-byte MMIO write of the queue index at @addr + q * @stride.
 * Returns 0 or -errno; virtio_kicks_destroy() releases what was made either way. */
int virtio_kicks_create(struct virtio_kick *kicks, struct virtio_dev *dev, struct dev_host *host,
			uint64_t addr, uint64_t stride, uint32_t len) __attribute__((warn_unused_result));
void virtio_kicks_destroy(struct virtio_kick *kicks);

/* A notification that reached kiln as an MMIO exit: hand it to the event loop the same way.
 * Returns false for a queue that does not exist. */
bool virtio_kick(struct virtio_kick *kicks, unsigned q);

/* The virtio-mmio transport (§4.2, version 2) for @dev in slot @slot (< KILN_VIRTIO_MMIO_SLOTS):
 * registers on host->mmio, one ioeventfd per queue, an irqfd on the slot's GSI.
 * Returns 0 with *out set, or -errno (-ENOSPC for a slot out of range, -EBUSY when taken). */
struct virtio_mmio;
int virtio_mmio_create(struct dev_host *host, struct virtio_dev *dev, unsigned slot,
		       struct virtio_mmio **out) __attribute__((warn_unused_result));
void virtio_mmio_destroy(struct virtio_mmio *m);
/* Snapshot of the transport's registers and its device (section "vmmio" / @instance, and
 * virtio_dev_save()); load gives them back to a transport made with the same configuration.
 * Returns 0 or -EINVAL with a message in @err. */
void virtio_mmio_save(struct virtio_mmio *m, struct snap_writer *w, uint32_t instance);
int virtio_mmio_load(struct virtio_mmio *m, const struct snap_reader *r, uint32_t instance,
		     char *err, size_t errlen) __attribute__((warn_unused_result));
/* Describe the slot in the DSDT: _HID "LNRO0005", its registers and its GSI. */
void virtio_mmio_describe(const struct virtio_mmio *m, struct acpi_config *acpi);
/* Append " virtio_mmio.device=4K@0x...:GSI" (kernels with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES)
 * to @buf; returns what snprintf returns. */
int virtio_mmio_cmdline(const struct virtio_mmio *m, char *buf, size_t len);

/* Build in @out (room for VIRTQ_CHAIN_MAX entries) the iovecs of @len bytes starting @off bytes
 * into the chain's driver-written (@in false) or device-writable (@in true) buffers; returns the
 * number of entries, or -1 when the chain holds fewer than off + len bytes there. */
int virtq_chain_iov(const struct virtq_chain *c, bool in, uint64_t off, uint64_t len,
		    struct iovec *out);

/* A disk as the user configured it (--disk PATH[,readonly=on][,id=NAME]). */
struct disk_config {
	const char *path;
	const char *id;        /* serial reported by GET_ID; NULL: "kiln-diskN" */
	bool readonly;
	enum block_engine engine; /* io_uring (default) or sync */
};

/* virtio-blk (§5.2) over the raw image @cfg->path: IN, OUT, FLUSH (fdatasync), GET_ID,
 * DISCARD and WRITE_ZEROES; read-only images answer writes with VIRTIO_BLK_S_IOERR. Guest
 * memory is host->mem; io_uring completions are watched on host's event loop.
 * Returns the device, or NULL with a one-line reason in @err (*usage true when the user's
 * input is wrong: missing file, directory, size not a multiple of 512). */
struct virtio_dev *virtio_blk_new(struct dev_host *host, const struct disk_config *cfg,
				  unsigned index, bool *usage, char *err, size_t errlen);

/* What a virtio-blk device did since it was made. */
struct blk_counters {
	uint64_t read_count, read_bytes;   /* completed reads */
	uint64_t write_count, write_bytes; /* completed writes */
	uint64_t flush_count;
	uint64_t invalid_reqs;             /* refused by the device: range, read-only, unsupported */
	uint64_t io_errors;                /* the host's read, write or flush failed */
};

/* Point virtio-blk @dev at the image at @path (opened read-only if the disk is): requests in
 * flight finish on the old image, later ones go to the new one, and the guest is told the new
 * capacity (a configuration change). Any thread. Returns 0, or -errno with a message in @err
 * (the disk unchanged). */
int virtio_blk_replace(struct virtio_dev *dev, const char *path, char *err, size_t errlen);

/* A copy of virtio-blk @dev's counters. Any thread. */
void virtio_blk_counters(struct virtio_dev *dev, struct blk_counters *out);

/* A copy of virtio-net @dev's counters (see struct net_counters). Event loop thread. */
struct net_counters;
void virtio_net_counters(struct virtio_dev *dev, struct net_counters *out);

/* virtio-vsock (§5.10) for guest CID @guest_cid, with Firecracker's host side: a listening Unix
 * socket at @uds_path (created; it must not exist; removed with the device) where host
 * programs connect and write "CONNECT <port>\n", and connections from the guest to host port
 * P go to the Unix socket "<uds_path>_<P>". Served on host's event loop. Returns the device,
 * or NULL with a one-line reason in @err (*usage true when the path is the user's mistake). */
struct virtio_dev *virtio_vsock_new(struct dev_host *host, uint64_t guest_cid,
				   const char *uds_path, bool *usage, char *err, size_t errlen);

/* A virtio-console's host side as the user configured it. */
struct console_config {
	enum { CONSOLE_NONE, CONSOLE_SOCKET, CONSOLE_FILE } kind;
	const char *path;           /* the Unix socket kiln listens on, or the output file */
};

/* virtio-console (§5.3), one port (hvc0 in Linux), on a Unix socket kiln creates at
 * @cfg->path (it must not exist; one client at a time; removed with the device) or appending
 * the guest's output to the file @cfg->path. Served on host's event loop. Returns the device,
 * or NULL with a reason in @err (*usage true when the path is the user's mistake). */
struct virtio_dev *virtio_console_new(struct dev_host *host, const struct console_config *cfg,
				     bool *usage, char *err, size_t errlen);

/* A balloon as the user configured it. */
struct balloon_config {
	bool enabled;
	uint64_t target_bytes;       /* what the guest should give back (whole 4 KiB pages) */
	bool deflate_on_oom;         /* offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	bool free_page_reporting;    /* offer VIRTIO_BALLOON_F_REPORTING */
	unsigned stats_interval_s;   /* 0: no statistics queue */
};

#define BALLOON_NR_STATS 10          /* VIRTIO_BALLOON_S_NR (§5.5.6.3) */

/* What the balloon knows: the target and the driver's "actual" (4 KiB pages), the driver's
 * last statistics (value[tag], bit tag of valid set when reported) and kiln's own counts. */
struct balloon_stats {
	uint32_t target_pages, actual_pages;
	unsigned interval_s;
	uint32_t valid;
	uint64_t value[BALLOON_NR_STATS];
	uint64_t updates;            /* statistics buffers received */
	uint64_t inflated_pages, deflated_pages, reported_bytes;
	uint64_t bad_pfns;           /* page frames or reports outside guest RAM, refused */
};

/* virtio-balloon (§5.5): inflate and deflate queues, statistics every @cfg->stats_interval_s
 * seconds (timer on host's event loop), free page reporting; pages the guest gives back are
 * returned to the host (MADV_DONTNEED). Returns the device, or NULL with a reason in @err. */
struct virtio_dev *virtio_balloon_new(struct dev_host *host, const struct balloon_config *cfg,
				     char *err, size_t errlen);

/* A new target for balloon @dev (a configuration change the driver acts on). Any thread.
 * Returns 0 or -ERANGE. */
int virtio_balloon_set_target(struct virtio_dev *dev, uint64_t bytes);

/* A new statistics interval (seconds, > 0); -EINVAL when statistics were off at creation. */
int virtio_balloon_set_stats_interval(struct virtio_dev *dev, unsigned seconds);

/* A copy of the balloon's state. Any thread. */
void virtio_balloon_stats(struct virtio_dev *dev, struct balloon_stats *out);

/* virtio-rng (§5.4): fills every buffer from getrandom(). NULL when out of memory. */
struct virtio_dev *virtio_rng_new(const struct guest_mem *mem);

/* virtio-net (§5.1) over backend @be (taken over: freed with the device, or at once on
 * failure), MAC @mac or, when NULL, 52:54:00:12:34:56 + @index; @index also names the NIC in
 * messages ("net0"). Returns the device, or NULL when out of memory. */
struct net_backend;
struct virtio_dev *virtio_net_new(const struct guest_mem *mem, struct net_backend *be,
				  const uint8_t mac[6], unsigned index);

/* The virtio-pci transport, modern (§4.1): a PCI function with vendor capabilities for the
 * common, notify, ISR, device and PCI-config windows in BAR 0, MSI-X (a vector per queue plus
 * configuration changes) and INTx when MSI-X is off. Returns 0 with *out set or -errno. */
struct virtio_pci;
struct pci_bus;
int virtio_pci_create(struct dev_host *host, struct pci_bus *bus, struct virtio_dev *dev,
		      struct virtio_pci **out) __attribute__((warn_unused_result));
void virtio_pci_destroy(struct virtio_pci *vp);
/* Snapshot of the function (configuration space, MSI-X table), the transport's registers and
 * its device (section "vpci" / @instance, and virtio_dev_save()); as virtio_mmio_save(). */
void virtio_pci_save(struct virtio_pci *vp, struct snap_writer *w, uint32_t instance);
int virtio_pci_load(struct virtio_pci *vp, const struct snap_reader *r, uint32_t instance,
		    char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
