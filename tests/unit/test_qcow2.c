/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the qcow2 format layer on images qemu-img makes at test time: reads of fresh
 * images, writes read back, backing files (raw and qcow2) and copy-on-write, zero clusters,
 * every refcount width and a refcount table that must grow; after kiln writes, `qemu-img
 * check` is clean and `qemu-img compare` agrees with a raw image written the same way. Then
 * each damaged or unsupported image is refused with a message naming the file and the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/qcow2.h"

#define MIB (1ull << 20)
#define KIB (1ull << 10)

static char dir[64];

/* Run a shell command (quiet); its exit status. */
__attribute__((format(printf, 1, 2)))
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int n, status;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(cmd) - 32);
	strcat(cmd, " >/dev/null 2>&1");
	status = system(cmd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *at(const char *name)
{
	static char path[4][128];
	static unsigned next;
	char *p = path[next++ % 4];

	snprintf(p, 128, "%s/%s", dir, name);
	return p;
}

struct img {
	int fd;
	struct qcow2 *q;
};

/* Open @name; the error is in @e when it fails. */
static int img_open(struct img *m, const char *name, bool readonly, struct error *e)
{
	m->fd = open(at(name), (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	assert_true(m->fd >= 0);
	if (qcow2_open(m->fd, at(name), readonly, &m->q, e)) {
		close(m->fd);
		return -1;
	}
	return 0;
}

static void img_close(struct img *m)
{
	qcow2_close(m->q);
	close(m->fd);
}

static void must_open(struct img *m, const char *name, bool readonly)
{
	struct error e = { 0 };

	if (img_open(m, name, readonly, &e))
		fail_msg("%s", e.msg);
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + seed + (i >> 9));
}

/* Write @len bytes of pattern @seed at @pos through kiln and into the raw reference @ref. */
static void write_both(struct img *m, const char *ref, uint64_t pos, size_t len, unsigned seed)
{
	uint8_t *buf = malloc(len);
	struct iovec v[2] = { { buf, len / 3 }, { buf + len / 3, len - len / 3 } };
	int fd = open(at(ref), O_WRONLY);

	fill(buf, len, seed);
	assert_int_equal(qcow2_writev(m->q, v, 2, pos), (int64_t)len);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, (off_t)pos), (ssize_t)len);
	close(fd);
	free(buf);
}

/* Read @len bytes at @pos through kiln and from the raw reference: the same. */
static void read_same(struct img *m, const char *ref, uint64_t pos, size_t len)
{
	uint8_t *a = malloc(len), *b = calloc(1, len);
	struct iovec v = { a, len };
	int fd = open(at(ref), O_RDONLY);

	assert_int_equal(qcow2_readv(m->q, &v, 1, pos), (int64_t)len);
	assert_true(fd >= 0);
	assert_true(pread(fd, b, len, (off_t)pos) >= 0);
	close(fd);
	assert_memory_equal(a, b, len);
	free(a);
	free(b);
}

/* qemu-img check is clean and the image reads as the raw reference. */
static void qemu_agrees(const char *name, const char *ref)
{
	assert_int_equal(sh("qemu-img check -f qcow2 %s", at(name)), 0);
	assert_int_equal(sh("qemu-img compare -f qcow2 -F raw %s %s", at(name), at(ref)), 0);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/kiln-qcow2-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	assert_int_equal(sh("rm -rf %s", dir), 0);
	return 0;
}

static void test_probe_and_fresh_read(void **state)
{
	struct img m;
	int fd;

	assert_int_equal(sh("qemu-img create -f qcow2 %s 8M", at("fresh.qcow2")), 0);
	assert_int_equal(sh("truncate -s 8M %s", at("fresh.raw")), 0);
	fd = open(at("fresh.qcow2"), O_RDONLY);
	assert_true(qcow2_probe(fd));
	close(fd);
	fd = open(at("fresh.raw"), O_RDONLY);
	assert_false(qcow2_probe(fd));
	close(fd);
	must_open(&m, "fresh.qcow2", true);
	assert_int_equal(qcow2_size(m.q), 8 * MIB);
	read_same(&m, "fresh.raw", 0, 256 * KIB);
	read_same(&m, "fresh.raw", 8 * MIB - 4096, 4096);
	img_close(&m);
}

/* Writes of every shape (unaligned, across clusters, rewrites) on each version and refcount
 * width, and a 512-byte-cluster image whose refcount table must grow. */
static void write_read_check(const char *opts, uint64_t size, uint64_t stride)
{
	struct img m;
	uint8_t big[4096];
	struct iovec v = { big, sizeof(big) };

	assert_int_equal(sh("rm -f %s %s; qemu-img create -f qcow2 -o %s %s %llu", at("w.qcow2"),
			    at("w.raw"), opts, at("w.qcow2"), (unsigned long long)size), 0);
	assert_int_equal(sh("truncate -s %llu %s", (unsigned long long)size, at("w.raw")), 0);
	must_open(&m, "w.qcow2", false);
	write_both(&m, "w.raw", 0, 4096, 1);
	write_both(&m, "w.raw", 70000, 200000, 2);
	write_both(&m, "w.raw", 512, 512, 3);                 /* into an allocated cluster */
	write_both(&m, "w.raw", size - 1536, 1536, 4);        /* the last sectors */
	for (uint64_t pos = MIB; pos + 4096 <= size - 4096; pos += stride)
		write_both(&m, "w.raw", pos, 4096, (unsigned)(pos >> 12));
	read_same(&m, "w.raw", 0, 512 * KIB);
	read_same(&m, "w.raw", size - 64 * KIB, 64 * KIB);
	/* the guest may not go past the end */
	assert_int_equal(qcow2_readv(m.q, &v, 1, size - 2048), -EINVAL);
	assert_int_equal(qcow2_writev(m.q, &v, 1, size), -EINVAL);
	assert_int_equal(qcow2_writev(m.q, &v, 1, UINT64_MAX - 100), -EINVAL);
	assert_int_equal(qcow2_flush(m.q), 0);
	img_close(&m);
	qemu_agrees("w.qcow2", "w.raw");
	must_open(&m, "w.qcow2", true); /* what kiln wrote, read again from the disk */
	read_same(&m, "w.raw", 0, 512 * KIB);
	read_same(&m, "w.raw", size - 64 * KIB, 64 * KIB);
	img_close(&m);
}

static void test_write_v3(void **state) { write_read_check("compat=1.1", 64 * MIB, 3 * MIB); }
static void test_write_v2(void **state) { write_read_check("compat=0.10", 64 * MIB, 3 * MIB); }
static void test_refcount_1bit(void **state) { write_read_check("refcount_bits=1", 16 * MIB, MIB); }
static void test_refcount_4bit(void **state) { write_read_check("refcount_bits=4", 16 * MIB, MIB); }
static void test_refcount_64bit(void **state) { write_read_check("refcount_bits=64", 16 * MIB, MIB); }
static void test_refcount_table_grows(void **state)
{
	uint32_t clusters;
	int fd;

	/* qemu-img gives it one cluster of table: 64 blocks of 256 clusters, 8 MiB of file */
	write_read_check("cluster_size=512", 32 * MIB, 8 * KIB);
	fd = open(at("w.qcow2"), O_RDONLY);
	assert_int_equal(pread(fd, &clusters, 4, 56), 4);
	close(fd);
	assert_true(be32toh(clusters) > 1);
}

static void test_big_clusters(void **state) { write_read_check("cluster_size=2M", 16 * MIB, MIB); }

/* A qcow2 overlay on a raw base: reads come from the base, partial writes copy the rest of the
 * cluster from it, the base is never written. Then a qcow2 overlay on that overlay. */
static void test_backing_raw_and_qcow2(void **state)
{
	struct img m;

	assert_int_equal(sh("cd %s && head -c 4M /dev/urandom > base.raw && cp base.raw ref.raw && "
			    "cp base.raw base.orig && qemu-img create -f qcow2 -b base.raw -F raw ovl.qcow2 "
			    "6M && truncate -s 6M ref.raw", dir), 0);
	must_open(&m, "ovl.qcow2", false);
	read_same(&m, "ref.raw", 0, 6 * MIB);            /* past the base's end: zeros */
	write_both(&m, "ref.raw", 1000, 3000, 5);         /* COW: head and tail from the base */
	write_both(&m, "ref.raw", 4 * MIB - 512, 1024, 6); /* straddles the base's end */
	read_same(&m, "ref.raw", 0, 6 * MIB);
	img_close(&m);
	qemu_agrees("ovl.qcow2", "ref.raw");
	assert_int_equal(sh("cmp %s %s", at("base.raw"), at("base.orig")), 0);

	/* a relative backing name is found next to the overlay, not in the working directory */
	assert_int_equal(sh("cd %s && qemu-img create -f qcow2 -b ovl.qcow2 -F qcow2 top.qcow2 6M", dir), 0);
	must_open(&m, "top.qcow2", false);
	read_same(&m, "ref.raw", 0, 6 * MIB);
	write_both(&m, "ref.raw", 2 * MIB + 100, 70000, 7);
	read_same(&m, "ref.raw", 0, 6 * MIB);
	img_close(&m);
	qemu_agrees("top.qcow2", "ref.raw");
}

/* Zero clusters (v3) read as zeros, not the base's data; a partial write into one keeps the rest
 * zero. */
static void test_zero_clusters(void **state)
{
	struct img m;

	assert_int_equal(sh("cd %s && head -c 1M /dev/urandom > zb.raw && cp zb.raw zref.raw && "
			    "qemu-img create -f qcow2 -b zb.raw -F raw z.qcow2 1M && "
			    "qemu-io -f qcow2 -c 'write -z 0 128k' z.qcow2 && "
			    "qemu-io -f qcow2 -c 'write -z -u 256k 64k' z.qcow2 && "
			    "dd if=/dev/zero of=zref.raw bs=64k count=2 conv=notrunc && "
			    "dd if=/dev/zero of=zref.raw bs=64k seek=4 count=1 conv=notrunc", dir), 0);
	must_open(&m, "z.qcow2", false);
	read_same(&m, "zref.raw", 0, MIB);
	write_both(&m, "zref.raw", 4096, 512, 8);
	write_both(&m, "zref.raw", 256 * KIB + 8192, 4096, 9);
	read_same(&m, "zref.raw", 0, MIB);
	img_close(&m);
	qemu_agrees("z.qcow2", "zref.raw");
}

/* Bytes @off.. of image @name (@len of them, big-endian) set to @value. */
static void poke(const char *name, unsigned off, unsigned len, uint64_t value)
{
	uint8_t b[8];
	int fd = open(at(name), O_WRONLY);

	for (unsigned i = 0; i < len; i++)
		b[i] = (uint8_t)(value >> (8 * (len - 1 - i)));
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, len, off), (ssize_t)len);
	close(fd);
}

/* A fresh image with header byte @off (of @len bytes, big-endian) set to @value. */
static void patched(const char *name, const char *create_opts, unsigned off, unsigned len,
		    uint64_t value)
{
	assert_int_equal(sh("rm -f %s; qemu-img create -f qcow2 %s %s 4M", at(name), create_opts,
			    at(name)), 0);
	poke(name, off, len, value);
}

/* Opening @name fails with a message that names the file and contains @reason. */
static void refused(const char *name, bool readonly, const char *reason)
{
	struct error e = { 0 };
	struct img m;

	if (!img_open(&m, name, readonly, &e)) {
		img_close(&m);
		fail_msg("%s was opened; expected \"%s\"", name, reason);
	}
	if (!strstr(e.msg, name) || !strstr(e.msg, reason) || strchr(e.msg, '\n'))
		fail_msg("message \"%s\" lacks \"%s\"", e.msg, reason);
	assert_int_equal(e.kind, ERROR_USAGE);
}

static void test_refused_headers(void **state)
{
	patched("magic.qcow2", "", 0, 4, 0x514649fc);
	refused("magic.qcow2", true, "not a qcow2 image");
	patched("v4.qcow2", "", 4, 4, 4);
	refused("v4.qcow2", true, "version 4 is not supported");
	patched("cb.qcow2", "", 20, 4, 30);
	refused("cb.qcow2", true, "cluster_bits 30");
	patched("crypt.qcow2", "", 32, 4, 1);
	refused("crypt.qcow2", true, "encrypted");
	patched("dirty.qcow2", "", 72, 8, 1);
	refused("dirty.qcow2", false, "dirty bit");
	patched("corrupt.qcow2", "", 72, 8, 2);
	refused("corrupt.qcow2", true, "marked corrupt");
	patched("unknown.qcow2", "", 72, 8, 1ull << 40);
	refused("unknown.qcow2", true, "unknown incompatible feature bits 0x10000000000");
	patched("order.qcow2", "", 96, 4, 7);
	refused("order.qcow2", true, "refcount_order 7");
	patched("l1far.qcow2", "", 40, 8, 1ull << 40);
	refused("l1far.qcow2", true, "the L1 table at 0x10000000000");
	patched("size.qcow2", "", 24, 8, 1ull << 50);
	refused("size.qcow2", true, "needs more than the L1 table");
	patched("rtfar.qcow2", "", 48, 8, 1ull << 40);
	refused("rtfar.qcow2", true, "refcount table");
	/* qemu-img puts the refcount table at 0x10000 and the L1 table at 0x30000 (64 KiB) */
	patched("overlap.qcow2", "", 40, 8, 0x10000);
	refused("overlap.qcow2", true, "metadata overlaps at host offset 0x10000");
	/* A backing name longer than a 512-byte cluster, at an offset far away: no wrap-around. */
	patched("name.qcow2", "-o cluster_size=512", 16, 4, 600);
	poke("name.qcow2", 8, 8, 1ull << 40);
	refused("name.qcow2", true, "the backing file name (600 bytes at 1099511627776)");
}

static void test_refused_features(void **state)
{
	assert_int_equal(sh("cd %s && qemu-img create -f qcow2 -o extended_l2=on xl2.qcow2 4M && "
			    "qemu-img create -f qcow2 -o data_file=ext.raw ext.qcow2 4M && "
			    "yes kiln | head -c 1M > text.raw && "
			    "qemu-img convert -c -f raw -O qcow2 text.raw comp.qcow2 && "
			    "qemu-img create -f qcow2 -o compression_type=zstd zstd.qcow2 4M && "
			    "qemu-img create -f qcow2 snap.qcow2 4M && qemu-img snapshot -c s1 snap.qcow2",
			    dir), 0);
	refused("xl2.qcow2", true, "extended L2 entries");
	refused("ext.qcow2", true, "external data files");
	refused("comp.qcow2", true, "compressed cluster");
	refused("snap.qcow2", false, "internal snapshots");
	if (sh("qemu-img info %s", at("zstd.qcow2")) == 0)
		refused("zstd.qcow2", true, "compression type");
}

/* An L2 entry that points beyond the file, or at the L1 table: refused at open. */
static void test_refused_l2_entries(void **state)
{
	uint64_t l1, l2, entry;
	int fd;

	assert_int_equal(sh("cd %s && qemu-img create -f qcow2 bad.qcow2 4M && "
			    "qemu-io -f qcow2 -c 'write 0 64k' bad.qcow2", dir), 0);
	fd = open(at("bad.qcow2"), O_RDWR);
	assert_int_equal(pread(fd, &l1, 8, 40), 8);
	assert_int_equal(pread(fd, &l2, 8, (off_t)be64toh(l1)), 8);
	l2 = be64toh(l2) & 0x00fffffffffffe00ull;
	entry = htobe64(0x8000000000000000ull | (1ull << 40));
	assert_int_equal(pwrite(fd, &entry, 8, (off_t)l2), 8);
	close(fd);
	refused("bad.qcow2", true, "the L2 entry of guest offset 0x0");
	fd = open(at("bad.qcow2"), O_RDWR);
	entry = htobe64(0x8000000000000000ull | be64toh(l1));
	assert_int_equal(pwrite(fd, &entry, 8, (off_t)l2), 8);
	close(fd);
	refused("bad.qcow2", true, "overlaps metadata");
}

static void test_refused_backing_chains(void **state)
{
	assert_int_equal(sh("cd %s && qemu-img create -f qcow2 -u -b b.qcow2 -F qcow2 a.qcow2 4M && "
			    "qemu-img create -f qcow2 -u -b a.qcow2 -F qcow2 b.qcow2 4M && "
			    "qemu-img create -f qcow2 -u -b missing.raw -F raw orphan.qcow2 4M && "
			    "qemu-img create -f qcow2 -u -b x.vmdk -F vmdk vmdk.qcow2 4M && "
			    "qemu-img create -f qcow2 d0.qcow2 4M && for i in $(seq 1 16); do "
			    "qemu-img create -f qcow2 -u -b d$((i-1)).qcow2 -F qcow2 d$i.qcow2 4M; done",
			    dir), 0);
	refused("a.qcow2", false, "loops back to this file");
	refused("orphan.qcow2", false, "missing.raw: No such file or directory");
	refused("vmdk.qcow2", false, "format vmdk");
	refused("d16.qcow2", false, "deeper than 16 images");
	/* The name is the image's: a FIFO is refused, never opened blocking. */
	assert_int_equal(sh("cd %s && rm -f fifo && mkfifo fifo && "
			    "qemu-img create -f qcow2 -u -b fifo -F raw onfifo.qcow2 4M", dir), 0);
	refused("onfifo.qcow2", false, "not a regular file or block device");
	{
		struct img m;

		must_open(&m, "d15.qcow2", false); /* 16 images: the limit */
		img_close(&m);
	}
}

/* A data cluster the file ends inside (QEMU need not write one whole) reads as zeros past the
 * end; an L1 entry past the virtual size is refused. */
static void test_short_file_and_l1_past_size(void **state)
{
	uint8_t buf[4096], want[4096];
	struct stat st;
	struct img m;
	int fd;

	assert_int_equal(sh("cd %s && qemu-img create -f qcow2 short.qcow2 4M && "
			    "qemu-io -f qcow2 -c 'write -P 0x5a 1M 64k' short.qcow2", dir), 0);
	fd = open(at("short.qcow2"), O_RDWR);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(ftruncate(fd, st.st_size - 60 * 1024), 0); /* 4 KiB of the 64 KiB left */
	close(fd);
	must_open(&m, "short.qcow2", true);
	memset(want, 0x5a, sizeof(want));
	assert_int_equal(qcow2_readv(m.q, &(struct iovec){ buf, 4096 }, 1, MIB), 4096);
	assert_memory_equal(buf, want, 4096);
	memset(want, 0, sizeof(want));
	assert_int_equal(qcow2_readv(m.q, &(struct iovec){ buf, 4096 }, 1, MIB + 8192), 4096);
	assert_memory_equal(buf, want, 4096);
	img_close(&m);

	/* Two L2 tables of 32 KiB of guest space each, then the virtual size cut to the first. */
	assert_int_equal(sh("cd %s && qemu-img create -f qcow2 -o cluster_size=512 far.qcow2 64k && "
			    "qemu-io -f qcow2 -c 'write 0 512' -c 'write 32k 512' far.qcow2", dir), 0);
	poke("far.qcow2", 24, 8, 32768);
	refused("far.qcow2", true, "L1 entry 1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_and_fresh_read),
		cmocka_unit_test(test_write_v3),
		cmocka_unit_test(test_write_v2),
		cmocka_unit_test(test_refcount_1bit),
		cmocka_unit_test(test_refcount_4bit),
		cmocka_unit_test(test_refcount_64bit),
		cmocka_unit_test(test_refcount_table_grows),
		cmocka_unit_test(test_big_clusters),
		cmocka_unit_test(test_backing_raw_and_qcow2),
		cmocka_unit_test(test_zero_clusters),
		cmocka_unit_test(test_refused_headers),
		cmocka_unit_test(test_refused_features),
		cmocka_unit_test(test_refused_l2_entries),
		cmocka_unit_test(test_refused_backing_chains),
		cmocka_unit_test(test_short_file_and_l1_past_size),
	};

	if (sh("qemu-img --version")) {
		print_message("qemu-img is missing (scripts/deps.sh installs qemu-utils)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
