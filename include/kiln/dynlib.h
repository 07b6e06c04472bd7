/* SPDX-License-Identifier: Apache-2.0 */
/* dynlib — the shared libraries kiln loads only when a VM uses what they do.
 *
 * Owns: loading a library by its soname and resolving the functions its user calls into that
 * user's table of pointers. libmicrohttpd and GnuTLS (the Firecracker API, MMDS, migration's
 * TLS) and libslirp with GLib (user-mode networking) are 4.5 MB of a kiln process's resident
 * memory and most of its start-up relocations; `kiln run` without `--net user` maps none of
 * them, so a guest that escapes into such a process finds none of their code either.
 *
 * A load maps code, which the seccomp filters forbid: each load happens before the filters
 * are installed, where the configuration first says the library will be needed. The jailer
 * copies these libraries into the jail from the executable's ELF dlopen notes (the
 * `.note.dlopen` section of the UAPI group's "ELF dlopen metadata" specification), which
 * KILN_DLOPEN_NOTE() writes.
 */
#ifndef KILN_DYNLIB_H
#define KILN_DYNLIB_H

#include <stddef.h>
#include <stdint.h>

/* Load shared library @soname (a name the dynamic loader searches for, such as
 * "libslirp.so.0") and store the address of function @names[i] in the i-th pointer of @table,
 * for i in [0, @n): @table is a struct of @n function pointers (DYNLIB_TABLE). The library
 * stays loaded for the life of the process; loading it again is cheap and fills the table
 * again. Returns 0, or -ENOENT (library or symbol missing) with @err saying which and the
 * loader's reason. Call before the seccomp filters are installed. */
int dynlib_load(const char *soname, const char *const *names, size_t n, void *table, char *err,
		size_t errlen) __attribute__((warn_unused_result));

/* The ELF note that names a library kiln may dlopen(), read by the jailer (and by packaging
 * tools that read the same notes): owner "FDO", type 0x407c0c0a, the description a JSON array
 * of one object with the feature's name, its description, its priority ("required",
 * "recommended" or "suggested") and the soname, NUL-terminated and padded to 4 bytes.
 * @id: a C identifier for the note's variable; @json: a string literal. */
#define KILN_DLOPEN_NOTE_TYPE 0x407c0c0au
#define KILN_DLOPEN_NOTE(id, json)                                                            \
	__attribute__((used, section(".note.dlopen"), aligned(4))) static const struct {       \
		uint32_t namesz, descsz, type;                                                 \
		char name[4];                                                                  \
		char desc[(sizeof(json) + 3) & ~3u];                                           \
	} id = { 4, (sizeof(json) + 3) & ~3u, KILN_DLOPEN_NOTE_TYPE, "FDO", json }

/* A library kiln may load, with the functions it calls, from an X-macro list (LIST(X)
 * expands X(function) once per function, declared by the library's header).
 * DYNLIB_LIBRARY(t, LIST, soname, feature, description, priority) defines `t`, a struct with
 * a pointer of the function's own type per function (called as t.function(...)), the names
 * and soname DYNLIB_LOAD(t, err, errlen) resolves into it with dynlib_load(), and the
 * library's dlopen note (KILN_DLOPEN_NOTE; the strings must not need JSON escapes). */
#define DYNLIB_FIELD_(f) __typeof__(f) *f;
#define DYNLIB_NAME_(f) #f,
#define DYNLIB_LIBRARY(t, LIST, soname, feature, description, priority)                       \
	static struct { LIST(DYNLIB_FIELD_) } t;                                               \
	static const char *const t##_names[] = { LIST(DYNLIB_NAME_) };                        \
	static const char t##_soname[] = soname;                                               \
	_Static_assert(sizeof(t) == sizeof(t##_names) / sizeof(t##_names[0]) * sizeof(void *), \
		       #t ": one pointer per name");                                           \
	KILN_DLOPEN_NOTE(t##_note, "[{\"feature\":\"" feature "\",\"description\":\""          \
			 description "\",\"priority\":\"" priority "\",\"soname\":[\"" soname  \
			 "\"]}]")
#define DYNLIB_LOAD(t, err, errlen) \
	dynlib_load(t##_soname, t##_names, sizeof(t##_names) / sizeof(t##_names[0]), &t, err, errlen)

#endif
