/* SPDX-License-Identifier: Apache-2.0 */
/* guest_mem — guest RAM and the one checked way to reach it.
 *
 * Owns: the host mappings that back guest-physical RAM, laid out around the 32-bit MMIO hole
 * (RAM below KILN_MMIO_HOLE_START, the rest from 4 GiB up). Every access to guest memory from
 * kiln goes through guest_mem_ptr(), which refuses any range that is not entirely inside one
 * RAM region, so a guest-provided address can never make kiln touch memory outside the guest.
 */
#ifndef KILN_GUEST_MEM_H
#define KILN_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

struct guest_mem_region {
	uint64_t gpa;  /* guest-physical start, bytes */
	uint64_t size; /* bytes */
	uint8_t *hva;  /* host mapping of the region */
};

struct guest_mem {
	unsigned nr_regions;
	struct guest_mem_region region[GUEST_MEM_MAX_REGIONS];
	uint64_t size;       /* total RAM, bytes */
	void *mapping;       /* one host mapping holding every region (NULL for caller-built maps) */
	uint64_t mapping_len;
	/* Diff snapshots: a bit per 4 KiB page of the mapping that kiln itself wrote (KVM logs the
	 * guest's writes), or NULL when nothing is tracked. Set by the VM, freed by it. */
	uint64_t *dirty;
	bool shared;         /* mapped MAP_SHARED from a file (a migration's memfd) */
};

/* Reserve @bytes of guest RAM as one anonymous mapping and split it around the MMIO hole
 * [KILN_MMIO_HOLE_START, 4 GiB). Pages are only populated when touched. With @huge the mapping
 * is of 2 MiB hugetlbfs pages, all reserved now (the host's pool must hold them: a page that
 * could not be had later would kill kiln on the guest's touch); without, MAP_NORESERVE with
 * transparent huge pages advised. Returns 0 or -errno (-EINVAL for 0 bytes or not a multiple of
 * 4 KiB, or of 2 MiB with @huge; -ENOMEM). */
int guest_mem_alloc(struct guest_mem *mem, uint64_t bytes, bool huge)
	__attribute__((warn_unused_result));

/* Guest RAM of @bytes mapped from file @fd (at least @bytes long; the caller keeps the fd).
 * Private (a snapshot's memory file): pages are read from the file when first touched and
 * copied on the first write, so the file never changes and a restore reads nothing up front.
 * @shared (a migration's memfd): the file's pages are the guest's. Returns 0 or -errno. */
int guest_mem_map_file(struct guest_mem *mem, uint64_t bytes, int fd, bool shared)
	__attribute__((warn_unused_result));

/* Unmap what guest_mem_alloc() mapped. Safe on a zeroed struct. */
void guest_mem_free(struct guest_mem *mem);

/* Host pointer for guest-physical [gpa, gpa + len), or NULL when any byte of it lies outside
 * RAM or the range wraps. len 0 is refused. Overflow-safe for any 64-bit inputs. */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copy @len bytes to guest-physical @gpa. Returns 0, or -EFAULT when the range is not RAM. */
int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
	__attribute__((warn_unused_result));

/* Record that kiln wrote host range [@hva, @hva + @len) inside the mapping (virtqueue
 * buffers, used rings, discarded pages), for the next diff snapshot. Any thread; a no-op
 * while nothing is tracked or for ranges outside the mapping. */
void guest_mem_mark_dirty(const struct guest_mem *mem, const void *hva, uint64_t len);

/* Give the host back the memory behind host range [@hva, @hva + @len) of the mapping (whole
 * pages; the balloon's): anonymous and shared memory read as zeros afterwards, a private file
 * mapping as the file. Marks the range dirty. Returns 0 or -errno. */
int guest_mem_discard(const struct guest_mem *mem, void *hva, uint64_t len);

/* Highest guest-physical address + 1 of RAM below the MMIO hole, bytes. */
uint64_t guest_mem_low_end(const struct guest_mem *mem);

#endif
