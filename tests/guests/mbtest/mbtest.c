/* SPDX-License-Identifier: Apache-2.0 */
/* mbtest — a freestanding Multiboot v1 kernel that checks the machine it boots on, as a guest
 * built for QEMU's -kernel would find it: the multiboot info (Multiboot 0.6.96 §3.3) and its
 * memory map against fw_cfg's RAM size and etc/e820 (QEMU docs/specs/fw_cfg.rst, read through
 * both the port and the DMA interface), the CPU count in the ACPI MADT (ACPI 6.5 §5.2.12)
 * against fw_cfg's, the PIT, the CMOS RTC and the local APIC timer. Each check prints
 * "MBTEST <name> ok|FAIL <details>" on COM1; each module prints its size, CRC-32 and string.
 * It ends by writing the number of failed checks to isa-debug-exit (port 0xf4): kiln then
 * exits with (failures << 1) | 1, so 1 means every check passed. */
#include <stdint.h>

#define COM1 0x3f8
#define DEBUG_EXIT 0xf4
#define FW_CFG_SEL 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_DMA 0x514
#define LAPIC 0xfee00000u
#define TIMER_VECTOR 0x40

static unsigned failures;
static volatile unsigned timer_ticks;

static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(p)); }
/* "memory": a write to fw_cfg's DMA port makes the device write guest memory. */
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(p) : "memory"); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t mmio_read(uint32_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write(uint32_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

static void putc(char c) { outb(COM1, (uint8_t)c); }
static void puts(const char *s) { while (*s) putc(*s++); }

/* @v in hex (any width) or decimal (32 bits: no 64-bit division without libgcc). */
static void putu(uint64_t v, unsigned base)
{
	char buf[24];
	int n = 0;

	if (base == 16) {
		do {
			buf[n++] = "0123456789abcdef"[v & 15];
			v >>= 4;
		} while (v);
		puts("0x");
	} else {
		uint32_t d = (uint32_t)v;

		do {
			buf[n++] = (char)('0' + d % 10);
			d /= 10;
		} while (d);
	}
	while (n)
		putc(buf[--n]);
}

static void begin(const char *name) { puts("MBTEST "); puts(name); }

static void result(int ok)
{
	puts(ok ? " ok" : " FAIL");
	failures += !ok;
}

static void kv(const char *k, uint64_t v, unsigned base)
{
	putc(' ');
	puts(k);
	putc('=');
	putu(v, base);
}

static int memeq(const void *a, const void *b, uint32_t n)
{
	const uint8_t *x = a, *y = b;

	for (uint32_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

static uint32_t bswap32(uint32_t v) { return __builtin_bswap32(v); }

/* fw_cfg through the port: select @key, read @n bytes. */
static void cfg_read(uint16_t key, void *buf, uint32_t n)
{
	outw(FW_CFG_SEL, key);
	for (uint32_t i = 0; i < n; i++)
		((uint8_t *)buf)[i] = inb(FW_CFG_DATA);
}

/* fw_cfg through DMA: select @key and read @n bytes into @buf; returns the control word after. */
static uint32_t cfg_dma_read(uint16_t key, void *buf, uint32_t n)
{
	static volatile struct { uint32_t control, length; uint64_t address; } __attribute__((aligned(16))) acc;

	acc.control = bswap32((uint32_t)key << 16 | 0x08 | 0x02);
	acc.length = bswap32(n);
	acc.address = (uint64_t)bswap32((uint32_t)(uintptr_t)buf) << 32;
	outl(FW_CFG_DMA, 0);
	outl(FW_CFG_DMA + 4, bswap32((uint32_t)(uintptr_t)&acc));
	return bswap32(acc.control);
}

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4], mmap_length, mmap_addr, drives_length, drives_addr, config_table;
	uint32_t boot_loader_name;
};

struct mb_mmap { uint32_t size; uint64_t addr, len; uint32_t type; } __attribute__((packed));
struct e820 { uint64_t addr, len; uint32_t type; } __attribute__((packed));

static uint8_t e820_file[128 * 20];

static uint32_t crc32(const uint8_t *p, uint32_t n)
{
	uint32_t c = 0xffffffffu;

	for (uint32_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c >> 1 ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

static void check_fw_cfg(uint32_t *nb_cpus, uint64_t *ram, uint32_t *e820_len)
{
	static uint8_t dir[4 + 64 * 64];
	uint8_t sig[4];
	uint32_t id = 0, n;
	uint16_t cpus = 0;

	cfg_read(0x00, sig, 4);
	cfg_read(0x01, &id, 4);
	cfg_read(0x05, &cpus, 2);
	begin("fw_cfg");
	result(memeq(sig, "QEMU", 4) && (id & 2) && cpus > 0 &&
	       cfg_dma_read(0x03, ram, 8) == 0 && *ram > 0 && cfg_dma_read(0x19, dir, sizeof(dir)) == 0);
	kv("id", id, 16);
	kv("cpus", cpus, 10);
	kv("ram", *ram, 16);
	n = bswap32(*(uint32_t *)dir);
	kv("files", n, 10);
	puts("\n");
	*nb_cpus = cpus;
	*e820_len = 0;
	for (uint32_t i = 0; i < n && i < 64; i++) {
		const uint8_t *e = dir + 4 + i * 64;

		if (memeq(e + 8, "etc/e820", 9)) {
			uint32_t size = bswap32(*(const uint32_t *)e);
			uint16_t key = (uint16_t)(e[4] << 8 | e[5]);

			if (size <= sizeof(e820_file) && cfg_dma_read(key, e820_file, size) == 0)
				*e820_len = size;
		}
	}
}

static void check_multiboot(uint32_t magic, const struct mb_info *mbi, uint64_t ram,
			    uint32_t e820_len)
{
	const char *name = (const char *)mbi->boot_loader_name;
	uint64_t ram_total = 0, ram_top = 0, prev_end = 0;
	uint32_t off, n = 0, sorted = 1, same_as_fw_cfg = 1;

	begin("multiboot");
	result(magic == 0x2BADB002 && (mbi->flags & 0x24d) == 0x24d && memeq(name, "kiln", 5));
	kv("flags", mbi->flags, 16);
	kv("mem_lower", mbi->mem_lower, 10);
	kv("mem_upper", mbi->mem_upper, 10);
	puts(" cmdline='");
	puts((const char *)mbi->cmdline);
	puts("'\n");

	for (off = 0; off + sizeof(struct mb_mmap) <= mbi->mmap_length; n++) {
		const struct mb_mmap *m = (const struct mb_mmap *)(mbi->mmap_addr + off);
		const struct e820 *f = (const struct e820 *)(e820_file + n * 20);

		sorted &= m->addr >= prev_end;
		prev_end = m->addr + m->len;
		if (m->type == 1) {
			ram_total += m->len;
			if (m->addr + m->len > ram_top)
				ram_top = m->addr + m->len;
		}
		same_as_fw_cfg &= (n + 1) * 20 <= e820_len && f->addr == m->addr &&
				  f->len == m->len && f->type == m->type;
		off += m->size + 4;
	}
	same_as_fw_cfg &= n * 20 == e820_len;
	begin("mmap");
	/* Below the 3 GiB hole RAM runs to the configured size; holes: the EBDA and 640K-1M. */
	result(n > 0 && sorted && ram_top == ram && ram_total <= ram &&
	       ram_total >= ram - (1u << 20) && (uint64_t)mbi->mem_upper * 1024 + (1u << 20) == ram &&
	       same_as_fw_cfg);
	kv("entries", n, 10);
	kv("ram_total", ram_total, 16);
	kv("ram_top", ram_top, 16);
	kv("same_as_etc_e820", same_as_fw_cfg, 10);
	puts("\n");
}

static void check_modules(const struct mb_info *mbi)
{
	const uint32_t *mod = (const uint32_t *)mbi->mods_addr;

	for (uint32_t i = 0; i < mbi->mods_count; i++, mod += 4) {
		begin("module");
		result(mod[1] >= mod[0] && (mod[0] & 0xfff) == 0);
		kv("index", i, 10);
		kv("size", mod[1] - mod[0], 10);
		kv("crc32", crc32((const uint8_t *)mod[0], mod[1] - mod[0]), 16);
		puts(" string='");
		puts((const char *)mod[2]);
		puts("'\n");
	}
}

static int sum_ok(const uint8_t *p, uint32_t n)
{
	uint8_t s = 0;

	for (uint32_t i = 0; i < n; i++)
		s += p[i];
	return s == 0;
}

/* The MADT's enabled processor local APICs, found as an OS does: the RSDP in the BIOS area
 * (ACPI 6.5 §5.2.5.1), then the XSDT (or RSDT). Returns -1 when a table is missing or bad. */
static int madt_cpus(void)
{
	const uint8_t *rsdp = 0, *sdt, *madt = 0;
	uint32_t entries, width, len;
	int cpus = 0;

	for (uint32_t a = 0xe0000; a < 0x100000 && !rsdp; a += 16)
		if (memeq((const void *)a, "RSD PTR ", 8) && sum_ok((const void *)a, 20))
			rsdp = (const uint8_t *)a;
	if (!rsdp)
		return -1;
	if (rsdp[15] >= 2 && *(const uint32_t *)(rsdp + 24)) {
		sdt = (const uint8_t *)*(const uint32_t *)(rsdp + 24);
		width = 8;
	} else {
		sdt = (const uint8_t *)*(const uint32_t *)(rsdp + 16);
		width = 4;
	}
	len = *(const uint32_t *)(sdt + 4);
	if (!sum_ok(sdt, len))
		return -1;
	entries = (len - 36) / width;
	for (uint32_t i = 0; i < entries && !madt; i++) {
		const uint8_t *t = (const uint8_t *)*(const uint32_t *)(sdt + 36 + i * width);

		if (memeq(t, "APIC", 4))
			madt = t;
	}
	if (!madt || !sum_ok(madt, *(const uint32_t *)(madt + 4)))
		return -1;
	len = *(const uint32_t *)(madt + 4);
	for (uint32_t off = 44; off + 2 <= len && madt[off + 1] >= 2; off += madt[off + 1])
		if (madt[off] == 0 && (*(const uint32_t *)(madt + off + 4) & 1))
			cpus++;
	return cpus;
}

static uint16_t pit_read0(void)
{
	uint8_t lo, hi;

	outb(0x43, 0x00); /* latch channel 0 */
	lo = inb(0x40);
	hi = inb(0x40);
	return (uint16_t)(hi << 8 | lo);
}

static void check_pit(void)
{
	uint16_t a, b;

	outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2 */
	outb(0x40, 0xff);
	outb(0x40, 0xff);
	a = pit_read0();
	for (volatile int i = 0; i < 200000; i++)
		;
	b = pit_read0();
	begin("pit");
	result(a != b);
	kv("first", a, 10);
	kv("second", b, 10);
	puts("\n");
}

static uint8_t cmos(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static unsigned from_bcd(uint8_t v, int bcd) { return bcd ? (v >> 4) * 10 + (v & 15) : v; }

static void check_rtc(void)
{
	unsigned sec, min, hour, day, mon, year, waited = 0;
	int bcd;

	while ((cmos(0x0a) & 0x80) && waited < 1000000) /* update in progress */
		waited++;
	bcd = !(cmos(0x0b) & 0x04);
	sec = from_bcd(cmos(0x00), bcd);
	min = from_bcd(cmos(0x02), bcd);
	hour = from_bcd(cmos(0x04) & 0x7f, bcd);
	day = from_bcd(cmos(0x07), bcd);
	mon = from_bcd(cmos(0x08), bcd);
	year = from_bcd(cmos(0x09), bcd);
	begin("rtc");
	result(waited < 1000000 && sec < 60 && min < 60 && hour < 24 && day >= 1 && day <= 31 &&
	       mon >= 1 && mon <= 12 && year <= 99);
	kv("year", 2000 + year, 10);
	kv("month", mon, 10);
	kv("day", day, 10);
	kv("seconds", sec, 10);
	puts("\n");
}

void apic_timer_irq(void);
void apic_timer_irq(void)
{
	timer_ticks++;
	mmio_write(LAPIC + 0xb0, 0); /* EOI */
}

extern char apic_timer_isr[];
#define APIC_TIMER_COUNT 200000u /* 3.2 ms at KVM's 1 GHz APIC bus, divided by 16 */
static uint64_t idt[256] __attribute__((aligned(8)));

static void check_apic_timer(void)
{
	uint32_t isr = (uint32_t)(uintptr_t)apic_timer_isr, first, later, spins = 0;
	struct { uint16_t limit; uint32_t base; } __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint32_t)(uintptr_t)idt };

	idt[TIMER_VECTOR] = (uint64_t)(isr & 0xffff) | (uint64_t)0x08 << 16 |
			    (uint64_t)0x8e00 << 32 | (uint64_t)(isr >> 16) << 48;
	__asm__ volatile("lidt %0" :: "m"(idtr));
	outb(0x21, 0xff); /* the PICs masked: only the local APIC timer interrupts */
	outb(0xa1, 0xff);
	mmio_write(LAPIC + 0xf0, 0x1ff);          /* software enable, spurious vector 0xff */
	mmio_write(LAPIC + 0x3e0, 0x3);           /* divide by 16 */
	mmio_write(LAPIC + 0x320, TIMER_VECTOR);  /* one-shot, unmasked */
	mmio_write(LAPIC + 0x380, APIC_TIMER_COUNT);
	first = mmio_read(LAPIC + 0x390);
	__asm__ volatile("sti");
	while (!timer_ticks && spins < 50000000)
		spins++;
	__asm__ volatile("cli");
	later = mmio_read(LAPIC + 0x390);
	begin("apic_timer");
	/* One interrupt, the count never above the initial count and 0 once a one-shot has fired
	 * (SDM 11.5.4). The first read may already be 0: the vCPU can be descheduled longer than
	 * the 3.2 ms the count lasts. */
	result(timer_ticks == 1 && first <= APIC_TIMER_COUNT && later == 0);
	kv("interrupts", timer_ticks, 10);
	kv("first_count", first, 10);
	kv("count_after", later, 10);
	puts("\n");
}

void mbtest_main(uint32_t magic, const struct mb_info *mbi);
void mbtest_main(uint32_t magic, const struct mb_info *mbi)
{
	uint32_t nb_cpus, e820_len;
	uint64_t ram = 0;
	int cpus;

	puts("MBTEST start\n");
	check_fw_cfg(&nb_cpus, &ram, &e820_len);
	check_multiboot(magic, mbi, ram, e820_len);
	check_modules(mbi);
	cpus = madt_cpus();
	begin("madt");
	result(cpus > 0 && (uint32_t)cpus == nb_cpus);
	kv("cpus", (uint32_t)cpus, 10);
	kv("fw_cfg_cpus", nb_cpus, 10);
	puts("\n");
	check_pit();
	check_rtc();
	check_apic_timer();
	puts("MBTEST done");
	kv("failures", failures, 10);
	puts("\n");
	outb(DEBUG_EXIT, (uint8_t)failures);
}
