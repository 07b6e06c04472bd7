/* SPDX-License-Identifier: Apache-2.0 */
/* virtio — the device core of virtio 1.2: the device status and feature state machine, the
 * configuration space, and the interface between device types (blk, net, ...) and transports
 * (pci, mmio).
 *
 * Owns: struct virtio_dev, which every device type embeds. Device types know nothing of the
 * transport; transports know nothing of device types. A device type serves its queues through
 * include/kiln/virtq.h; a malformed ring marks the device DEVICE_NEEDS_RESET (§2.1.2), is
 * logged once, and never touches host memory outside guest RAM. Each device type's public
 * configuration and class are in its own header (kiln/virtio_blk.h, ...); the transports in
 * kiln/virtio_transport.h.
 */
#ifndef KILN_VIRTIO_H
#define KILN_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kiln/guest_mem.h"
#include "kiln/log.h"
#include "kiln/virtq.h"

#define VIRTIO_MAX_QUEUES 8u

struct virtio_dev;
struct snap_enc;
struct snap_dec;

/* What a device type provides. Callbacks run with the device lock held. */
struct virtio_dev_ops {
	uint32_t device_id;          /* VIRTIO_ID_* (§5) */
	unsigned nr_queues;
	uint16_t queue_size;         /* max size of every queue */
	uint32_t config_len;         /* bytes of device-specific configuration (§4.x.y "config") */
	uint32_t pci_class;          /* PCI class code (24 bits) on virtio-pci (§4.1.2) */
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
	/* Snapshot (all may be NULL). quiesce: finish the requests in flight so the rings hold
	 * everything (the vCPUs are paused). save/load: the device type's own guest-visible
	 * state beyond the rings, encoded little-endian field by field at the end of the device's
	 * "virtio" section; load decodes what save wrote in that section's @version (older ones
	 * too) and refuses out-of-range values with -EINVAL and a message in @err. restored: the
	 * whole VM is back and the driver is running; tell it what the host side lost (vsock). */
	void (*quiesce)(struct virtio_dev *dev);
	void (*save)(struct virtio_dev *dev, struct snap_enc *e);
	int (*load)(struct virtio_dev *dev, struct snap_dec *d, uint32_t version, char *err,
		    size_t errlen);
	void (*restored)(struct virtio_dev *dev);
};

/* The transport's side: how to interrupt the driver, and how to come back to a queue. */
struct virtio_notifier {
	/* Signal a used-buffer notification for queue @q (§2.3), or a configuration change when
	 * @q is VIRTIO_CONFIG_IRQ. Called with the device lock held. */
	void (*notify)(struct virtio_dev *dev, unsigned q);
	/* Serve queue @q again on a later turn of the event loop, as if the driver had notified
	 * it (may be NULL: then a queue is served until it is empty). Any thread. */
	void (*requeue)(struct virtio_dev *dev, unsigned q);
	void *opaque;
};

/* Chains a queue is served per turn of the event loop before the rest waits for the next
 * turn, so a driver that keeps reposting buffers cannot starve the loop (the API, the other
 * devices). */
#define VIRTIO_BUDGET 256u
#define VIRTIO_CONFIG_IRQ (~0u)

/* Interrupt status bits (§4.1.4.5, §4.2.2 InterruptStatus). */
#define VIRTIO_ISR_QUEUE 1u
#define VIRTIO_ISR_CONFIG 2u

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *opaque;                    /* the device type's state */
	const struct guest_mem *mem;
	struct virtio_notifier transport;
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

/* What serve() returns for a chain it will complete later (virtq_push from a completion). */
#define VIRTQ_DEFERRED UINT32_MAX
/* What serve() returns for a chain it must not serve yet (its rate limiter refused it): the
 * chain goes back to the available ring untouched and the queue is left alone until the device
 * serves it again (its limiter's unblocked callback). */
#define VIRTQ_THROTTLED (UINT32_MAX - 1)

/* Serve queue @q: pop every available chain, hand it to @serve (which returns the bytes it
 * wrote into the chain, VIRTQ_DEFERRED or VIRTQ_THROTTLED), return it, interrupt the driver if it asked, and
 * repeat until the ring stays empty after re-arming notifications; after VIRTIO_BUDGET chains
 * the rest is left for a later turn (transport.requeue). A malformed chain marks the device
 * DEVICE_NEEDS_RESET. Lock held. */
void virtio_dev_process(struct virtio_dev *dev, unsigned q,
			uint32_t (*serve)(struct virtio_dev *dev, const struct virtq_chain *c));

/* Pushes used buffers of @q and interrupts the driver if it asked (lock held). */
void virtio_dev_complete(struct virtio_dev *dev, unsigned q, uint16_t head, uint32_t len);

/* Interrupt the driver for queue @q if virtq_should_notify() says so (lock held). */
void virtio_dev_notify_if_needed(struct virtio_dev *dev, unsigned q);

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

#endif
