/* SPDX-License-Identifier: Apache-2.0 */
/* virtio_blk — virtio-blk (virtio 1.2 §5.2) over a raw or qcow2 disk image: its configuration, its
 * device class and what front ends may ask of a running disk.
 *
 * Owns: the disk configuration the front ends fill (--disk, Firecracker's drives) and the
 * operations on a running disk (a new backing file, counters). The data path is
 * src/virtio/blk.c; the host I/O engines are src/backends/block.c.
 */
#ifndef KILN_VIRTIO_BLK_H
#define KILN_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>

#include "kiln/devices.h"
#include "kiln/rate_limiter.h"

enum block_engine { BLOCK_ENGINE_IO_URING, BLOCK_ENGINE_SYNC };

/* An image's format: AUTO is qcow2 when the file begins with its magic, else raw. */
enum disk_format { DISK_FORMAT_AUTO, DISK_FORMAT_RAW, DISK_FORMAT_QCOW2 };

/* A disk as the user configured it. */
struct disk_config {
	const char *path;      /* a raw image (regular file or block device) or a qcow2 image */
	enum disk_format format;  /* a qcow2 image runs on the sync engine (include/kiln/qcow2.h) */
	const char *id;        /* the disk's name (Firecracker's drive_id) and the serial GET_ID
				  reports (at most 20 bytes are used); NULL: "kiln-diskN" */
	bool readonly;         /* writes fail with VIRTIO_BLK_S_IOERR */
	enum block_engine engine; /* io_uring (falls back to sync where the kernel refuses it) */
	bool cache_unsafe;        /* Firecracker's cache_type Unsafe: no VIRTIO_BLK_F_FLUSH offered
				     and a flush request does nothing (what the guest wrote reaches
				     the host's page cache, not necessarily the disk); false
				     (Writeback): flushes reach the disk */
	struct rate_limit limit;  /* bytes read and written, requests; all zero: none */
};

/* The class: create() takes a struct disk_config; instances are /dev/vda, vdb, ... in order.
 * Requests: IN, OUT, FLUSH (fdatasync), GET_ID, DISCARD and WRITE_ZEROES (not on qcow2, whose
 * disks do not offer them). Counters:
 * read_count, read_bytes, write_count, write_bytes, flush_count, invalid_reqs_count,
 * execute_fails (the host's I/O failed). */
extern const struct device_class virtio_blk_class;

/* Point the running disk @state (an instance of virtio_blk_class) at the image at @path (its
 * format found by its magic), opened read-only if the disk is: requests in flight finish on the old image, later ones go to the
 * new one, and the guest is told the new capacity (a configuration change). Any thread.
 * A qcow2 image on a disk that runs on io_uring is refused. Returns 0, or -errno with @e set
 * (the disk unchanged). */
int virtio_blk_replace(void *state, const char *path, struct error *e)
	__attribute__((warn_unused_result));

/* Replace disk @state's rate-limit buckets named in @buckets (RATE_LIMIT_* bits) by @limit's
 * (they start full; requests waiting on the old limits are served again at once). Event loop
 * thread. */
void virtio_blk_set_limit(void *state, const struct rate_limit *limit, unsigned buckets);

#endif
