/* SPDX-License-Identifier: Apache-2.0 */
/* vm — one KVM virtual machine: its configuration, creation, run loop and teardown.
 *
 * Owns: the /dev/kvm and VM file descriptors, guest memory slots, the in-kernel irqchip, PIT
 * and GSI routing, the devices, the vCPU threads and the stop protocol. main() builds a
 * struct vm_config, vm_create() validates and prepares everything before any vCPU exists, and
 * vm_run() runs the guest until it stops.
 */
#ifndef KILN_VM_H
#define KILN_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/devices.h"
#include "kiln/error.h"
#include "kiln/loop.h"
#include "kiln/vm_config.h"

struct vm;

/* Build the VM described by @cfg: read kernel and initrd, check limits against KVM and the host,
 * lay out memory, devices, ACPI tables and boot state, create vCPUs. Nothing runs yet. The
 * devices' descriptors go on @loop (the caller's; it must outlive the VM, as must @cfg's
 * strings and device configurations), whose thread is the one that calls vm_run(). Returns 0
 * with *out set, or -errno with @e set: a message naming the object and the value, the kind
 * (the user's input, or the host), and e->input the configuration input at fault (enum
 * vm_input) so the front end can word it as its own option. */
int vm_create(const struct vm_config *cfg, struct loop *loop, struct vm **out, struct error *e)
	__attribute__((warn_unused_result));

/* Where a restored VM's guest memory comes from (Firecracker's mem_backend). */
struct vm_mem_backend {
	enum { VM_MEM_FILE, VM_MEM_UFFD, VM_MEM_SHARED_FD } type;
	int fd;                      /* VM_MEM_SHARED_FD: memory received by vm_migrate_receive() */
	/* File: the memory file, mapped MAP_PRIVATE (pages load on first touch). Uffd: the Unix
	 * socket of a page-fault handler, which receives a userfaultfd for the guest's memory and
	 * its layout (Firecracker docs/snapshotting/handling-page-faults-on-snapshot-resume.md). */
	const char *path;
};

/* Build the VM of snapshot @snap as vm_create() would from @cfg (the configuration the
 * snapshot was made with), then give it the guest memory of @mem and every vCPU's, interrupt
 * controller's, timer's and device's state from @snap. The CPUID the guest was shown must be
 * available here, the memory file exactly cfg->mem_bytes long. The VM is paused: vm_run()
 * starts its vCPU threads parked until vm_resume(). Nothing is left behind on failure.
 * Returns 0 with *out set, or -errno with @e set as for vm_create(). */
struct snap_reader;
int vm_restore(const struct vm_config *cfg, const struct snap_reader *snap,
	       const struct vm_mem_backend *mem, struct loop *loop, struct vm **out,
	       struct error *e) __attribute__((warn_unused_result));

/* vm_restore() in two halves, for a live migration's destination, which makes the machine
 * while the source still pre-copies memory: vm_restore_prepare() builds what @cfg describes
 * (memory from @mem, the KVM VM and its interrupt controllers, every device with its host
 * resources opened, the vCPUs made) but sets no state; vm_restore_finish() then gives the vCPUs
 * the CPUID @snap records and loads every state from it. Between the two nothing runs. Each returns
 * 0 or -errno with @e set as vm_restore(); after a failure of either, vm_destroy() the VM. */
int vm_restore_prepare(const struct vm_config *cfg, const struct vm_mem_backend *mem,
		       struct loop *loop, struct vm **out, struct error *e)
	__attribute__((warn_unused_result));
int vm_restore_finish(struct vm *vm, const struct snap_reader *snap, struct error *e)
	__attribute__((warn_unused_result));

/* What vm_snapshot() writes. */
struct vm_snapshot_params {
	const char *state_path;      /* the snapshot file (kiln's format, include/kiln/snapshot.h) */
	const char *mem_path;        /* guest memory, byte for byte, sparse where it is zero */
	bool diff;                   /* only the pages dirtied since the last snapshot (needs
					track_dirty_pages); the rest of the file is holes */
	const void *config;          /* the caller's description of the VM's configuration, */
	size_t config_len;           /* stored as section "config" for the restoring side */
};

/* Snapshot the paused VM: vCPUs, irqchip, PIT, kvmclock, GSI routes, every device (requests
 * in flight finish first) into p->state_path, guest memory into p->mem_path. Event loop
 * thread. Returns 0, -EBUSY (not paused), -EINVAL (diff without dirty tracking) or -errno,
 * with a message in @err. */
int vm_snapshot(struct vm *vm, const struct vm_snapshot_params *p, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* An outgoing live migration's progress. */
struct vm_migration_status {
	enum { VM_MIGRATION_NONE, VM_MIGRATION_ACTIVE, VM_MIGRATION_COMPLETED,
	       VM_MIGRATION_FAILED } state;
	unsigned rounds;             /* memory passes, the stop-and-copy one included */
	uint64_t bytes;              /* guest memory sent */
	uint64_t last_round_pages;
	uint64_t total_us, downtime_us; /* once completed: start to end, pause to destination's OK */
	char error[256];             /* once failed */
};

/* Migrate the running VM to the kiln at @url ("tcp:HOST:PORT", see mig_connect() and
 * vm_migrate_receive()) over a channel secured with @creds (the source's, taken over: freed
 * on failure too): resolves @url and starts connecting now (a malformed or unresolvable
 * destination is -EINVAL with a message), then a thread waits for the connection and makes
 * the TLS handshake (a refused connection, none within MIG_IO_TIMEOUT_S, or a failed
 * handshake fails the migration, see vm_migrate_status()), pre-copies memory in rounds with dirty logging while the guest runs,
 * pauses it, sends the last pages and the state (@config as the snapshot's "config" section)
 * and, once the destination runs the guest, stops this VM with VM_STOP_MIGRATED; if the
 * destination fails, the guest resumes here. Event loop thread. Returns 0 or -errno. */
struct mig_creds;
int vm_migrate_start(struct vm *vm, const char *url, struct mig_creds *creds,
		     const void *config, size_t config_len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Whether an outgoing migration is under way (pause, resume and snapshots wait for its end). */
bool vm_migrating(struct vm *vm);

/* A copy of the outgoing migration's progress (VM_MIGRATION_NONE when none was started). */
void vm_migrate_status(struct vm *vm, struct vm_migration_status *out);

/* What the destination of a migration received. */
struct mig_channel;
struct vm_incoming {
	int memfd;                   /* guest memory (restore it as VM_MEM_SHARED_FD) */
	uint64_t mem_bytes;
	uint8_t *state;              /* the snapshot image (malloc'd): the peer's, check it all */
	size_t state_len;
	struct mig_channel *ch;      /* the source, waiting for the answer */
	uint8_t *map;                /* memfd as the pages were received into it: unmapped by
				      * vm_incoming_release() after the answer, since tearing down
				      * a mapping of the whole guest would lengthen the downtime */
};

/* Take one source's migration stream from @ch (connected and secured, see
 * include/kiln/mig_channel.h; taken over): guest memory into a memfd sized as the source says
 * (at most this host's RAM) and the paused VM's snapshot image. When the source sends its
 * configuration first (@config, @len bytes, untrusted), @prepare (may be NULL) gets it with
 * in->memfd and in->mem_bytes set, before any page: the caller makes the machine while the
 * source pre-copies (vm_restore_prepare()); a failure it returns (-errno, message in @err)
 * ends this call once the stream has, as a failed restore would. Every record is checked: a
 * malformed one ends the stream. Blocks until the stream ends. Returns 0, or -errno with a
 * message in @err (the source told 'F', nothing kept). */
int vm_migrate_receive(struct mig_channel *ch, struct vm_incoming *in,
		       int (*prepare)(void *opaque, const struct vm_incoming *in,
				      const char *config, size_t len, char *err, size_t errlen),
		       void *opaque, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Tell the source whether the guest runs here now (@ok: it ends; else it resumes) and release
 * what vm_migrate_receive() kept, the channel included (a restored VM keeps its own mapping of
 * the memfd). Set in->state to NULL first when the image was handed to snap_reader_take(). */
void vm_incoming_release(struct vm_incoming *in, bool ok);

/* Run the guest on one thread per vCPU while the calling thread serves the console, signals
 * and the loop. Returns why the guest stopped. */
enum vm_stop_reason vm_run(struct vm *vm);

/* The signal number that stopped the VM when vm_run() returned VM_STOP_SIGNAL, else 0. */
int vm_stop_signal(const struct vm *vm);

/* The exit status the guest chose when vm_run() returned VM_STOP_GUEST_EXIT (isa-debug-exit:
 * (value << 1) | 1, the shell sees its low 8 bits), else 0. */
unsigned vm_guest_exit_status(const struct vm *vm);

/* The device of class @cls whose configuration's id is @id (with @id NULL: the first device of
 * @cls), as its class's create() returned it (for the class's own functions, e.g.
 * virtio_blk_replace()), or NULL when the VM (NULL: none yet) has none. Any thread; the VM
 * owns it. */
void *vm_device_find(struct vm *vm, const struct device_class *cls, const char *id);

/* One configured device of a VM, for front ends that report on every device (metrics). */
struct vm_device_info {
	const struct device_class *cls;
	const char *id;            /* the configuration's id, or NULL */
	unsigned index;            /* among the devices of its class, in configuration order */
	void *state;               /* as vm_device_find() */
};

/* The VM's devices in creation order (the PC's platform devices, then the configured ones),
 * up to @max into @out; returns how many the VM has. Any thread. */
unsigned vm_devices(struct vm *vm, struct vm_device_info *out, unsigned max);

/* Type Ctrl+Alt+Del on the guest's PS/2 keyboard (Firecracker's SendCtrlAltDel; a Linux guest
 * sees it when its i8042 driver is bound, e.g. with i8042.nopnp). Any thread. Returns 0, or
 * -ENOSPC when the guest has not read the previous keys. */
int vm_send_ctrl_alt_del(struct vm *vm) __attribute__((warn_unused_result));

/* Keep every vCPU out of KVM_RUN until vm_resume() (Firecracker's PATCH /vm "Paused"); devices
 * and the loop keep running. Event loop thread. Returns 0 once every started vCPU has left
 * KVM_RUN, or -ETIMEDOUT if one has not within 2 s (the VM still counts as paused). */
int vm_pause(struct vm *vm) __attribute__((warn_unused_result));

/* Let the vCPUs run again. Event loop thread. */
void vm_resume(struct vm *vm);

/* Whether vm_pause() was called without vm_resume() since. */
bool vm_is_paused(struct vm *vm);

/* Stop and release everything vm_create() made. */
void vm_destroy(struct vm *vm);

#endif
