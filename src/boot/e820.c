/* SPDX-License-Identifier: Apache-2.0 */
/* e820 — the guest's physical memory map as the BIOS INT 15h/E820 call would report it.
 *
 * Owns: which guest-physical ranges the kernel may use as RAM. Both boot paths hand the same
 * map to the kernel: in the zero page (bzImage) or converted to the PVH memory map.
 *
 * The BIOS area [KILN_ACPI_START, 1 MiB) holding the RSDP and the ACPI tables is reported as
 * E820_RESERVED, not E820_ACPI (3, "ACPI reclaimable"): the RSDP must stay where ACPI 6.5
 * §5.2.5.1 says an OS may scan for it (0xE0000..0xFFFFF) for the life of the machine, and type 3
 * would allow the OS to reuse those pages once it has read the tables. Real firmware reports
 * this range as reserved too, and Linux reserves [0xA0000, 1 MiB) whatever the map says.
 */
#include <asm/bootparam.h>
#include <asm/e820.h>

#include "boot/boot_internal.h"
#include "kiln/layout.h"

#define VGA_START 0xA0000ULL /* end of conventional memory: VGA window and option ROMs follow */

static unsigned add(struct boot_e820_entry *table, unsigned n, unsigned max, uint64_t addr,
		    uint64_t end, uint32_t type)
{
	if (n == max || end <= addr)
		return n;
	table[n] = (struct boot_e820_entry){ .addr = addr, .size = end - addr, .type = type };
	return n + 1;
}

/* Linux boot protocol zero page e820_table (Documentation/arch/x86/zero-page.rst); types from
 * ACPI 6.5 §15 "System Address Map Interfaces". Entries come out sorted and disjoint. */
unsigned boot_e820_build(const struct guest_mem *mem, struct boot_e820_entry *table, unsigned max)
{
	uint64_t low_end = guest_mem_low_end(mem);
	unsigned n = 0;

	n = add(table, n, max, 0, low_end < KILN_EBDA_START ? low_end : KILN_EBDA_START, E820_RAM);
	n = add(table, n, max, KILN_EBDA_START, VGA_START, E820_RESERVED);
	n = add(table, n, max, KILN_ACPI_START, KILN_ACPI_END, E820_RESERVED);
	n = add(table, n, max, KILN_HIGH_MEMORY, low_end, E820_RAM);
	for (unsigned i = 1; i < mem->nr_regions && i < GUEST_MEM_MAX_REGIONS; i++)
		n = add(table, n, max, mem->region[i].gpa, mem->region[i].gpa + mem->region[i].size,
			E820_RAM);
	return n;
}
