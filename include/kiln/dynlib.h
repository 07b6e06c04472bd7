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

/* One function to resolve: its name in the library and where its address goes. */
struct dynlib_sym {
	const char *name;
	void **slot;
};

/* Load shared library @soname (a name the dynamic loader searches for, such as
 * "libslirp.so.0") and set every slot of @syms[0..@n) to its symbol's address. The library
 * stays loaded for the life of the process; loading it again is cheap and resolves the slots
 * again. Returns 0, or -ENOENT (library or symbol missing) with @err saying which and the
 * loader's reason. Call before the seccomp filters are installed. */
int dynlib_load(const char *soname, const struct dynlib_sym *syms, size_t n, char *err,
		size_t errlen) __attribute__((warn_unused_result));

/* The ELF note that names a library kiln may dlopen(), read by the jailer (and by packaging
 * tools that read the same notes): owner "FDO", type 0x407c0c0a, the description a JSON array
 * of one object with the feature's name, its description and the soname, NUL-terminated and
 * padded to 4 bytes. @id: a C identifier for the note's variable; @json: a string literal. */
#define KILN_DLOPEN_NOTE_TYPE 0x407c0c0au
#define KILN_DLOPEN_NOTE(id, json)                                                            \
	__attribute__((used, section(".note.dlopen"), aligned(4))) static const struct {       \
		uint32_t namesz, descsz, type;                                                 \
		char name[4];                                                                  \
		char desc[(sizeof(json) + 3) & ~3u];                                           \
	} id = { 4, (sizeof(json) + 3) & ~3u, KILN_DLOPEN_NOTE_TYPE, "FDO", json }

#endif
