/* SPDX-License-Identifier: Apache-2.0 */
/* snapshot — kiln's snapshot file: a checksummed container of named state sections, each with
 * its own version, and the little-endian encoders its owners write those sections with.
 *
 * Owns: the on-disk format and nothing about what the sections mean. Format 2 is
 *   header   "KILNSNAP", u32 format version (2), u32 header bytes (56), char[32] kiln version
 *            (NUL-padded; informational only: never checked), u64 file bytes
 *   sections u8 name[12] (NUL-padded), u32 instance, u32 section version (>= 1),
 *            u32 reserved (0), u64 length, then length bytes padded to 8 with zeros
 *   trailer  "KEND", u32 CRC-32 (zlib's, ISO 3309) of every byte before the trailer
 * All integers are little-endian. Format 1 is the same except for the section header, which
 * has no version and no reserved field (u8 name[12], u32 instance, u64 length): every section
 * of a format-1 file counts as version 1. Readers accept formats SNAP_FORMAT_OLDEST to
 * SNAP_FORMAT_VERSION; writers always write SNAP_FORMAT_VERSION. Every format starts, and any
 * later one must start, with the magic and the u32 format version, so that a newer file is
 * refused by its number rather than as garbage.
 *
 * The format version covers only this framing. What a section holds is versioned by its owner
 * (a device, a vCPU, the VM), which writes its section with a version >= 1, bumps that version
 * whenever the bytes change meaning, and keeps reading every older version, so that a snapshot
 * survives a kiln upgrade; a section newer than its reader knows is refused by name
 * (snap_get_section()). Owners write kiln's own structures field by field with snap_enc_*()
 * and read them back with snap_dec_*(), never as in-memory C structs. KVM UAPI structures,
 * whose layout the kernel keeps stable, may stay raw (x86-64 layout, so little-endian) and are
 * read back with a size check (snap_get_exact()).
 *
 * Section data starts 8-byte aligned in a reader's buffer. A reader never trusts a length it
 * did not check. Guest memory is not in this file: it goes to its own file (see vm_snapshot()).
 */
#ifndef KILN_SNAPSHOT_H
#define KILN_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_FORMAT_VERSION 2u          /* written, and the newest read */
#define SNAP_FORMAT_OLDEST 1u           /* the oldest read */
#define SNAP_NAME_MAX 12u               /* bytes of a section name */
#define SNAP_KILN_VERSION_MAX 32u       /* bytes of the header's kiln version, with its NUL */
#define SNAP_FILE_MAX (1ull << 30)      /* bytes: device state is kilobytes; guest memory has
					 * its own file */

/* Sections collected in memory until snap_writer_save() or snap_writer_image(); start from
 * { 0 }. */
struct snap_writer {
	uint8_t *buf;
	size_t len, cap;
	bool oom;               /* an allocation failed, or the file would pass SNAP_FILE_MAX:
				 * saving reports -ENOMEM */
	bool invalid;           /* a section was put with version 0, or a name empty or longer
				 * than SNAP_NAME_MAX: saving reports -EINVAL */
	char invalid_name[SNAP_NAME_MAX + 1]; /* the first such section's name, cut to fit */
};

/* Append section @name (1 to SNAP_NAME_MAX bytes) / @instance, of the owner's @version (>= 1),
 * holding @len bytes copied from @data (which may be NULL when @len is 0). Errors are kept in
 * the writer (oom, invalid) and reported when it is saved. Sections keep the order they were
 * put in; a reader finds the first of two with the same name and instance. */
void snap_put(struct snap_writer *w, const char *name, uint32_t instance, uint32_t version,
	      const void *data, size_t len);

/* Write header, sections and trailer to @path (created, or truncated; written to a temporary
 * file beside it and renamed, so a reader never sees half a file). Returns 0, -ENOMEM, -EINVAL
 * (an invalid section, named in the message) or -errno, with a message naming the file in
 * @err. The writer is left as it was. */
int snap_writer_save(const struct snap_writer *w, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The bytes snap_writer_save() would write, in a malloc'd buffer (*out, *len) the caller
 * frees. Returns 0, -ENOMEM or -EINVAL (w->invalid_name says which section). */
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

/* snap_put() of e's bytes, then e's buffer is freed and e left as { 0 }. When e->oom, no
 * section is appended and w->oom is set instead. */
void snap_put_enc(struct snap_writer *w, const char *name, uint32_t instance, uint32_t version,
		  struct snap_enc *e);

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
	uint32_t format;        /* the file's format version */
	char kiln_version[SNAP_KILN_VERSION_MAX]; /* the kiln that wrote it, for messages only:
						   * NUL-terminated, unprintable bytes as '?' */
};

/* Read @path and check magic, format version, length, section framing and checksum. Returns 0,
 * or -EINVAL (not a kiln snapshot, a format newer than SNAP_FORMAT_VERSION, truncated,
 * corrupted) or -errno, with a message naming the file and what is wrong in @err. The kiln
 * version in the header is not checked: whether a section can be read is its owner's call. */
int snap_reader_open(struct snap_reader *r, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* snap_reader_open() for an image already in memory (@buf, malloc'd, @len bytes; taken over:
 * freed by snap_reader_close() or at once on failure), named @what in messages. */
int snap_reader_take(struct snap_reader *r, uint8_t *buf, size_t len, const char *what,
		     char *err, size_t errlen) __attribute__((warn_unused_result));

/* The bytes of section @name / @instance, their count in *len and the owner's version of them
 * in *version (1 for every section of a format-1 file), or NULL when the file has no such
 * section. The pointer lives as long as the reader. */
const void *snap_get(const struct snap_reader *r, const char *name, uint32_t instance,
		     uint32_t *version, size_t *len);

/* snap_get() for an owner that reads versions 1 to @max_version (>= 1) of its section: NULL,
 * with a message naming the section in @err (unless @errlen is 0), when it is missing or of a
 * version newer than @max_version, e.g.
 *   snapshot: section "uart_8250" is version 3, newer than this kiln reads (1-2)
 * Sections of an instance other than 0 are named "name" instance N. */
const void *snap_get_section(const struct snap_reader *r, const char *name, uint32_t instance,
			     uint32_t max_version, uint32_t *version, size_t *len, char *err,
			     size_t errlen);

/* snap_get_section() for a section kept as one raw, fixed-size structure (a KVM UAPI struct):
 * its bytes when it is exactly @version and exactly @len bytes, else NULL with a message naming
 * the section, the version or size found and the one expected (unless @errlen is 0). An owner
 * that changes such a section bumps its version and reads the older one through
 * snap_get_section(). */
const void *snap_get_exact(const struct snap_reader *r, const char *name, uint32_t instance,
			   uint32_t version, size_t len, char *err, size_t errlen);

void snap_reader_close(struct snap_reader *r);

#endif
