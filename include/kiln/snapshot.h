/* snapshot — kiln's snapshot file: a versioned, checksummed container of named state sections.
 *
 * Owns: the on-disk format and nothing about what the sections mean. A file is
 *   header   "KILNSNAP", u32 format version, u32 header bytes, char[32] kiln version,
 *            u64 file bytes
 *   sections u8 name[12] (NUL-padded), u32 instance, u64 length, then length bytes padded to 8
 *   trailer  "KEND", u32 CRC-32 (zlib's, ISO 3309) of every byte before the trailer
 * All integers are little-endian: kiln runs on x86-64 only, whose structs (and KVM's) are
 * stored as they are in memory. Each owner (a device, a vCPU, the VM) writes its own sections
 * and reads them back by name and instance; a reader never trusts a length it did not check.
 * Guest memory is not in this file: it goes to its own file (see vm_snapshot()).
 */
#ifndef KILN_SNAPSHOT_H
#define KILN_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_FORMAT_VERSION 1u
#define SNAP_NAME_MAX 12u
#define SNAP_FILE_MAX (1ull << 30)      /* bytes: device state is kilobytes; guest memory has
					 * its own file */

/* Sections collected in memory until snap_writer_save(). */
struct snap_writer {
	uint8_t *buf;
	size_t len, cap;
	bool oom;               /* an allocation failed: saving reports -ENOMEM */
};

/* Append section @name (at most SNAP_NAME_MAX bytes) / @instance holding @len bytes of @data. */
void snap_put(struct snap_writer *w, const char *name, uint32_t instance, const void *data,
	      size_t len);

/* Write header, sections and trailer to @path (created, or truncated; written to a temporary
 * file beside it and renamed, so a reader never sees half a file). Returns 0 or -errno with a
 * message naming the file in @err. The writer is left as it was. */
int snap_writer_save(const struct snap_writer *w, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The bytes snap_writer_save() would write, in a malloc'd buffer (*out, *len) the caller
 * frees. Returns 0 or -ENOMEM. */
int snap_writer_image(const struct snap_writer *w, uint8_t **out, size_t *len)
	__attribute__((warn_unused_result));

void snap_writer_free(struct snap_writer *w);

/* A growable buffer an owner encodes one section into, little-endian field by field whatever
 * the host; start from { 0 }. An allocation failure (or passing SNAP_FILE_MAX bytes) sets oom
 * and drops every later append, so encoders need not check each call. */
struct snap_enc {
	uint8_t *buf;
	size_t len, cap;
	bool oom;
};

void snap_enc_u8(struct snap_enc *e, uint8_t v);
void snap_enc_u16(struct snap_enc *e, uint16_t v);
void snap_enc_u32(struct snap_enc *e, uint32_t v);
void snap_enc_u64(struct snap_enc *e, uint64_t v);
/* Append @n bytes from @p as they are (@p may be NULL when @n is 0): byte strings, or a KVM
 * UAPI structure kept raw. */
void snap_enc_bytes(struct snap_enc *e, const void *p, size_t n);

/* Free e's buffer without writing it (an encoder's error path); e is left as { 0 }. */
void snap_enc_free(struct snap_enc *e);

/* A cursor over a section's bytes, for decoding what snap_enc_*() wrote. A read past the end
 * yields 0 (or zeroed bytes), consumes nothing and sets bad, and every read after it yields 0
 * too, so decoders check once, with snap_dec_done(), before using what they read. */
struct snap_dec {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

/* Start decoding the @len bytes at @p, borrowed: they must outlive @d (@p may be NULL when
 * @len is 0). */
void snap_dec_init(struct snap_dec *d, const void *p, size_t len);

uint8_t snap_dec_u8(struct snap_dec *d);
uint16_t snap_dec_u16(struct snap_dec *d);
uint32_t snap_dec_u32(struct snap_dec *d);
uint64_t snap_dec_u64(struct snap_dec *d);
/* Copy the next @n bytes into @out (zeroed instead when fewer than @n are left). */
void snap_dec_bytes(struct snap_dec *d, void *out, size_t n);

/* True when no read went past the end and every byte was consumed: a section with bytes left
 * over is of another layout than the decoder's, and as wrong as a short one. */
bool snap_dec_done(const struct snap_dec *d);

/* A snapshot file read whole and checked. */
struct snap_reader {
	uint8_t *buf;
	size_t len;
};

/* Read @path and check magic, format version, kiln version, length, section framing and
 * checksum. Returns 0, or -EINVAL (not a kiln snapshot, another version, truncated, corrupted)
 * or -errno, with a message naming the file and what is wrong in @err. */
int snap_reader_open(struct snap_reader *r, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* snap_reader_open() for an image already in memory (@buf, malloc'd, @len bytes; taken over:
 * freed by snap_reader_close() or at once on failure), named @what in messages. */
int snap_reader_take(struct snap_reader *r, uint8_t *buf, size_t len, const char *what,
		     char *err, size_t errlen) __attribute__((warn_unused_result));

/* The bytes of section @name / @instance and their count in *len, or NULL when the file has no
 * such section. The pointer lives as long as the reader. */
const void *snap_get(const struct snap_reader *r, const char *name, uint32_t instance,
		     size_t *len);

/* snap_get() for a section of exactly @len bytes: NULL (and a message naming the section in
 * @err, unless @errlen is 0) when it is missing or of another size. */
const void *snap_get_exact(const struct snap_reader *r, const char *name, uint32_t instance,
			   size_t len, char *err, size_t errlen);

void snap_reader_close(struct snap_reader *r);

#endif
