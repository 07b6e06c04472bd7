/* SPDX-License-Identifier: Apache-2.0 */
/* guest_mem — see include/kiln/guest_mem.h. */
#include "kiln/guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/mman.h>

#include "kiln/layout.h"

/* Lay the regions of @bytes of RAM out over mapping @map, around the MMIO hole. */
static void split(struct guest_mem *mem, void *map, uint64_t bytes)
{
	uint64_t low = bytes < KILN_MMIO_HOLE_START ? bytes : KILN_MMIO_HOLE_START;

	mem->mapping = map;
	mem->mapping_len = bytes;
	mem->size = bytes;
	mem->region[0] = (struct guest_mem_region){ .gpa = 0, .size = low, .hva = map };
	mem->nr_regions = 1;
	if (bytes > low) {
		mem->region[1] = (struct guest_mem_region){
			.gpa = KILN_MMIO_HOLE_END, .size = bytes - low, .hva = (uint8_t *)map + low };
		mem->nr_regions = 2;
	}
}

/* An anonymous MAP_NORESERVE mapping of @bytes whose address is a multiple of 2 MiB, or NULL.
 * KVM's API document (KVM_SET_USER_MEMORY_REGION) recommends that the lower 21 bits of
 * guest_phys_addr and userspace_addr be identical so that large guest pages can be backed by
 * large host pages; KVM disables 2 MiB mappings for a slot where they differ. mmap() only
 * page-aligns, which kept every guest page behind its own 4 KiB nested page-table entry even
 * where the host had backed it with a transparent huge page. Over-map by 2 MiB, trim the ends. */
static void *map_aligned_2m(uint64_t bytes)
{
	const uint64_t align = 2u << 20;
	uint8_t *raw = mmap(NULL, bytes + align, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *map;
	uint64_t head;

	if (raw == MAP_FAILED)
		return NULL;
	map = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
	head = (uint64_t)(map - raw);
	if (head)
		munmap(raw, head);
	munmap(map + bytes, align - head);
	return map;
}

int guest_mem_alloc(struct guest_mem *mem, uint64_t bytes, bool huge)
{
	void *map;

	memset(mem, 0, sizeof(*mem));
	if (bytes == 0 || bytes % (huge ? 2u << 20 : 4096u))
		return -EINVAL;
	if (huge) {
		map = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
		if (map == MAP_FAILED)
			return -ENOMEM;
	} else {
		map = map_aligned_2m(bytes);
		if (!map)
			return -ENOMEM;
		madvise(map, bytes, MADV_HUGEPAGE);
	}
	/* Guest RAM is never a core-dump payload. */
	madvise(map, bytes, MADV_DONTDUMP);
	split(mem, map, bytes);
	return 0;
}

int guest_mem_map_file(struct guest_mem *mem, uint64_t bytes, int fd, bool shared)
{
	void *map;

	memset(mem, 0, sizeof(*mem));
	if (bytes == 0 || bytes % 4096)
		return -EINVAL;
	map = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		   (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_NORESERVE, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	madvise(map, bytes, MADV_DONTDUMP);
	split(mem, map, bytes);
	mem->shared = shared;
	return 0;
}

void guest_mem_free(struct guest_mem *mem)
{
	if (mem->mapping)
		munmap(mem->mapping, mem->mapping_len);
	memset(mem, 0, sizeof(*mem));
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct guest_mem_region *r = &mem->region[i];

		/* gpa - r->gpa cannot underflow once gpa >= r->gpa; compare lengths, never sums. */
		if (len == 0 || gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		if (len > r->size - (gpa - r->gpa))
			return NULL;
		return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = guest_mem_ptr(mem, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

uint64_t guest_mem_low_end(const struct guest_mem *mem)
{
	return mem->nr_regions ? mem->region[0].gpa + mem->region[0].size : 0;
}

void guest_mem_mark_dirty(const struct guest_mem *mem, const void *hva, uint64_t len)
{
	uint64_t off;

	if (!mem || !mem->dirty || len == 0 || (const uint8_t *)hva < (const uint8_t *)mem->mapping)
		return;
	off = (uint64_t)((const uint8_t *)hva - (const uint8_t *)mem->mapping);
	if (off >= mem->mapping_len || len > mem->mapping_len - off)
		return;
	for (uint64_t p = off / 4096; p <= (off + len - 1) / 4096; p++)
		__atomic_fetch_or(&mem->dirty[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
}

int guest_mem_discard(const struct guest_mem *mem, void *hva, uint64_t len)
{
	/* MADV_DONTNEED only drops a shared mapping's page tables; MADV_REMOVE frees the pages. */
	int ret = madvise(hva, len, mem->shared ? MADV_REMOVE : MADV_DONTNEED) ? -errno : 0;

	guest_mem_mark_dirty(mem, hva, len);
	return ret;
}
