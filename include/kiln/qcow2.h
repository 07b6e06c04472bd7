/* SPDX-License-Identifier: Apache-2.0 */
/* qcow2 — QEMU's copy-on-write image format (docs/interop/qcow2.txt, versions 2 and 3) as a
 * format layer under the synchronous block engine: it maps the guest's byte offsets to host
 * offsets in the image file and reads and writes there.
 *
 * Owns: one open image and its backing chain (each backing file, qcow2 or raw, opened read-only
 * and owned here), the active L1 table, the refcount table, small caches of L2 tables and
 * refcount blocks, and the order in which metadata reaches the file. The image file descriptor
 * of the top image is borrowed.
 *
 * What it does: reads, writes, zero clusters (v3), unallocated clusters read from the backing
 * file (or as zeros), clusters allocated at the end of the file on first write with the rest of
 * the cluster copied from the backing file, refcounts of every order (1 to 64 bits) kept exact,
 * the refcount table grown when full. Metadata is cached and written back in an order that keeps
 * the image consistent on the disk after every flush: refcounts, then L2 tables, then the L1
 * table. Internal snapshots are kept, not used (such an image opens read-only only).
 *
 * What it refuses at open, with one message naming the file and the reason: a bad header,
 * compression (compressed clusters or a compression type), encryption, an external data file,
 * extended L2 entries, the dirty or corrupt bit, unknown incompatible features, any table or
 * cluster offset beyond the file, unaligned or with reserved bits set, metadata that overlaps,
 * data clusters on metadata, backing chains that loop or are deeper than QCOW2_CHAIN_MAX.
 *
 * The image is untrusted input: every offset read from it is checked again when it is used.
 * Not thread-safe: one thread at a time (the block engine's worker, or any thread once the
 * engine is drained).
 */
#ifndef KILN_QCOW2_H
#define KILN_QCOW2_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kiln/error.h"

#define QCOW2_CHAIN_MAX 16   /* images in a backing chain, the top one included */
#define QCOW2_IOV_MAX 1024   /* iovecs per request */

struct qcow2;

/* Whether the file @fd begins with the qcow2 magic "QFI\xfb" (§Header, bytes 0-3). A read error
 * or a file shorter than 4 bytes is false. */
bool qcow2_probe(int fd);

/* Open the qcow2 image on @fd (borrowed; open for writing unless @readonly) found at @path (used
 * in messages and to resolve a relative backing file name against its directory, as QEMU does),
 * with its backing chain. A writable image has its unknown auto-clear feature bits cleared
 * (§Header, autoclear_features). Returns 0 with *out set, or -errno with @e set: ERROR_USAGE
 * for an image kiln refuses ("PATH: REASON"), ERROR_RUNTIME for host failures. */
int qcow2_open(int fd, const char *path, bool readonly, struct qcow2 **out, struct error *e)
	__attribute__((warn_unused_result));

/* The virtual disk's size in bytes (§Header, size). */
uint64_t qcow2_size(const struct qcow2 *q);

/* Read @n (at most QCOW2_IOV_MAX) buffers @iov of the guest disk from byte @pos. The range
 * must lie inside the virtual size. Returns the bytes read (all of them) or -errno (-EINVAL out
 * of range, -EIO for metadata that fails its checks, logged once). */
int64_t qcow2_readv(struct qcow2 *q, const struct iovec *iov, int n, uint64_t pos)
	__attribute__((warn_unused_result));

/* Write @iov[0..n) at guest byte @pos, allocating clusters as needed (§Cluster mapping). As
 * qcow2_readv(); -EROFS on a read-only image, -EIO for a cluster that is shared (refcount above
 * one, as with internal snapshots). */
int64_t qcow2_writev(struct qcow2 *q, const struct iovec *iov, int n, uint64_t pos)
	__attribute__((warn_unused_result));

/* Write the cached metadata back (refcounts, L2 tables, L1 table, each stage on the disk before
 * the next) and fdatasync the file. Returns 0 or -errno. */
int qcow2_flush(struct qcow2 *q) __attribute__((warn_unused_result));

/* Flush (a failure is logged) and free @q and its backing chain. NULL is fine. */
void qcow2_close(struct qcow2 *q);

#endif
