/* SPDX-License-Identifier: Apache-2.0 */
/* fc — Firecracker compatibility: its JSON configuration model, its REST API server and its
 * metrics.
 *
 * Owns: the mapping from Firecracker's FullVmConfiguration (swagger/firecracker.yaml: the keys
 * "boot-source", "machine-config", "cpu-config", "drives", "network-interfaces", "entropy",
 * "logger", "metrics", ...) to a struct vm_config, with Firecracker's defaults and rules; the
 * API server on a Unix socket (libmicrohttpd, served from kiln's event loop) and the pre-boot
 * / post-boot rules of its endpoints; the metrics file. The command line (src/cli/firecracker.c) drives both.
 */
#ifndef KILN_FC_H
#define KILN_FC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

#include "kiln/log.h"
#include "kiln/loop.h"
#include "kiln/virtio_balloon.h"
#include "kiln/virtio_blk.h"
#include "kiln/virtio_net.h"
#include "kiln/virtio_rng.h"
#include "kiln/virtio_vsock.h"
#include "kiln/vm.h"

#define FC_DEFAULT_MEM_MIB 128
#define MMDS_DEFAULT_ADDR "169.254.169.254"
#define FC_MAX_VCPUS 32
/* Firecracker's MachineConfigError::InvalidMemorySize (vmm_config/machine_config.rs). */
#define FC_ERR_MEM_SIZE "The memory size (MiB) is either 0, or not a multiple of the configured " \
			"page size."
/* Firecracker's MachineConfigError::InvalidVcpuCount (vmm_config/machine_config.rs). */
#define FC_ERR_VCPUS "The number of vCPUs must be greater than 0, less than 32 and must be 1 " \
		     "or an even number if SMT is enabled."

/* A configuration parsed from a FullVmConfiguration document: the VM's configuration and the
 * device configurations its device list points at (drives with the root device first, NICs,
 * vsock, balloon, entropy). The strings point into the document, which must outlive it. */
struct fc_config {
	struct vm_config cfg;
	struct disk_config disk[VM_MAX_VIRTIO];
	struct net_config net[VM_MAX_VIRTIO];
	struct vsock_config vsock;
	struct balloon_config balloon;
	struct rng_config rng;
	unsigned nr_disks, nr_nets;
	char *cmdline;             /* owned: boot_args with root= appended, or NULL */
	bool level_set;
	enum log_level level;      /* "logger": "level", when level_set */
	const char *log_path;      /* "logger": "log_path", or NULL */
	int log_show_level, log_show_origin; /* "logger": true 1, false 0, absent -1 */
	const char *log_module;    /* "logger": "module", or NULL */
	const char *metrics_path;  /* "metrics": "metrics_path", or NULL */
	unsigned mmds_nics;        /* "mmds-config": bit i set when net[i] reaches MMDS */
	bool mmds_v2, mmds_imds_compat;
	uint32_t mmds_ip;          /* network order */
	struct x86_template *cpu_config; /* owned: "cpu-config" parsed (cfg.custom_template), or
					    NULL */
};

/* Parse document @root into @out. Without @need_boot_source a missing "boot-source" is fine
 * (the API checks a configuration before InstanceStart as it grows). Unknown keys, wrong
 * types, values out of range and keys kiln does not implement yet are refused. Returns 0, or
 * -EINVAL with a message naming the key and the value in @err; release @out with
 * fc_config_release() either way. */
int fc_config_parse(json_t *root, bool need_boot_source, struct fc_config *out, char *err,
		    size_t errlen) __attribute__((warn_unused_result));

void fc_config_release(struct fc_config *c);

/* --config-file's "cpu-config" may name a file holding the custom CPU template (Firecracker's
 * CustomCpuTemplateOrPath): when it is a string, read that file (JSON) and put the template
 * itself in @root, so that the document (and a snapshot of the VM) carries the template, not a
 * path. Anything else is left to fc_config_parse(). Returns 0, or -EINVAL with a message
 * naming the path in @err (the file cannot be read, is not JSON, is not an object). */
int fc_config_read_cpu_config(json_t *root, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* A RateLimiter object (null or absent: no limit) into @out: "bandwidth" and "ops", each null
 * or a TokenBucket {"size", "one_time_burst", "refill_time"}, non-negative integers. @where
 * prefixes messages. Returns 0, or -EINVAL with a message in @err. */
int fc_parse_rate_limit(json_t *o, const char *where, struct rate_limit *out, char *err,
			size_t errlen) __attribute__((warn_unused_result));

/* Open @path for Firecracker's log or metrics lines as Firecracker 1.16 does: created if
 * missing, read-write and non-blocking so that a named pipe nobody reads yet opens and never
 * blocks a writer (lines it has no room for are lost). Returns the descriptor or -errno. */
int fc_open_output(const char *path);

/* Firecracker's log level names (Error, Warning, Info, Debug, Trace, Off; any case). Returns 0
 * or -EINVAL. */
int fc_parse_level(const char *text, enum log_level *level);

/* Whether @id is 1..@max characters of A-Z a-z 0-9 and the characters in @extra. */
bool fc_valid_id(const char *id, size_t max, const char *extra);

/* One key of a JSON object for fc_unpack(): its type ('s' string, 'b' boolean, 'I' integer,
 * 'o' any value) and where the value goes (const char **, int *, json_int_t *, json_t **). */
struct fc_field {
	const char *key;
	char type;
	bool required;
	void *out;
};

/* Unpack object @o into @fields: every key known, required ones present, each of its type
 * (null counts as absent for optional fields). Errors name the key, prefixed by @where.
 * Returns 0 or -EINVAL. */
int fc_unpack(json_t *o, const char *where, const struct fc_field *fields, unsigned n, char *err,
	      size_t errlen);

#define FC_FIELDS(...) ((const struct fc_field[]){ __VA_ARGS__ }), \
	sizeof((const struct fc_field[]){ __VA_ARGS__ }) / sizeof(struct fc_field)

/* Write "@fmt ..." into @err; returns -EINVAL. */
int fc_error(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

struct fc_api;

struct fc_api_options {
	const char *sock_path;    /* the API socket (must not exist), or NULL for none (--no-api) */
	const char *id;           /* the instance id GET / reports */
	json_t *doc;              /* the configuration so far: --config-file's, or an empty object;
				     fc_api_start() takes the reference */
	const char *metrics_path; /* --metrics-path, or NULL */
	struct loop *loop;        /* where the server and the metrics timer run */
	struct timespec start, start_cpu; /* when kiln started (CLOCK_MONOTONIC, process CPU), or
					     its jailer (--start-time-us, --start-time-cpu-us) */
	uint64_t parent_cpu_us;   /* --parent-cpu-time-us: CPU time the jailer's parent spent */
	size_t http_max_body;     /* --http-api-max-payload-size (bytes), 0: Firecracker's 51200 */
	size_t mmds_limit;        /* --mmds-size-limit (bytes), 0: the same as http_max_body */
	json_t *metadata;         /* --metadata: the MMDS store to start with (borrowed), or NULL */
	bool pci;                 /* --enable-pci: devices on virtio-pci, not virtio-mmio */
};

/* Load libmicrohttpd, which the API server and MMDS need (see kiln/dynlib.h): before the
 * seccomp filters are installed and fc_api_start(). Returns 0, or -ENOENT with the loader's
 * reason in @err. */
int http_library_load(char *err, size_t errlen) __attribute__((warn_unused_result));

/* Start the controller of a Firecracker-style VM: the configuration, the metrics and, with a
 * socket path, the API server on it. Returns 0 with *out set, or -errno with a message in
 * @err. */
int fc_api_start(const struct fc_api_options *o, struct fc_api **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* InstanceStart: build the VM from the configuration so far (it runs once the caller calls
 * vm_run()). Returns 0, or -EINVAL (the configuration is wrong) or -EIO (the host failed) with
 * Firecracker's "Start microvm error: ..." message in @err. */
int fc_api_instance_start(struct fc_api *api, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* PUT /snapshot/load (Firecracker's LoadSnapshotParams). */
struct fc_snapshot_load {
	const char *snapshot_path;
	uint8_t *image;             /* instead of the file: an image in memory (a migration's;
				       taken over), image_len bytes */
	size_t image_len;
	struct vm_mem_backend mem;  /* "mem_backend" (or the older "mem_file_path": File) */
	bool track_dirty_pages;     /* "track_dirty_pages" ("enable_diff_snapshots") */
	bool resume_vm;
	bool migration;             /* the image is a migration stream's, sent by a peer: its
				       configuration is checked against host_config, which
				       provides every host resource (fc_config_incoming()) */
	json_t *host_config;        /* with migration: the destination operator's configuration
				       (--config-file; borrowed), or NULL */
	json_t *network_overrides;  /* [{"iface_id", "host_dev_name"}] (checked; borrowed): the
				       taps the restored NICs use instead of the snapshot's, or NULL */
	const char *vsock_uds;      /* "vsock_override": "uds_path", or NULL */
	bool clock_realtime;        /* the guest's clock counts the time since the snapshot */
};

/* Build the VM of a snapshot (made by PUT /snapshot/create) before anything was configured:
 * its configuration comes from the snapshot (for a migration, as fc_config_incoming() says:
 * the message then starts "Incoming migration: " rather than "Load snapshot error: "), its
 * state and memory as vm_restore() says; with
 * resume_vm it runs at once, else it waits paused for PATCH /vm. Returns 0, or -EINVAL (the
 * request, the snapshot or the memory is wrong; nothing was made) or -EIO, with Firecracker's
 * "Load snapshot error: ..." message in @err. */
int fc_api_snapshot_load(struct fc_api *api, const struct fc_snapshot_load *p, char *err,
			 size_t errlen) __attribute__((warn_unused_result));

/* A live migration's destination, once the stream's configuration @config (@len bytes of
 * JSON, the source's; untrusted) has arrived and before its memory has: make the VM it
 * describes with this host's resources (p->host_config, as fc_config_incoming() says) and p->mem
 * without its vCPUs and state (vm_restore_prepare()), so that fc_api_snapshot_load() of the
 * stream's image later only finishes it and the downtime does not include building the
 * machine. A VM with a qcow2 disk is not prepared (its image's tables change until the source
 * pauses) and loads whole later. Returns 0, or -errno with an "Incoming migration: " message
 * in @err (nothing made). */
int fc_api_migration_prepare(struct fc_api *api, const struct fc_snapshot_load *p,
			     const char *config, size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Drop what fc_api_migration_prepare() made (the stream failed afterwards); nothing when it
 * made nothing. */
void fc_api_migration_drop(struct fc_api *api);

/* The VM InstanceStart created, or NULL while none. */
struct vm *fc_api_vm(struct fc_api *api);

/* Stop the server, remove its socket, close the metrics, release the configuration; the VM is
 * the caller's (destroy it first). */
void fc_api_stop(struct fc_api *api);

#endif
