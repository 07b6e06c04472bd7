/* SPDX-License-Identifier: Apache-2.0 */
/* libs — kiln's addition to Firecracker's jail: Firecracker is one static binary, kiln links
 * shared libraries. A dynamically linked exec file gets, at their host paths inside the jail
 * and owned by root (the VMM cannot change them): its ELF interpreter, every shared library it
 * needs (DT_NEEDED, recursively), the libraries its ELF dlopen notes say it loads with the
 * priority "required" (the `.note.dlopen` notes of the UAPI group's "ELF dlopen metadata"
 * specification; kiln's, include/kiln/dynlib.h), and /etc/ld.so.cache, so the loader in the
 * jail finds each library where the host's loader finds it. See jailer.h. Copies, not links,
 * as Firecracker copies its binary: no two jailed VMMs share pages of code. 64-bit
 * little-endian ELF only (x86-64, what kiln runs on). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "jailer/jailer.h"

#define LD_CACHE "/etc/ld.so.cache"
#define LD_CACHE_MAGIC "glibc-ld.so.cache1.1" /* glibc's format since 2.32 */
#define LD_CACHE_X86_64 0x0303                /* FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 */
#define MAX_OBJECTS 128
#define MAX_PHDRS 256
#define MAX_DYN 4096
#define MAX_STRTAB (1u << 20)
#define MAX_NOTES (64u << 10)          /* bytes of one PT_NOTE segment */
#define MAX_DLOPEN 16                  /* sonames from dlopen notes */
#define DLOPEN_NOTE_TYPE 0x407c0c0au   /* owner "FDO" */

/* Where glibc's loader looks when neither a run path nor the cache names a library. */
static const char *const default_dirs[] = {
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib",
	"/usr/lib",
};

/* What the jail needs from one ELF object. */
struct elf_deps {
	uint16_t machine;                /* e_machine */
	char interp[PATH_MAX];           /* PT_INTERP; "" when none */
	char *strtab;                    /* the dynamic string table (allocated), NULL: static */
	size_t strsz;
	size_t needed[256], n_needed;    /* DT_NEEDED names: offsets into strtab */
	const char *runpath;             /* DT_RUNPATH, else DT_RPATH; "" when none */
	char dlopen[MAX_DLOPEN][256];    /* sonames its dlopen notes require */
	size_t n_dlopen;
};

/* The host's ld.so.cache, read once (NULL data: none, or a format not read here). */
struct ld_cache {
	char *data;
	size_t len;
};

static int bad_elf(const char *path, const char *why)
{
	return jail_fail("Failed to read the shared libraries of %s: %s", path, why);
}

static bool read_at(int fd, void *buf, size_t len, uint64_t off)
{
	return pread(fd, buf, len, (off_t)off) == (ssize_t)len;
}

/* The file offset of virtual address @addr, through the PT_LOAD segments; 0 when none. */
static uint64_t vaddr_offset(const Elf64_Phdr *ph, size_t n, uint64_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && addr >= ph[i].p_vaddr &&
		    addr - ph[i].p_vaddr < ph[i].p_filesz)
			return ph[i].p_offset + (addr - ph[i].p_vaddr);
	return 0;
}

static int read_dynamic(int fd, const char *path, const Elf64_Phdr *ph, size_t n,
			const Elf64_Phdr *dyn_ph, struct elf_deps *d)
{
	size_t count = dyn_ph->p_filesz / sizeof(Elf64_Dyn);
	Elf64_Dyn *dyn = calloc(count ? count : 1, sizeof(*dyn));
	uint64_t strtab = 0, runpath = UINT64_MAX, rpath = UINT64_MAX, off;

	if (count > MAX_DYN || !dyn || !read_at(fd, dyn, count * sizeof(*dyn), dyn_ph->p_offset)) {
		free(dyn);
		return bad_elf(path, "unreadable dynamic section");
	}
	for (size_t i = 0; i < count && dyn[i].d_tag != DT_NULL; i++) {
		uint64_t v = dyn[i].d_un.d_val;

		if (dyn[i].d_tag == DT_NEEDED && d->n_needed < sizeof(d->needed) / sizeof(d->needed[0]))
			d->needed[d->n_needed++] = v;
		else if (dyn[i].d_tag == DT_STRTAB)
			strtab = v;
		else if (dyn[i].d_tag == DT_STRSZ)
			d->strsz = v;
		else if (dyn[i].d_tag == DT_RUNPATH)
			runpath = v;
		else if (dyn[i].d_tag == DT_RPATH)
			rpath = v;
	}
	free(dyn);
	off = vaddr_offset(ph, n, strtab);
	if (!off || !d->strsz || d->strsz > MAX_STRTAB || !(d->strtab = malloc(d->strsz + 1)) ||
	    !read_at(fd, d->strtab, d->strsz, off))
		return bad_elf(path, "unreadable dynamic string table");
	d->strtab[d->strsz] = 0;
	for (size_t i = 0; i < d->n_needed; i++)
		if (d->needed[i] >= d->strsz)
			return bad_elf(path, "a DT_NEEDED name outside the string table");
	runpath = runpath != UINT64_MAX ? runpath : rpath;
	d->runpath = runpath < d->strsz ? d->strtab + runpath : "";
	return 0;
}

/* Add the sonames of one dlopen note's description (@json, @len bytes: a JSON array of
 * objects with "soname", an array of names, and "priority", "required" or not) to @d. */
static int read_dlopen_note(const char *path, const char *json, size_t len, struct elf_deps *d)
{
	json_error_t je;
	json_t *doc = json_loadb(json, strnlen(json, len), JSON_REJECT_DUPLICATES, &je), *entry;
	size_t i;

	if (!json_is_array(doc)) {
		json_decref(doc);
		return bad_elf(path, "a dlopen note that is not a JSON array");
	}
	json_array_foreach(doc, i, entry) {
		json_t *names = json_object_get(entry, "soname"), *name;
		const char *prio = json_string_value(json_object_get(entry, "priority"));
		size_t k;

		if (!json_is_array(names)) {
			json_decref(doc);
			return bad_elf(path, "a dlopen note without a \"soname\" array");
		}
		if (!prio || strcmp(prio, "required"))
			continue; /* a feature the jailed VMM can do without */
		json_array_foreach(names, k, name) {
			const char *so = json_string_value(name);

			if (!so || !*so || strlen(so) >= sizeof(d->dlopen[0]) ||
			    d->n_dlopen == MAX_DLOPEN) {
				json_decref(doc);
				return bad_elf(path, "a dlopen note with a bad soname, or too many");
			}
			snprintf(d->dlopen[d->n_dlopen++], sizeof(d->dlopen[0]), "%s", so);
		}
	}
	json_decref(doc);
	return 0;
}

/* The dlopen notes in PT_NOTE segment @ph of @path (ELF gABI "Note Section": each note a
 * header, its owner's name and its description; the description and the next note start at
 * the segment's alignment, 4 or 8 bytes). */
static int read_notes(int fd, const char *path, const Elf64_Phdr *ph, struct elf_deps *d)
{
	uint64_t align = ph->p_align == 8 ? 8 : 4, pos = 0;
	char *buf = NULL;
	int ret = 0;

	if (ph->p_filesz > MAX_NOTES || !(buf = malloc(ph->p_filesz + 1)) ||
	    !read_at(fd, buf, ph->p_filesz, ph->p_offset)) {
		free(buf);
		return bad_elf(path, "unreadable PT_NOTE segment");
	}
	while (!ret && ph->p_filesz - pos >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name, desc, end;

		memcpy(&nh, buf + pos, sizeof(nh));
		name = pos + sizeof(nh);
		desc = (name + nh.n_namesz + align - 1) & ~(align - 1);
		end = (desc + nh.n_descsz + align - 1) & ~(align - 1);
		if (desc > ph->p_filesz || nh.n_descsz > ph->p_filesz - desc) {
			ret = bad_elf(path, "a note that runs past its PT_NOTE segment");
			break;
		}
		if (nh.n_type == DLOPEN_NOTE_TYPE && nh.n_namesz == 4 && !memcmp(buf + name, "FDO", 4))
			ret = read_dlopen_note(path, buf + desc, nh.n_descsz, d);
		pos = end;
	}
	free(buf);
	return ret;
}

/* Read @path's interpreter and dynamic dependencies into @d. Returns 0, 1 when @path is not
 * an ELF file, or -1 (printed). */
static int elf_read(const char *path, struct elf_deps *d)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph[MAX_PHDRS];
	const Elf64_Phdr *dyn = NULL;
	int ret = -1, fd = open(path, O_RDONLY | O_CLOEXEC);

	memset(d, 0, sizeof(*d));
	d->runpath = "";
	if (fd < 0)
		return jail_fail_os(errno, "Failed to open %s", path);
	if (!read_at(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG)) {
		ret = 1;
		goto out;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > MAX_PHDRS ||
	    !read_at(fd, ph, eh.e_phnum * sizeof(Elf64_Phdr), eh.e_phoff)) {
		bad_elf(path, "not a 64-bit little-endian ELF file");
		goto out;
	}
	d->machine = eh.e_machine;
	for (size_t i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type == PT_DYNAMIC)
			dyn = &ph[i];
		if (ph[i].p_type == PT_NOTE && read_notes(fd, path, &ph[i], d))
			goto out;
		if (ph[i].p_type != PT_INTERP)
			continue;
		if (ph[i].p_filesz >= sizeof(d->interp) ||
		    !read_at(fd, d->interp, ph[i].p_filesz, ph[i].p_offset) || d->interp[0] != '/') {
			bad_elf(path, "unreadable PT_INTERP");
			goto out;
		}
	}
	ret = dyn ? read_dynamic(fd, path, ph, eh.e_phnum, dyn, d) : 0;
out:
	close(fd);
	return ret;
}

static void cache_load(struct ld_cache *c)
{
	int fd = open(LD_CACHE, O_RDONLY | O_CLOEXEC);
	off_t len = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);

	c->data = NULL;
	if (len > 48 && len < (64 << 20) && (c->data = malloc((size_t)len + 1)) &&
	    (!read_at(fd, c->data, (size_t)len, 0) || memcmp(c->data, LD_CACHE_MAGIC, 20))) {
		free(c->data);
		c->data = NULL;
	}
	if (c->data) {
		c->len = (size_t)len;
		c->data[len] = 0;
	}
	if (fd >= 0)
		close(fd);
}

/* glibc's cache: a 48-byte header (magic, entry count), then 24-byte entries (flags, name
 * and path as offsets from the start of the file, hwcap); strings after them. */
static const char *cache_lookup(const struct ld_cache *c, const char *name)
{
	uint32_t n;

	if (!c->data)
		return NULL;
	memcpy(&n, c->data + 20, sizeof(n));
	for (uint32_t i = 0; i < n && 48 + (i + 1) * (size_t)24 <= c->len; i++) {
		const char *e = c->data + 48 + i * (size_t)24;
		int32_t flags;
		uint32_t key, value;
		uint64_t hwcap;

		memcpy(&flags, e, 4);
		memcpy(&key, e + 4, 4);
		memcpy(&value, e + 8, 4);
		memcpy(&hwcap, e + 16, 8);
		if (flags == LD_CACHE_X86_64 && !hwcap && key < c->len && value < c->len &&
		    !strcmp(c->data + key, name))
			return c->data + value;
	}
	return NULL;
}

/* Whether @path is a 64-bit ELF object for @machine (the loader skips others). */
static bool elf_fits(const char *path, uint16_t machine)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && read_at(fd, &eh, sizeof(eh), 0) && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
		  eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_machine == machine;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Find library @name as the loader would for an object with run path @runpath: each run path
 * directory, the cache, the default directories. Writes its path to @out (PATH_MAX). */
static bool find_lib(const char *name, const char *runpath, const struct ld_cache *c,
		     uint16_t machine, char *out)
{
	const char *cached = cache_lookup(c, name);

	if (strchr(name, '/'))
		return snprintf(out, PATH_MAX, "%s", name) < PATH_MAX && elf_fits(out, machine);
	for (const char *p = runpath; *p; p += strcspn(p, ":"), p += *p == ':') {
		int n = (int)strcspn(p, ":");

		if (n && snprintf(out, PATH_MAX, "%.*s/%s", n, p, name) < PATH_MAX &&
		    elf_fits(out, machine))
			return true;
	}
	if (cached && snprintf(out, PATH_MAX, "%s", cached) < PATH_MAX && elf_fits(out, machine))
		return true;
	for (size_t i = 0; i < sizeof(default_dirs) / sizeof(default_dirs[0]); i++)
		if (!jail_path_join(out, default_dirs[i], name) && elf_fits(out, machine))
			return true;
	return false;
}

/* Copy host file @path to the same path inside the jail, owned by root. */
static int copy_in(const struct jail *j, const char *path)
{
	char dst[PATH_MAX], *slash;
	int err;

	if (snprintf(dst, sizeof(dst), "%s%s", j->chroot_dir, path) >= (int)sizeof(dst))
		return jail_fail_os(ENAMETOOLONG, "Failed to copy %s to %s%s", path, j->chroot_dir,
				    path);
	slash = strrchr(dst, '/');
	*slash = 0;
	err = jail_mkdir_all(dst);
	if (err)
		return jail_fail_os(err, "Failed to create directory %s", dst);
	*slash = '/';
	return jail_copy_file(path, dst, (uid_t)-1, (gid_t)-1);
}

static bool listed(char (*list)[PATH_MAX], size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], path))
			return true;
	return false;
}

int jail_copy_libs(const struct jail *j)
{
	char (*objects)[PATH_MAX];  /* copied in (the exec file first), each read in turn */
	struct ld_cache cache;
	struct elf_deps d;
	uint16_t machine;
	size_t n = 2;
	int ret = elf_read(j->exec_path, &d);

	if (ret || !d.interp[0])
		return ret < 0 ? -1 : 0;   /* not ELF, or static: nothing to add */
	machine = d.machine;
	objects = calloc(MAX_OBJECTS, sizeof(*objects));
	if (!objects)
		return jail_fail_os(ENOMEM, "Failed to read the shared libraries of %s", j->exec_path);
	snprintf(objects[0], PATH_MAX, "%s", j->exec_path);
	snprintf(objects[1], PATH_MAX, "%s", d.interp);
	cache_load(&cache);
	if (copy_in(j, d.interp) || (cache.data && copy_in(j, LD_CACHE)))
		return -1;
	for (size_t next = 0; next < n; next++) {
		if (next && (ret = elf_read(objects[next], &d)))
			return ret < 0 ? -1 : bad_elf(objects[next], "not an ELF file");
		for (size_t i = 0; i < d.n_needed + d.n_dlopen; i++) {
			const char *name = i < d.n_needed ? d.strtab + d.needed[i] :
							    d.dlopen[i - d.n_needed];
			char path[PATH_MAX];

			if (!find_lib(name, d.runpath, &cache, machine, path))
				return jail_fail("Failed to find the shared library %s needed by %s",
						 name, objects[next]);
			if (listed(objects, n, path))
				continue;
			if (n == MAX_OBJECTS)
				return bad_elf(j->exec_path, "more than 128 shared libraries");
			if (copy_in(j, path))
				return -1;
			snprintf(objects[n++], PATH_MAX, "%s", path);
		}
		free(d.strtab);
	}
	free(objects);
	free(cache.data);
	return 0;
}
