/* SPDX-License-Identifier: Apache-2.0 */
/* layout — the guest-physical and I/O-port map of a kiln x86 PC.
 *
 * Owns: every fixed address the machine model, the boot code and the ACPI tables must agree
 * on. Nothing else in kiln spells these numbers.
 */
#ifndef KILN_LAYOUT_H
#define KILN_LAYOUT_H

/* Guest-physical memory map (bytes). */
#define KILN_BOOT_GDT          0x500ULL     /* boot GDT, 8 entries */
#define KILN_PVH_START_INFO    0x6000ULL    /* struct hvm_start_info + memory map (PVH boot) */
#define KILN_ZERO_PAGE         0x7000ULL    /* struct boot_params (bzImage boot) */
#define KILN_BOOT_PML4         0x9000ULL    /* identity page tables: PML4, PDPT, 4 PDs */
#define KILN_BOOT_PDPT         0xA000ULL
#define KILN_BOOT_PD           0xB000ULL    /* 4 pages: identity map of 0..4 GiB in 2 MiB pages */
#define KILN_CMDLINE           0x20000ULL   /* kernel command line */
#define KILN_CMDLINE_MAX       0x10000ULL   /* bytes, including the NUL */
#define KILN_MULTIBOOT_INFO    0x30000ULL   /* multiboot info, memory map, modules, strings */
#define KILN_MULTIBOOT_INFO_MAX 0x10000ULL  /* bytes */
#define KILN_EBDA_START        0x9FC00ULL   /* end of usable conventional memory */
#define KILN_ACPI_START        0xE0000ULL   /* RSDP and tables live in the BIOS area Linux scans */
#define KILN_ACPI_END          0x100000ULL
#define KILN_HIGH_MEMORY       0x100000ULL  /* 1 MiB: where the protected-mode kernel loads */
#define KILN_MMIO_HOLE_START   0xC0000000ULL
#define KILN_MMIO_HOLE_END     0x100000000ULL
#define KILN_BOOT_TIMER_GPA    0xC0000000ULL /* Firecracker-compatible boot-timer register */
#define KILN_BOOT_TIMER_SIZE   0x1000ULL
#define KILN_PCI_MEM_START     0xC1000000ULL /* PCI BAR window [START, END) */
#define KILN_PCI_MEM_END       0xD0000000ULL
#define KILN_VIRTIO_MMIO_BASE  0xD0000000ULL /* virtio-mmio slot i at BASE + i * SIZE */
#define KILN_VIRTIO_MMIO_SIZE  0x1000ULL
#define KILN_VIRTIO_MMIO_SLOTS 8
#define KILN_VIRTIO_SLOTS      KILN_VIRTIO_MMIO_SLOTS /* virtio devices, on either transport */
#define KILN_PCI_ECAM_GPA      0xE0000000ULL /* ECAM of bus 0 (MCFG) */
#define KILN_PCI_ECAM_SIZE     0x100000ULL
#define KILN_IOAPIC_GPA        0xFEC00000ULL
#define KILN_LAPIC_GPA         0xFEE00000ULL

/* Boot GDT selectors (Linux boot protocol: __BOOT_CS 0x10, __BOOT_DS 0x18). */
#define KILN_GDT_CODE32        0x08
#define KILN_GDT_CODE64        0x10
#define KILN_GDT_DATA          0x18
#define KILN_GDT_TSS           0x20

/* I/O ports. */
#define KILN_PORT_POST         0x80    /* POST code / io_delay port: accepted silently */
#define KILN_PORT_I8042_DATA   0x60
#define KILN_PORT_I8042_CMD    0x64
#define KILN_PORT_RTC          0x70    /* index 0x70, data 0x71 */
#define KILN_PORT_DEBUG_EXIT   0xF4    /* isa-debug-exit default (--debug-exit), 1 port */
#define KILN_PORT_COM1         0x3F8
#define KILN_PORT_DEBUGCON     0x402   /* QEMU's isa-debugcon: firmware's debug log (UEFI) */
#define KILN_PORT_PVPANIC      0x505
#define KILN_PORT_FW_CFG       0x510   /* fw_cfg selector (16-bit) 0x510, data 0x511 */
#define KILN_PORT_FW_CFG_DMA   0x514   /* fw_cfg DMA address, 8 bytes big-endian */
#define KILN_PORT_PM1A_EVT     0x600   /* PM1a status (2 bytes) + enable (2 bytes) */
#define KILN_PORT_PM1A_CNT     0x604   /* PM1a control, 2 bytes */
#define KILN_PORT_PCI_CONFIG   0xCF8   /* CONFIG_ADDRESS 0xCF8, CONFIG_DATA 0xCFC..0xCFF */

/* Interrupts (ISA IRQ numbers; GSIs equal them except IRQ 0, routed to GSI 2). */
#define KILN_IRQ_COM1          4
#define KILN_IRQ_RTC           8
#define KILN_IRQ_SCI           9
#define KILN_IOAPIC_PINS       24
#define KILN_VIRTIO_MMIO_GSI   16      /* slot i interrupts on GSI 16 + i (IOAPIC only, edge) */
#define KILN_PCI_INTX_GSI      16      /* PCI slot s (1..8) INTA# on GSI 16 + s - 1 (level, low) */
#define KILN_PCI_INTX_LINES    8
#define KILN_MSI_GSI_BASE      KILN_IOAPIC_PINS /* GSIs for MSI routes start after the pins */
#define KILN_MSI_GSI_MAX       1024

/* ACPI S5 sleep type written to PM1a_CNT.SLP_TYP on poweroff (DSDT \_S5). */
#define KILN_ACPI_S5_SLP_TYP   5

#endif
