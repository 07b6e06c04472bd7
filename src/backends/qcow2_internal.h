/* SPDX-License-Identifier: Apache-2.0 */
/* qcow2 internals — what qcow2_open.c and qcow2_io.c share and nothing else sees.
 *
 * Owns: the layout of an open image (struct qcow2, its metadata caches), the bits of L1, L2 and
 * refcount table entries (§Cluster mapping, §Host cluster management), and the helpers both
 * halves use on the image file. The image is untrusted: these helpers check, never trust.
 */
#ifndef KILN_QCOW2_INTERNAL_H
#define KILN_QCOW2_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/log.h"
#include "kiln/qcow2.h"

#define RT_MAX_BYTES (8u << 20)           /* QEMU's limit (§Host cluster management) */

#define OFFSET_MASK 0x00fffffffffffe00ull /* bits 9-55 of L1 and L2 entries */
#define COPIED (1ull << 63)               /* refcount exactly one */
#define COMPRESSED (1ull << 62)
#define ZERO_FLAG 1ull                    /* v3: the cluster reads as zeros */
#define L1_RESERVED 0x7f000000000001ffull /* bits 0-8, 56-62 */
#define L2_RESERVED 0x3f000000000001feull /* bits 1-8, 56-61 */
#define RT_RESERVED 0x1ffull              /* bits 0-8 */

/* A cluster of metadata in memory, as on the disk. */
struct cached {
	uint64_t off;   /* host offset; 0: an empty slot */
	uint8_t *data;  /* cluster_size bytes */
	uint64_t used;  /* the image's tick at the last use: the least recent goes first */
	bool dirty;
};

struct cache {
	struct cached *e;
	unsigned n;
};

struct qcow2 {
	int fd;                      /* borrowed for the top image, owned for a backing file */
	bool owns_fd, readonly;
	char *path;
	unsigned version, cluster_bits, refcount_order;
	uint64_t cs;                 /* cluster size in bytes */
	uint64_t size;               /* virtual size in bytes */
	uint64_t end;                /* where the next cluster is allocated */
	uint64_t file_end, first_end; /* the file's size and end at open: what lies between (the
					rest of its last cluster) reads as zeros, as in QEMU (a data
					cluster need not be written whole) */
	uint64_t autoclear;          /* v3 auto-clear feature bits found at open */
	uint64_t *l1;                /* big-endian, l1_size entries */
	uint32_t l1_size;
	uint64_t l1_off;
	uint64_t *rt;                /* refcount table, big-endian, rt_entries */
	uint64_t rt_entries, rt_off;
	bool l1_dirty, rt_dirty, header_dirty, refs_dirty; /* refs_dirty: refcounts not yet synced */
	struct cache l2, rb;
	uint64_t tick;
	uint8_t *buf;                /* one cluster: what surrounds a partial write */
	struct qcow2 *backing;       /* a qcow2 backing file, or NULL */
	int raw_fd;                  /* a raw backing file (owned), or -1 */
	uint64_t raw_size;
	struct log_once bad_meta, shared;
};

/* Whether @off is a whole cluster inside the file (not the header). */
bool qcow2_cluster_ok(const struct qcow2 *q, uint64_t off);

/* Read @len bytes of metadata at byte @off of @fd into @buf; what lies beyond the end of the
 * file reads as zeros. Returns 0 or -errno. */
int qcow2_meta_read(int fd, void *buf, size_t len, uint64_t off)
	__attribute__((warn_unused_result));

/* Write @len bytes of metadata from @buf at byte @off of @q's file. Returns 0 or -errno. */
int qcow2_meta_write(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
	__attribute__((warn_unused_result));

/* fdatasync @q's file: the ordering point between metadata stages. Returns 0 or -errno. */
int qcow2_sync(struct qcow2 *q) __attribute__((warn_unused_result));

/* The bits an L2 entry of @q may not have set (reserved, compressed, v2's zero flag). */
uint64_t qcow2_l2_mask(const struct qcow2 *q);

/* Allocate @q's L2 table and refcount block caches (q->cs must be set). Returns 0 or -ENOMEM;
 * on failure qcow2_layer_free() releases what was made. */
int qcow2_caches_init(struct qcow2 *q) __attribute__((warn_unused_result));

/* Free @q, its caches, tables and backing chain, and close the files it owns, writing nothing
 * back. NULL is fine. */
void qcow2_layer_free(struct qcow2 *q);

#endif
