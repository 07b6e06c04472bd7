/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the Firecracker API's router and handlers (src/fc/router.c and the endpoint
 * files), without KVM and without a socket: requests go to fc_api_handle() as the HTTP layer
 * hands them over, against a controller made by fc_api_start() with no socket.
 *
 * One table of requests, each with the document (and MMDS store) it meets and what it must
 * get: the status and the exact fault message (or a distinctive part of it, or of a 200's
 * body). A refused request must change nothing (GET /vm/config and GET /mmds identical before
 * and after) and every request is counted in the metrics under its route's name. Rows B run
 * the router alone with a VM taken as started (fc_route_request is pure): the post-boot
 * refusals, and the routes a started VM lets through to handlers that need the VM (those are
 * the integration tests' part). Rows H run a post-boot route's handler alone, without a VM,
 * for the checks it makes before it touches the VM. Every route of the table appears in both
 * states, and the table itself (paths, boot rules, metrics names) is pinned.
 *
 * In bodies, documents and JSON parts ' stands for "; @TMP@ is the test's directory (with
 * files kernel, disk, metrics, log and snapshots); @BIG@ 60000 bytes of a JSON string;
 * @FOREIGN@ a static CPU template for the other vendor's CPUs than this host's. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fc/fc_internal.h"
#include "kiln/mig_channel.h"
#include "kiln/fc.h"
#include "kiln/loop.h"
#include "kiln/snapshot.h"
#include "kiln/x86.h"

#define PRE_BOOT "The requested operation is not supported before starting the microVM."
#define POST_BOOT "The requested operation is not supported after starting the microVM."
#define DESER "An error occurred when deserializing the json body of a request: "
#define BAD_ID "API Resource IDs can only contain alphanumeric characters and underscores."
#define NOT_IMPL "not implemented by kiln yet (leave it out or null)"
#define A8 "aaaaaaaa"
#define A64 A8 A8 A8 A8 A8 A8 A8 A8

#define ROOT_DRIVE "{'drive_id': 'rootfs', 'path_on_host': '@TMP@/disk', 'is_root_device': true}"
#define DRIVE(id) "{'drive_id': '" id "', 'path_on_host': '@TMP@/disk', 'is_root_device': false}"
/* As GET /vm/config shows them: every key, Firecracker's defaults and order. */
#define DRIVE_C_RO(id, root, ro) "{'drive_id':'" id "','partuuid':null,'is_root_device':" root "," \
	"'cache_type':'Unsafe','is_read_only':" ro ",'path_on_host':'@TMP@/disk','rate_limiter':null," \
	"'io_engine':'Sync','socket':null}"
#define ROOT_DRIVE_C DRIVE_C_RO("rootfs", "true", "false")
#define DRIVE_C(id) DRIVE_C_RO(id, "false", "false")
#define EIGHT_DRIVES "{'drives': [" DRIVE("a") ", " DRIVE("b") ", " DRIVE("c") ", " DRIVE("d") ", " \
		     DRIVE("e") ", " DRIVE("f") ", " DRIVE("g") ", " DRIVE("h") "]}"
#define BALLOON(interval) "{'balloon': {'amount_mib': 64, 'deflate_on_oom': true, " \
			  "'stats_polling_interval_s': " #interval "}}"
#define LOAD "{'snapshot_path': '@TMP@/"
#define MIGRATE "{'destination_url': 'tcp:127.0.0.1:1'"
/* A custom CPU template, as sent and as GET /vm/config shows it. */
#define TMPL "{'kvm_capabilities': ['!56'], 'cpuid_modifiers': [{'leaf': '0x1', " \
	     "'subleaf': '0x0', 'flags': 0, 'modifiers': [{'register': 'ecx', " \
	     "'bitmap': '0bxxxx_xxx0'}]}], " \
	     "'msr_modifiers': [{'addr': '0x10a', 'bitmap': '0b0'}]}"
#define TMPL_C "{'kvm_capabilities':['!56'],'cpuid_modifiers':[{'leaf':'0x1','subleaf':'0x0'," \
	       "'flags':0,'modifiers':[{'register':'ecx','bitmap':'0bxxxx_xxx0'}]}]," \
	       "'msr_modifiers':[{'addr':'0x10a','bitmap':'0b0'}]}"
#define MC_DEFAULTS "'smt':false,'track_dirty_pages':false,'huge_pages':'None'"
#define MIG_NEEDS "Migration error: the migration channel needs one of \"tls_psk_file\", " \
		  "\"tls_x509_dir\" or \"insecure_plain_tcp\": true"

struct row {
	const char *method, *path;
	const char *body;       /* NULL: none */
	unsigned status;        /* booted rows: 0 when the handler is reached */
	const char *message;    /* the exact fault_message, or NULL */
	const char *part;       /* a part of the fault_message, or NULL */
	const char *json;       /* a part of the 200 reply's body, or NULL */
	const char *doc;        /* the configuration before; NULL: {} */
	const char *mmds;       /* MMDS's store before; NULL: never PUT */
	const char *after;      /* a part of GET /vm/config then GET /mmds after, or NULL */
	bool booted;            /* the router alone, with a VM taken as started */
	bool handler;           /* the route's handler alone, as after boot but without a VM */
	bool metrics_set;       /* kiln was started with --metrics-path */
	bool deprecation;       /* the reply carries "Deprecation: true" */
};

/* A request before boot: method, path, body, status, exact message; more fields after. */
#define R(m, p, b, s, msg, ...) { .method = m, .path = p, .body = b, .status = s, .message = msg, \
				  __VA_ARGS__ }
/* A request to the router alone after boot: refused with @msg, or (NULL) let through. */
#define B(m, p, b, msg) { .method = m, .path = p, .body = b, .status = (msg) ? 400 : 0, \
			  .message = msg, .booted = true }
/* A request to a post-boot route's handler alone, with no VM: the checks it makes before it
 * touches the VM. */
#define H(m, p, b, s, msg, ...) { .method = m, .path = p, .body = b, .status = s, .message = msg, \
				  .handler = true, __VA_ARGS__ }

static const struct row rows[] = {
	/* The router: methods, paths, ids, bodies. */
	R("GET", "/nothing", NULL, 400, "Invalid request method and/or path: GET nothing."),
	R("GET", "/nothing", "{}", 400, "GET request cannot have a body."),
	R("PUT", "/nothing", NULL, 400, "Empty PUT request."),
	R("PUT", "/vm", "{}", 400, "Invalid request method and/or path: PUT vm."),
	R("PUT", "/vm/config", "{}", 400, "Invalid request method and/or path: PUT vm."),
	R("GET", "/snapshot/create", NULL, 400, "Invalid request method and/or path: GET snapshot."),
	R("PUT", "/snapshot/other", "{}", 400, "Invalid request method and/or path: PUT snapshot."),
	R("DELETE", "/drives/rootfs", NULL, 400, "Invalid request method and/or path: DELETE drives."),
	R("POST", "/actions", "{'action_type': 'InstanceStart'}", 400,
	  "Invalid request method and/or path: POST actions."),
	R("ABCDEFGHIJKLMNOPQRST", "/x", NULL, 400,
	  "Invalid request method and/or path: ABCDEFGHIJKLMNOP x."),
	R("GET", "/" A64 A64 A64 A64, NULL, 400,
	  "Invalid request method and/or path: GET /" A8 A8 A8 A8 A8 A8 A8 "aaaaaaa."),
	R("GET", "/", "{}", 400, "GET request cannot have a body."),
	R("GET", "/version", " ", 400, "GET request cannot have a body."),
	R("PUT", "/machine-config", NULL, 400, "Empty PUT request."),
	R("PATCH", "/machine-config", NULL, 400, "Empty PATCH request."),
	R("PUT", "/drives/", "{}", 400, "The ID cannot be empty."),
	R("PUT", "/drives", "{}", 400, "The ID cannot be empty."),
	R("PATCH", "/network-interfaces/", "{}", 400, "The ID cannot be empty."),
	R("PUT", "/drives/bad-id", "{'drive_id': 'bad-id'}", 400, BAD_ID),
	R("PUT", "/drives/" A64 "a", "{}", 400, BAD_ID),
	R("PUT", "/network-interfaces/eth.0", "{}", 400, BAD_ID),
	R("PATCH", "/drives/a%20b", "{}", 400, BAD_ID),
	R("PUT", "/machine-config", "{'vcpu_count': 2,", 400, NULL,
	  .part = DESER "string or '}' expected near end of file at line 1 column 17."),
	R("PUT", "/machine-config", "{'vcpu_count': 2, 'vcpu_count': 3, 'mem_size_mib': 64}", 400,
	  NULL, .part = "duplicate object key"),
	R("PUT", "/machine-config", "{} x", 400, NULL, .part = DESER "end of file expected"),
	R("PUT", "/machine-config", "[1, 2]", 400, DESER "expected a JSON object."),
	R("PATCH", "/balloon", "[1]", 400, DESER "expected a JSON object."), /* before the boot rule */
	R("PUT", "/mmds", "[1]", 204, NULL), /* MMDS's store may be any JSON document */
	/* (jansson's own words after the prefix) */
	R("PATCH", "/machine-config", "2", 400, NULL, .part = DESER "'[' or '{' expected near '2'"),
	R("PUT", "/actions", "'InstanceStart'", 400, NULL, .part = DESER "'[' or '{' expected near"),
	R("PUT", "/mmds", "null", 400, NULL, .part = DESER "'[' or '{' expected near 'null'"),
	/* Segments a route does not use are ignored, as Firecracker ignores them. */
	R("GET", "/version/extra", NULL, 200, NULL, .json = "'firecracker_version':'" KILN_VERSION "'"),
	R("GET", "//machine-config", NULL, 200, NULL, .json = "'vcpu_count':1,'mem_size_mib':128"),
	R("PATCH", "/balloon/other", "{}", 400, PRE_BOOT), /* PATCH /balloon */
	R("PUT", "/boot-source/x/y", "{'kernel_image_path': '@TMP@/kernel'}", 204, NULL),

	/* GET /, /version, /vm/config, /machine-config */
	R("GET", "/", NULL, 200, NULL, .json = "{'id':'test-vm','state':'Not started','vmm_version':'"
	  KILN_VERSION "','app_name':'kiln'}"),
	R("GET", "/version", NULL, 200, NULL, .json = "{'firecracker_version':'" KILN_VERSION "'}"),
	R("GET", "/vm/config", NULL, 200, NULL, .json = "{'balloon':null,'drives':[],'boot-source':"
	  "{'kernel_image_path':'','initrd_path':null,'boot_args':null},"
	  "'cpu-config':null,'logger':null,'machine-config':{'vcpu_count':1,'mem_size_mib':128,"
	  "'smt':false,'track_dirty_pages':false,'huge_pages':'None'},'metrics':null,"
	  "'mmds-config':null,'network-interfaces':[],'vsock':null,'entropy':null,'pmem':[],"
	  "'memory-hotplug':null}"),
	R("GET", "/vm/config", NULL, 200, NULL, .doc = "{'logger': {'level': 'Info'}, 'entropy': {}}",
	  .json = "'logger':null"),
	R("GET", "/machine-config", NULL, 200, NULL,
	  .doc = "{'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256}}",
	  .json = "{'vcpu_count':2,'mem_size_mib':256,'smt':false,'track_dirty_pages':false,"
	  "'huge_pages':'None'}"),
	/* A template shows when set; "None" (no template) and nulls do not, as in Firecracker. */
	R("GET", "/machine-config", NULL, 200, NULL,
	  .doc = "{'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256, 'smt': true, "
	  "'cpu_template': 'T2S'}}",
	  .json = "{'vcpu_count':2,'mem_size_mib':256,'smt':true,'track_dirty_pages':false,"
	  "'huge_pages':'None','cpu_template':'T2S'}"),
	R("GET", "/machine-config", NULL, 200, NULL,
	  .doc = "{'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256, 'smt': null, "
	  "'cpu_template': 'None'}}",
	  .json = "{'vcpu_count':2,'mem_size_mib':256,'smt':false,'track_dirty_pages':false,"
	  "'huge_pages':'None'}"),
	R("GET", "/vm/config", NULL, 200, NULL,
	  .doc = "{'machine-config': {'vcpu_count': 4, 'mem_size_mib': 256, 'smt': true, "
	  "'cpu_template': 'T2A'}}",
	  .json = "'machine-config':{'vcpu_count':4,'mem_size_mib':256,'smt':true,"
	  "'track_dirty_pages':false,'huge_pages':'None','cpu_template':'T2A'}"),

	/* PUT / PATCH /machine-config */
	R("PUT", "/machine-config", "{'vcpu_count': 2, 'mem_size_mib': 18446744073709551616}", 400,
	  DESER "invalid type: too big integer near '18446744073709551616' at line 1 column 54."),
	R("PUT", "/machine-config", "{'vcpu_count': 2, 'mem_size_mib': 256}", 204, NULL,
	  .after = "'machine-config':{'vcpu_count':2,'mem_size_mib':256,"),
	R("PUT", "/machine-config", "{'vcpu_count': 2}", 400,
	  "Machine config error: \"machine-config\": \"mem_size_mib\" is required"),
	R("PUT", "/machine-config", "{'vcpu_count': 99, 'mem_size_mib': 64}", 400,
	  "Machine config error: \"machine-config\": \"vcpu_count\": 99 is not in [1, 32]"),
	R("PUT", "/machine-config", "{'vcpu_count': 1, 'mem_size_mib': 0}", 400,
	  "Machine config error: \"machine-config\": \"mem_size_mib\": 0: " FC_ERR_MEM_SIZE),
	R("PUT", "/machine-config", "{'vcpu_count': 1, 'mem_size_mib': 64, 'turbo': true}", 400,
	  "Machine config error: \"machine-config\": unknown field \"turbo\""),
	R("PUT", "/machine-config", "{'vcpu_count': 1, 'mem_size_mib': 64, 'smt': true}", 204, NULL,
	  .after = "'machine-config':{'vcpu_count':1,'mem_size_mib':64,'smt':true,"),
	R("PUT", "/machine-config", "{'vcpu_count': 3, 'mem_size_mib': 64, 'smt': true}", 400,
	  "Machine config error: \"machine-config\": \"vcpu_count\": 3 with \"smt\": true: "
	  FC_ERR_VCPUS),
	/* Any template is taken here; InstanceStart checks that it fits the host, as Firecracker. */
	R("PUT", "/machine-config", "{'vcpu_count': 2, 'mem_size_mib': 64, 'smt': true, "
	  "'cpu_template': 'T2'}", 204, NULL,
	  .after = "'machine-config':{'vcpu_count':2,'mem_size_mib':64,'smt':true,"
	  "'track_dirty_pages':false,'huge_pages':'None','cpu_template':'T2'}",
	  .deprecation = true),
	R("PUT", "/machine-config", "{'vcpu_count': 2, 'mem_size_mib': 64, 'cpu_template': 'T9'}", 400,
	  "Machine config error: \"machine-config\": \"cpu_template\": unknown variant `T9`, "
	  "expected one of `C3`, `T2`, `T2S`, `None`, `T2CL`, `T2A`",
	  .deprecation = true), /* Firecracker: none, as its body does not deserialize */
	R("PUT", "/machine-config", "{'vcpu_count': 1, 'mem_size_mib': 32}", 400,
	  "Machine config error: \"balloon\": \"amount_mib\": 64 is not in [0, 32] (the guest's memory)",
	  .doc = BALLOON(0)),
	R("PATCH", "/machine-config", "{}", 400, "Empty PATCH request."),
	R("PATCH", "/machine-config", "{'vcpu_count': 4}", 204, NULL,
	  .doc = "{'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256}}",
	  .after = "'machine-config':{'vcpu_count':4,'mem_size_mib':256,"),
	R("PATCH", "/machine-config", "{'mem_size_mib': 'lots'}", 400,
	  "Machine config error: \"machine-config\": \"mem_size_mib\": expected an integer"),
	R("PATCH", "/machine-config", "{'vcpu_count': 0}", 400,
	  "Machine config error: \"machine-config\": \"vcpu_count\": 0 is not in [1, 32]"),
	R("PATCH", "/machine-config", "{'smt': true, 'cpu_template': 'T2CL'}", 204, NULL,
	  .doc = "{'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256}}",
	  .after = "'machine-config':{'vcpu_count':2,'mem_size_mib':256,'smt':true,"
	  "'track_dirty_pages':false,'huge_pages':'None','cpu_template':'T2CL'}",
	  .deprecation = true),
	/* null leaves a field as it was (Firecracker's MachineConfigUpdate); "None" clears. */
	R("PATCH", "/machine-config", "{'cpu_template': null, 'vcpu_count': 4}", 204, NULL,
	  .doc = "{'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256, 'cpu_template': 'T2'}}",
	  .after = "'vcpu_count':4,'mem_size_mib':256,'smt':false,'track_dirty_pages':false,"
	  "'huge_pages':'None','cpu_template':'T2'}"),
	R("PATCH", "/machine-config", "{'cpu_template': 'None'}", 204, NULL,
	  .doc = "{'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256, 'cpu_template': 'T2'}}",
	  .after = "'machine-config':{'vcpu_count':2,'mem_size_mib':256,'smt':false,"
	  "'track_dirty_pages':false,'huge_pages':'None'}", .deprecation = true),
	R("PATCH", "/machine-config", "{'vcpu_count': 5}", 400,
	  "Machine config error: \"machine-config\": \"vcpu_count\": 5 with \"smt\": true: "
	  FC_ERR_VCPUS, .doc = "{'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256, "
	  "'smt': true}}"),
	R("PATCH", "/machine-config", "{'huge_pages': '1G'}", 400,
	  "Machine config error: \"machine-config\": \"huge_pages\": unknown variant `1G`, expected "
	  "`None` or `2M`"),
	R("PATCH", "/machine-config", "{'huge_pages': '2M'}", 204, NULL,
	  .after = "'mem_size_mib':128,'smt':false,'track_dirty_pages':false,'huge_pages':'2M'}"),

	/* PUT /boot-source */
	R("PUT", "/boot-source", "{'kernel_image_path': '@TMP@/kernel', 'boot_args': 'console=ttyS0'}",
	  204, NULL, .after = "'boot-source':{'kernel_image_path':'@TMP@/kernel','initrd_path':null,"
	  "'boot_args':'console=ttyS0'}"),
	R("PUT", "/boot-source", "{'kernel_image_path': '/no/such/kernel'}", 400,
	  "Boot source error: The kernel file cannot be opened: No such file or directory "
	  "(os error 2) /no/such/kernel"),
	R("PUT", "/boot-source", "{'kernel_image_path': '@TMP@/kernel', 'initrd_path': '/no/such/initrd'}",
	  400, "Boot source error: The initrd file cannot be opened due to invalid path or invalid "
	  "permissions. No such file or directory (os error 2) /no/such/initrd"),
	R("PUT", "/boot-source", "{'boot_args': 'x'}", 400,
	  "Boot source error: \"boot-source\": \"kernel_image_path\" is required"),
	R("PUT", "/boot-source", "{'kernel_image_path': '@TMP@/kernel', 'initrd': 'x'}", 400,
	  "Boot source error: \"boot-source\": unknown field \"initrd\""),

	/* PUT / PATCH /drives/{id} */
	R("PUT", "/drives/rootfs", ROOT_DRIVE, 204, NULL, .after = "'drives':[" ROOT_DRIVE_C "]"),
	R("PUT", "/drives/rootfs", "{'drive_id': 'rootfs', 'path_on_host': '@TMP@/disk', "
	  "'is_root_device': true, 'is_read_only': true}", 204, NULL, .doc = "{'drives': [" ROOT_DRIVE "]}",
	  .after = "'drives':[" DRIVE_C_RO("rootfs", "true", "true") "]"),
	R("PUT", "/drives/data", DRIVE("data"), 204, NULL, .doc = "{'drives': [" ROOT_DRIVE "]}",
	  .after = "'drives':[" ROOT_DRIVE_C "," DRIVE_C("data") "]"),
	R("PUT", "/drives/data", "{'drive_id': 'data', 'path_on_host': '@TMP@/disk', 'is_root_device': "
	  "false, 'rate_limiter': {'bandwidth': {'size': 5, 'one_time_burst': 0, 'refill_time': 10}}}",
	  204, NULL, .after = "'rate_limiter':{'bandwidth':{'size':5,'one_time_burst':null,"
	  "'refill_time':10},'ops':null}"),
	R("PUT", "/drives/data", DRIVE("other"), 400,
	  "The id from the path does not match the id from the body!"),
	R("PUT", "/drives/data", "{'drive_id': 'data', 'path_on_host': '/no/such/disk', "
	  "'is_root_device': false}", 400,
	  "Drive config error: Unable to create the virtio block device: Virtio backend error: Error "
	  "manipulating the backing file: No such file or directory (os error 2) /no/such/disk"),
	R("PUT", "/drives/root2", "{'drive_id': 'root2', 'path_on_host': '@TMP@/disk', "
	  "'is_root_device': true}", 400,
	  "Drive config error: \"drives\": A root block device already exists! (\"rootfs\" and "
	  "\"root2\" are both root devices)",
	  .doc = "{'drives': [" ROOT_DRIVE "]}"),
	R("PUT", "/drives/data", "{'drive_id': 'data', 'path_on_host': '@TMP@/disk', "
	  "'is_root_device': false, 'rate_limiter': {'bandwidth': {'size': -1, 'refill_time': 1}}}", 400,
	  "Drive config error: \"drives\"[0]: \"rate_limiter\": \"bandwidth\": \"size\": -1 is "
	  "negative"),
	R("PUT", "/drives/data", "{'drive_id': 'data', 'path_on_host': '@TMP@/disk', "
	  "'is_root_device': false, 'rate_limiter': {'bandwidth': {'size': 1, 'refill_time': 1}}}", 204,
	  NULL),
	R("PUT", "/drives/data", "{'path_on_host': '@TMP@/disk', 'is_root_device': false}", 400,
	  "Drive config error: \"drives\"[0]: \"drive_id\" is required"),
	R("PUT", "/drives/i", DRIVE("i"), 400, "Drive config error: \"drives\": 9 entries, more than 8",
	  .doc = EIGHT_DRIVES),
	R("PATCH", "/drives/rootfs", "{'drive_id': 'rootfs', 'path_on_host': '/x'}", 400, PRE_BOOT,
	  .doc = "{'drives': [" ROOT_DRIVE "]}"),

	/* PUT / PATCH /network-interfaces/{id} */
	/* The tap is opened at PUT, as Firecracker opens it (the booted tests use real taps). */
	R("PUT", "/network-interfaces/eth0", "{'iface_id': 'eth0', 'host_dev_name': 'tap0'}", 400,
	  "Network config error: tap tap0: no such network interface (create it first: ip tuntap add "
	  "tap0 mode tap)"),
	R("PUT", "/network-interfaces/eth0", "{'iface_id': 'eth0', 'host_dev_name': 'lo'}", 400,
	  "Network config error: tap lo: not a tap device (or a multiqueue one)"),
	R("GET", "/vm/config", NULL, 200, NULL,
	  .doc = "{'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0'}]}",
	  .json = "'network-interfaces':[{'iface_id':'eth0','host_dev_name':'tap0','guest_mac':null,"
	  "'rx_rate_limiter':null,'tx_rate_limiter':null,'mtu':null}]"),
	R("PUT", "/network-interfaces/eth0", "{'iface_id': 'eth1', 'host_dev_name': 'tap0'}", 400,
	  "The id from the path [eth0] does not match the id from the body [eth1]!"),
	R("PUT", "/network-interfaces/eth0", "{'host_dev_name': 'tap0'}", 400,
	  "Network config error: \"network-interfaces\"[0]: \"iface_id\" is required"),
	R("PUT", "/network-interfaces/eth0", "{'iface_id': 'eth0', 'host_dev_name': 'tap0', "
	  "'guest_mac': '01:00:00:00:00:01'}", 400,
	  "Network config error: \"network-interfaces\"[0]: \"guest_mac\": \"01:00:00:00:00:01\" is not "
	  "a unicast MAC address like 06:00:AC:10:00:02"),
	R("PUT", "/network-interfaces/eth0", "{'iface_id': 'eth0', 'host_dev_name': 'tap0', 'mtu': 65536}",
	  400, "Network config error: \"network-interfaces\"[0]: \"mtu\": not an MTU in [68, 65535]"),
	R("PATCH", "/network-interfaces/eth0", "{'iface_id': 'eth0'}", 400, PRE_BOOT),

	/* PUT /entropy, /vsock, /cpu-config */
	R("PUT", "/entropy", "{}", 204, NULL, .after = "'entropy':{'rate_limiter':null}"),
	/* Rate limiters as Firecracker shows them: both buckets, one that is off null. */
	R("PUT", "/entropy", "{'rate_limiter': {'ops': {'size': 0, 'refill_time': 1}}}", 204, NULL,
	  .after = "'entropy':{'rate_limiter':null}"),
	R("PUT", "/serial", "{'serial_out_path': '/tmp/serial.log'}", 204, NULL),
	R("PUT", "/serial", "{'serial_out_path': '/s', 'rate_limiter': {'size': 1, 'refill_time': 1}}",
	  204, NULL),
	R("PUT", "/serial", "{'rate_limiter': {'size': 1}}", 400,
	  "Serial config error: \"serial\": \"rate_limiter\": \"refill_time\" is required"),
	R("PUT", "/serial", "{'rate_limiter': {'bandwidth': {'size': 1, 'refill_time': 1}}}", 400,
	  "Serial config error: \"serial\": \"rate_limiter\": unknown field \"bandwidth\""),
	R("PUT", "/serial", "{'path': '/s'}", 400, "Serial config error: \"serial\": unknown field \"path\""),
	R("GET", "/balloon/hinting/status", NULL, 400, PRE_BOOT, .doc = BALLOON(0)),
	R("PATCH", "/balloon/hinting/start", "{}", 400, PRE_BOOT, .doc = BALLOON(0)),
	R("PUT", "/entropy", "{'rate_limiter': {'ops': {'size': 1}}}", 400,
	  "Entropy device error: \"entropy\": \"rate_limiter\": \"ops\": \"refill_time\" is "
	  "required"),
	R("PUT", "/entropy", "{'rate_limiter': {'ops': {'size': 1, 'refill_time': 1}}}", 204, NULL,
	  .after = "'entropy':{'rate_limiter':{'bandwidth':null,'ops':{'size':1,"
	  "'one_time_burst':null,'refill_time':1}}}"),
	R("PUT", "/entropy", "{'rate': 1}", 400, "Entropy device error: \"entropy\": unknown field \"rate\""),
	R("PUT", "/vsock", "{'guest_cid': 3, 'uds_path': '/tmp/v.sock'}", 204, NULL,
	  .after = "'vsock':{'guest_cid':3,'uds_path':'/tmp/v.sock'}"),
	R("PUT", "/vsock", "{'guest_cid': 2, 'uds_path': '/v'}", 400,
	  "Vsock config error: \"vsock\": \"guest_cid\": 2 is not in [3, 4294967294]"),
	R("PUT", "/vsock", "{'vsock_id': 'v', 'guest_cid': 3, 'uds_path': '/v'}", 204, NULL,
	  .deprecation = true),
	R("PUT", "/vsock", "{'guest_cid': 3}", 400, "Vsock config error: \"vsock\": \"uds_path\" is required"),

	/* PUT /cpu-config: a custom template, refused as a body that does not deserialize
	 * (Firecracker's messages after the entry and key); the last template set wins. */
	R("PUT", "/cpu-config", TMPL, 204, NULL, .after = "'cpu-config':" TMPL_C ",'logger'"),
	R("PUT", "/cpu-config", "{}", 204, NULL, .doc = "{'cpu-config': " TMPL "}",
	  .after = "'cpu-config':{},"),
	R("PUT", "/cpu-config", TMPL, 204, NULL, .doc = "{'machine-config': {'vcpu_count': 2, "
	  "'mem_size_mib': 256, 'cpu_template': 'T2'}}", .after = "'cpu-config':" TMPL_C ",'logger':"
	  "null,'machine-config':{'vcpu_count':2,'mem_size_mib':256," MC_DEFAULTS "},"),
	R("PUT", "/cpu-config", "{'foo': false}", 400, DESER "unknown field `foo`, expected one of "
	  "`kvm_capabilities`, `cpuid_modifiers`, `msr_modifiers`", .doc = "{'cpu-config': " TMPL "}"),
	R("PUT", "/cpu-config", "{'cpuid_modifiers': [{'leaf': '0x1', 'subleaf': '0x0', 'flags': 0, "
	  "'modifiers': [{'register': 'ekx', 'bitmap': '0b1'}]}]}", 400, DESER "\"cpuid_modifiers\""
	  "[0]: \"modifiers\"[0]: \"register\": \"ekx\": Invalid CPUID register. Must be one of "
	  "[eax, ebx, ecx, edx]"),
	R("PUT", "/cpu-config", "{'cpuid_modifiers': [{'leaf': '1', 'subleaf': '0x0', 'flags': 0, "
	  "'modifiers': []}]}", 400, DESER "\"cpuid_modifiers\"[0]: \"leaf\": No supported number "
	  "system prefix found in value [1]. Make sure to prefix the number with '0x' for "
	  "hexadecimal numbers or '0b' for binary numbers."),
	R("PUT", "/cpu-config", "{'cpuid_modifiers': [{'leaf': '0x1', 'subleaf': '0x0', 'flags': 0, "
	  "'modifiers': [{'register': 'eax', 'bitmap': '0b11x0_xxxx_xxxx_xxxx_xxxx_xxxx_xxxx_xxxx_x'}]}]}",
	  400, DESER "\"cpuid_modifiers\"[0]: \"modifiers\"[0]: \"bitmap\": Failed to parse "
	  "string [0b11x0_xxxx_xxxx_xxxx_xxxx_xxxx_xxxx_xxxx_x] as a bitmap - string is too long"),
	R("PUT", "/cpu-config", "{'msr_modifiers': [{'addr': '0x1g', 'bitmap': '0b1'}]}", 400,
	  DESER "\"msr_modifiers\"[0]: \"addr\": Failed to parse string [0x1g] as a number for CPU "
	  "template - ParseIntError { kind: InvalidDigit }"),
	R("PUT", "/cpu-config", "{'msr_modifiers': [{'addr': '0x10a', 'bitmap': '0b?'}]}", 400,
	  DESER "\"msr_modifiers\"[0]: \"bitmap\": Failed to parse string [0b?] as a bitmap - "
	  "unknown character: '?'"),
	R("PUT", "/cpu-config", "{'kvm_capabilities': ['!a2']}", 400, DESER "\"kvm_capabilities\""
	  "[0]: Failed to parse string [!a2] as a kvm capability - can not convert to numeric: "
	  "invalid digit found in string"),
	R("PUT", "/cpu-config", "{'kvm_capabilities': '56'}", 400,
	  DESER "\"kvm_capabilities\": expected an array"),
	R("PUT", "/cpu-config", "[1]", 400, DESER "expected a JSON object."),
	R("GET", "/machine-config", NULL, 200, NULL, .doc = "{'cpu-config': {}, 'machine-config': "
	  "{'vcpu_count': 2, 'mem_size_mib': 256, 'cpu_template': 'T2'}}",
	  .json = "{'vcpu_count':2,'mem_size_mib':256," MC_DEFAULTS "}"),
	/* A machine configuration that names a template (None too) drops the custom one; one
	 * that names none keeps whichever template is set. */
	R("PATCH", "/machine-config", "{'cpu_template': 'T2'}", 204, NULL,
	  .doc = "{'cpu-config': {}, 'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256}}",
	  .after = "'cpu-config':null,'logger':null,'machine-config':{'vcpu_count':2,"
	  "'mem_size_mib':256," MC_DEFAULTS ",'cpu_template':'T2'}", .deprecation = true),
	R("PATCH", "/machine-config", "{'vcpu_count': 4, 'cpu_template': null}", 204, NULL,
	  .doc = "{'cpu-config': {}, 'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256}}",
	  .after = "'cpu-config':{},'logger':null,'machine-config':{'vcpu_count':4,"
	  "'mem_size_mib':256," MC_DEFAULTS "},"),
	R("PUT", "/machine-config", "{'vcpu_count': 2, 'mem_size_mib': 64, 'cpu_template': 'None'}",
	  204, NULL, .doc = "{'cpu-config': {}}", .after = "'cpu-config':null,'logger':null,"
	  "'machine-config':{'vcpu_count':2,'mem_size_mib':64," MC_DEFAULTS "},",
	  .deprecation = true),
	R("PUT", "/machine-config", "{'vcpu_count': 2, 'mem_size_mib': 64}", 204, NULL,
	  .doc = "{'cpu-config': {}}", .after = "'cpu-config':{},"),
	R("PUT", "/machine-config", "{'vcpu_count': 4, 'mem_size_mib': 64}", 204, NULL,
	  .doc = "{'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256, 'cpu_template': 'T2S'}}",
	  .after = "'machine-config':{'vcpu_count':4,'mem_size_mib':64," MC_DEFAULTS
	  ",'cpu_template':'T2S'}"),
	R("PUT", "/machine-config", "{'vcpu_count': 4, 'mem_size_mib': 64, 'cpu_template': null}", 204,
	  NULL, .doc = "{'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256, 'cpu_template': "
	  "'T2S'}}", .after = "'machine-config':{'vcpu_count':4,'mem_size_mib':64," MC_DEFAULTS
	  ",'cpu_template':'T2S'}"),

	/* PUT /logger, /metrics */
	R("PUT", "/logger", "{'level': 'Warning'}", 204, NULL),
	R("PUT", "/logger", "{'log_path': '@TMP@/log', 'level': 'Warning'}", 204, NULL),
	R("PUT", "/logger", "{'level': 'Chatty'}", 400, "Logger error: \"logger\": \"level\": \"Chatty\" is "
	  "not Error, Warning, Info, Debug, Trace or Off"),
	R("PUT", "/logger", "{'log_path': '/no/such/dir/log'}", 400,
	  "Logger error: Failed to open target file /no/such/dir/log: No such file or directory"),
	R("PUT", "/logger", "{'show_level': 1}", 400,
	  "Logger error: \"logger\": \"show_level\": expected true or false"),
	R("PUT", "/logger", "{'level': 3}", 400, "Logger error: \"logger\": \"level\": expected a string"),
	R("PUT", "/metrics", "{'metrics_path': '@TMP@/metrics'}", 204, NULL),
	R("PUT", "/metrics", "{'metrics_path': '@TMP@/metrics'}", 400,
	  "Metrics error: Reinitialization of metrics not allowed.", .metrics_set = true),
	R("PUT", "/metrics", "{'metrics_path': '/no/such/metrics'}", 400,
	  "Metrics error: Failed to open target file /no/such/metrics: No such file or directory"),
	R("PUT", "/metrics", "{'path': '/m'}", 400, DESER "unknown field \"path\""),
	R("PUT", "/metrics", "{}", 400, DESER "\"metrics_path\" is required"),

	/* PUT /actions, PATCH /vm */
	R("PUT", "/actions", "{'action_type': 'InstanceStart'}", 400,
	  "Start microvm error: Cannot start microvm without kernel configuration."),
	R("PUT", "/actions", "{'action_type': 'InstanceStart'}", 400,
	  "Start microvm error: Cannot start microvm without kernel configuration.",
	  .doc = "{'boot-source': null, 'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256}}"),
	/* (a document the API never makes: PUT /boot-source refuses it) */
	R("PUT", "/actions", "{'action_type': 'InstanceStart'}", 400,
	  "Start microvm error: \"boot-source\": \"kernel_image_path\" is required",
	  .doc = "{'boot-source': {}}"),
	/* A template for the other vendor's CPUs (@FOREIGN@): refused before anything is built. */
	R("PUT", "/actions", "{'action_type': 'InstanceStart'}", 400,
	  "Start microvm error: Failed to get CPU template: CPU vendor mismatched between actual "
	  "CPU and CPU template.",
	  .doc = "{'boot-source': {'kernel_image_path': '@TMP@/kernel'}, 'machine-config': "
	  "{'vcpu_count': 2, 'mem_size_mib': 128, 'smt': true, 'cpu_template': '@FOREIGN@'}}"),
	R("PUT", "/actions", "{'action_type': 'SendCtrlAltDel'}", 400, PRE_BOOT),
	R("PUT", "/actions", "{'action_type': 'FlushMetrics'}", 400, PRE_BOOT),
	R("PUT", "/actions", "{'action_type': 'Reboot'}", 400, DESER "unknown variant `Reboot`, expected "
	  "one of `FlushMetrics`, `InstanceStart`, `SendCtrlAltDel`"),
	R("PUT", "/actions", "{'action_type': 'InstanceStart', 'payload': 1}", 400,
	  DESER "unknown field \"payload\""),
	R("PUT", "/actions", "{}", 400, DESER "\"action_type\" is required"),
	R("PUT", "/actions", "{'action_type': 1}", 400, DESER "\"action_type\": expected a string"),
	R("PATCH", "/vm", "{'state': 'Paused'}", 400, PRE_BOOT),
	R("PATCH", "/vm", "{'state': 'Resumed'}", 400, PRE_BOOT),
	R("PATCH", "/vm", "{'state': 'Frozen'}", 400,
	  DESER "unknown variant `Frozen`, expected `Paused` or `Resumed`"),
	R("PATCH", "/vm", "{}", 400, DESER "\"state\" is required"),

	/* MMDS */
	R("GET", "/mmds", NULL, 200, NULL, .json = "{}"),
	R("GET", "/mmds", NULL, 200, NULL, .mmds = "{'latest': {'a': 1}}", .json = "{'latest':{'a':1}}"),
	R("PUT", "/mmds", "{'latest': {'meta-data': {'ami-id': 'ami-1'}}}", 204, NULL,
	  .after = "{'latest':{'meta-data':{'ami-id':'ami-1'}}}"),
	R("PUT", "/mmds", "[1, 2]", 204, NULL, .after = "[1,2]"),
	R("PUT", "/mmds/other", "{}", 400, "Unrecognized PUT request path `other`."),
	R("PUT", "/mmds", "{'data': '@BIG@'}", 413,
	  "MMDS limit exceeded error: The MMDS patch request doesn't fit.", .mmds = "{'a': 1}"),
	R("PATCH", "/mmds", "{'latest': {'b': 2}}", 400,
	  "MMDS error: The MMDS data store is not initialized."),
	R("PATCH", "/mmds", "{'latest': {'a': null, 'b': 2}}", 204, NULL,
	  .mmds = "{'latest': {'a': 1}}", .after = "{'latest':{'b':2}}"),
	R("PATCH", "/mmds", "{'data': '@BIG@'}", 413,
	  "MMDS limit exceeded error: The MMDS patch request doesn't fit.", .mmds = "{'a': 1}"),
	R("PUT", "/mmds/config", "{'network_interfaces': ['eth0']}", 204, NULL,
	  .doc = "{'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0'}]}",
	  .after = "'mmds-config':{'version':'V1','ipv4_address':'169.254.169.254',"
	  "'network_interfaces':['eth0'],'imds_compat':false}", .deprecation = true),
	R("PUT", "/mmds/config", "{'network_interfaces': []}", 400, "MMDS config error: The list of "
	  "network interface IDs that allow forwarding MMDS requests is empty.",
	  .deprecation = true),
	R("PUT", "/mmds/config", "{'network_interfaces': ['eth9']}", 400, "MMDS config error: The list "
	  "of network interface IDs provided contains at least one ID that does not correspond to any "
	  "existing network interface.", .deprecation = true),
	R("PUT", "/mmds/config", "{'network_interfaces': ['eth0'], 'ipv4_address': '10.0.0.1'}", 400,
	  "MMDS config error: The MMDS IPv4 address is not link local.", .deprecation = true),
	R("PUT", "/mmds/config", "{'network_interfaces': ['eth0'], 'version': 'V3'}", 400,
	  DESER "unknown variant `V3`, expected `V1` or `V2`"),

	/* Balloon */
	R("PUT", "/balloon", "{'amount_mib': 64, 'deflate_on_oom': true}", 204, NULL,
	  .after = "'balloon':{'amount_mib':64,'deflate_on_oom':true,'stats_polling_interval_s':0,"
	  "'free_page_hinting':false,'free_page_reporting':false}"),
	R("PUT", "/balloon", "{'amount_mib': 100000, 'deflate_on_oom': true}", 400, "Balloon config "
	  "error: \"balloon\": \"amount_mib\": 100000 is not in [0, 128] (the guest's memory)"),
	R("PUT", "/balloon", "{'amount_mib': 1}", 400,
	  "Balloon config error: \"balloon\": \"deflate_on_oom\" is required"),
	R("PUT", "/balloon", "{'amount_mib': 1, 'deflate_on_oom': true, 'free_page_hinting': 1}", 400,
	  "Balloon config error: \"balloon\": \"free_page_hinting\": expected true or false"),
	R("PUT", "/balloon", "{'amount_mib': 1, 'deflate_on_oom': true, 'free_page_hinting': true}", 204,
	  NULL, .after = "'balloon':{'amount_mib':1,'deflate_on_oom':true,'stats_polling_interval_s':0,"
	  "'free_page_hinting':true,"),
	R("GET", "/balloon", NULL, 400, "Balloon error: No balloon device configured."),
	R("GET", "/balloon", NULL, 200, NULL, .doc = BALLOON(5),
	  .json = "{'amount_mib':64,'deflate_on_oom':true,'stats_polling_interval_s':5}"),
	R("GET", "/balloon/statistics", NULL, 400, "Balloon error: No balloon device configured."),
	R("GET", "/balloon/statistics", NULL, 400,
	  "Balloon error: Statistics for the balloon device are not enabled.", .doc = BALLOON(0)),
	R("GET", "/balloon/statistics", NULL, 400, PRE_BOOT, .doc = BALLOON(5)),
	R("PATCH", "/balloon", "{'amount_mib': 1}", 400, PRE_BOOT, .doc = BALLOON(0)),
	R("PATCH", "/balloon/statistics", "{'stats_polling_interval_s': 1}", 400, PRE_BOOT,
	  .doc = BALLOON(5)),

	/* Snapshots and migration */
	R("PUT", "/snapshot/create", "{'snapshot_path': '/s', 'mem_file_path': '/m'}", 400, PRE_BOOT),
	R("PUT", "/snapshot/load", LOAD "vm.snap', 'mem_file_path': '/m'}", 400, "Load snapshot error: "
	  "Loading a microVM snapshot not allowed after configuring boot-specific resources.",
	  .doc = "{'machine-config': {'vcpu_count': 1, 'mem_size_mib': 128}}", .deprecation = true),
	/* A custom template is no boot-specific resource (Firecracker's boot_path): the load goes
	 * on, and the snapshot's configuration replaces it. */
	R("PUT", "/snapshot/load", LOAD "none.snap', 'mem_file_path': '/m'}", 400,
	  "Load snapshot error: snapshot_path @TMP@/none.snap: No such file or directory",
	  .doc = "{'cpu-config': {}}", .deprecation = true),
	R("PUT", "/snapshot/load", LOAD "vm.snap'}", 400, DESER "missing field: either `mem_backend` "
	  "or `mem_file_path` is required."),
	R("PUT", "/snapshot/load", LOAD "vm.snap', 'mem_file_path': '/m', 'mem_backend': "
	  "{'backend_type': 'File', 'backend_path': '/m'}}", 400,
	  DESER "too many fields: either `mem_backend` or `mem_file_path` exclusively is required."),
	R("PUT", "/snapshot/load", LOAD "vm.snap', 'mem_backend': {'backend_type': 'Disk', "
	  "'backend_path': '/m'}}", 400,
	  DESER "mem_backend: unknown variant `Disk`, expected `File` or `Uffd`"),
	R("PUT", "/snapshot/load", LOAD "vm.snap', 'mem_backend': {'backend_type': 'File'}}", 400,
	  DESER "mem_backend: \"backend_path\" is required"),
	R("PUT", "/snapshot/load", LOAD "vm.snap', 'mem_backend': 'File'}", 400,
	  DESER "mem_backend: expected an object"),
	R("PUT", "/snapshot/load", "{'mem_file_path': '/m'}", 400, DESER "\"snapshot_path\" is required"),
	R("PUT", "/snapshot/load", LOAD "vm.snap', 'mem_file_path': '/m', 'resume': true}", 400,
	  DESER "unknown field \"resume\""),
	R("PUT", "/snapshot/load", LOAD "vm.snap', 'mem_file_path': '/m', 'network_overrides': "
	  "[{'iface_id': 'eth0'}]}", 400, DESER "network_overrides[0]: \"host_dev_name\" is required"),
	R("PUT", "/snapshot/load", LOAD "vm.snap', 'mem_file_path': '/m', 'vsock_override': {}}", 400,
	  DESER "vsock_override: \"uds_path\" is required"),
	R("PUT", "/snapshot/load", LOAD "badconfig.snap', 'mem_file_path': '/m', 'network_overrides': "
	  "[{'iface_id': 'eth0', 'host_dev_name': 'tap1'}]}", 400,
	  "Load snapshot error: network_overrides: the snapshot has no network interface \"eth0\"",
	  .deprecation = true),
	R("PUT", "/snapshot/load", LOAD "badconfig.snap', 'mem_file_path': '/m', 'vsock_override': "
	  "{'uds_path': '/v.sock'}, 'clock_realtime': true}", 400,
	  "Load snapshot error: vsock_override: the snapshot has no vsock device",
	  .deprecation = true),
	R("PUT", "/snapshot/load", LOAD "none.snap', 'mem_file_path': '/m'}", 400,
	  "Load snapshot error: snapshot_path @TMP@/none.snap: No such file or directory",
	  .deprecation = true),
	R("PUT", "/snapshot/load", LOAD "kernel', 'mem_file_path': '/m'}", 400,
	  "Load snapshot error: snapshot_path @TMP@/kernel: not a kiln snapshot",
	  .deprecation = true),
	R("PUT", "/snapshot/load", LOAD "noconfig.snap', 'mem_file_path': '/m'}", 400,
	  "Load snapshot error: snapshot_path @TMP@/noconfig.snap: no configuration section",
	  .deprecation = true),
	R("PUT", "/snapshot/load", LOAD "notjson.snap', 'mem_file_path': '/m', "
	  "'track_dirty_pages': true}", 400,
	  "Load snapshot error: snapshot_path @TMP@/notjson.snap: its configuration is not JSON",
	  .deprecation = true),
	R("PUT", "/snapshot/load", LOAD "badconfig.snap', 'mem_backend': {'backend_type': 'Uffd', "
	  "'backend_path': '/u'}, 'enable_diff_snapshots': true, 'resume_vm': true}", 400,
	  "Load snapshot error: \"machine-config\": \"vcpu_count\": 0 is not in [1, 32]",
	  .deprecation = true),
	R("PUT", "/migrate", "{'destination_url': 'tcp:127.0.0.1:1'}", 400, PRE_BOOT),
	R("GET", "/migrate", NULL, 400, PRE_BOOT),

	/* After boot, the handlers' own checks before they touch the VM. */
	H("PATCH", "/drives/rootfs", "{'path_on_host': '/x'}", 400, DESER "\"drive_id\" is required"),
	H("PATCH", "/drives/rootfs", "{'drive_id': 'other', 'path_on_host': '/x'}", 400,
	  "The id from the path does not match the id from the body!"),
	H("PATCH", "/drives/rootfs", "{'drive_id': 'rootfs', 'rate_limiter': {'ops': {'size': 1, "
	  "'refill_time': 'x'}}}", 400, "Drive config error: \"rate_limiter\": \"ops\": "
	  "\"refill_time\": expected an integer", .doc = "{'drives': [" ROOT_DRIVE "]}"),
	H("PATCH", "/drives/rootfs", "{'drive_id': 'rootfs', 'rate_limiter': {'ops': {'size': 1, "
	  "'refill_time': 1}}}", 400, "Drive config error: no drive \"rootfs\"",
	  .doc = "{'drives': [" ROOT_DRIVE "]}"),
	H("PATCH", "/drives/rootfs", "{'drive_id': 'rootfs', 'path_on_host': '/x'}", 400,
	  "Drive config error: no drive \"rootfs\""),
	H("PATCH", "/drives/rootfs", "{'drive_id': 'rootfs', 'rate_limiter': null}", 400,
	  "Drive config error: Unable to patch the block device: Block: Running method expected "
	  "different backend. Please verify the request arguments.",
	  .doc = "{'drives': [" ROOT_DRIVE "]}"),
	H("PATCH", "/drives/rootfs", "{'drive_id': 'rootfs'}", 400,
	  "Drive config error: Unable to patch the block device: Block: Running method expected "
	  "different backend. Please verify the request arguments.",
	  .doc = "{'drives': [" ROOT_DRIVE "]}"),
	H("PATCH", "/drives/rootfs", "{'drive_id': 'rootfs', 'path_on_host': '/no/such'}", 400,
	  "Drive config error: Unable to patch the block device: Block: Virtio backend error: Error "
	  "manipulating the backing file: No such file or directory (os error 2) /no/such Please "
	  "verify the request arguments.", .doc = "{'drives': [" ROOT_DRIVE "]}"),
	H("PATCH", "/network-interfaces/eth0", "{}", 400, DESER "\"iface_id\" is required"),
	H("PATCH", "/network-interfaces/eth0", "{'iface_id': 'eth1'}", 400,
	  "The id from the path [eth0] does not match the id from the body [eth1]!"),
	H("PATCH", "/network-interfaces/eth0", "{'iface_id': 'eth0', 'rx_rate_limiter': {'bw': {}}}",
	  400, "Network config error: \"rx_rate_limiter\": unknown field \"bw\"",
	  .doc = "{'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0'}]}"),
	H("PATCH", "/network-interfaces/eth0", "{'iface_id': 'eth0', 'tx_rate_limiter': "
	  "{'bandwidth': {'size': 1, 'refill_time': -5}}}", 400, "Network config error: "
	  "\"tx_rate_limiter\": \"bandwidth\": \"refill_time\": -5 is negative",
	  .doc = "{'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0'}]}"),
	H("PATCH", "/network-interfaces/eth0", "{'iface_id': 'eth0'}", 400,
	  "Network config error: no network interface \"eth0\""),
	H("PATCH", "/network-interfaces/eth0", "{'iface_id': 'eth0', 'tx_rate_limiter': null}", 204, NULL,
	  .doc = "{'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0'}]}"),
	H("PATCH", "/balloon", "{'amount_mib': 1}", 400, "Balloon error: No balloon device configured."),
	H("PATCH", "/balloon", "{'amount': 1}", 400, DESER "unknown field \"amount\"", .doc = BALLOON(0)),
	H("PATCH", "/balloon", "{'amount_mib': -1}", 400, NULL,
	  .part = "Balloon error: \"amount_mib\": -1 is not in [0, ", .doc = BALLOON(0)),
	H("PATCH", "/balloon/statistics", "{'stats_polling_interval_s': 1}", 400,
	  "Balloon error: No balloon device configured."),
	H("PATCH", "/balloon/hinting/start", "{}", 400, "Balloon error: No balloon device configured."),
	H("PATCH", "/balloon/hinting/go", "{}", 400, "Invalid request method and/or path: PATCH balloon.",
	  .doc = BALLOON(0)),
	H("PATCH", "/balloon/hinting/start", "{'acknowledge_on_stop': 'yes'}", 400,
	  DESER "\"acknowledge_on_stop\": expected true or false", .doc = BALLOON(0)),
	H("PATCH", "/balloon/hinting/stop", "", 400,
	  "Balloon error: The balloon device is not active yet.", .doc = BALLOON(0)),
	H("GET", "/balloon/hinting/status", NULL, 400,
	  "Balloon error: The balloon device is not active yet.", .doc = BALLOON(0)),
	H("PATCH", "/balloon/statistics", "{}", 400, DESER "\"stats_polling_interval_s\" is required",
	  .doc = BALLOON(5)),
	H("PATCH", "/balloon/statistics", "{'stats_polling_interval_s': 1}", 400, "Balloon error: Cannot "
	  "enable or disable statistics after boot; the interval must stay in [1, 86400].",
	  .doc = BALLOON(0)),
	H("PATCH", "/balloon/statistics", "{'stats_polling_interval_s': 0}", 400, "Balloon error: Cannot "
	  "enable or disable statistics after boot; the interval must stay in [1, 86400].",
	  .doc = BALLOON(5)),
	H("PATCH", "/balloon/statistics", "{'stats_polling_interval_s': 86401}", 400, "Balloon error: "
	  "Cannot enable or disable statistics after boot; the interval must stay in [1, 86400].",
	  .doc = BALLOON(5)),
	H("PUT", "/snapshot/create", "{'snapshot_path': '/s'}", 400, DESER "\"mem_file_path\" is required"),
	H("PUT", "/snapshot/create", "{'snapshot_type': 'Half', 'snapshot_path': '/s', "
	  "'mem_file_path': '/m'}", 400, DESER "unknown variant `Half`, expected `Full` or `Diff`"),
	H("PUT", "/snapshot/create", "{'snapshot_path': '/s', 'mem_file_path': '/m', 'mem': 1}", 400,
	  DESER "unknown field \"mem\""),
	H("PUT", "/migrate", "{}", 400, DESER "\"destination_url\" is required"),
	H("PUT", "/migrate", "{'destination_url': 1}", 400, DESER "\"destination_url\": expected a string"),
	/* How the channel is secured: exactly one way, its files checked before connecting. */
	H("PUT", "/migrate", MIGRATE "}", 400, MIG_NEEDS),
	H("PUT", "/migrate", MIGRATE ", 'insecure_plain_tcp': false}", 400, MIG_NEEDS),
	H("PUT", "/migrate", MIGRATE ", 'insecure_plain_tcp': 'yes'}", 400,
	  DESER "\"insecure_plain_tcp\": expected true or false"),
	H("PUT", "/migrate", MIGRATE ", 'tls': {}}", 400, DESER "unknown field \"tls\""),
	H("PUT", "/migrate", MIGRATE ", 'tls_psk_file': '@TMP@/k', 'insecure_plain_tcp': true}", 400,
	  "Migration error: \"tls_psk_file\" and \"insecure_plain_tcp\": true exclude each other"),
	H("PUT", "/migrate", MIGRATE ", 'tls_psk_file': '@TMP@/k', 'tls_x509_dir': '@TMP@'}", 400,
	  "Migration error: \"tls_psk_file\" and \"tls_x509_dir\" exclude each other"),
	H("PUT", "/migrate", MIGRATE ", 'tls_psk_file': '@TMP@/nokey'}", 400,
	  "Migration error: tls_psk_file @TMP@/nokey: No such file or directory"),
	H("PUT", "/migrate", MIGRATE ", 'tls_psk_file': '@TMP@/empty'}", 400,
	  "Migration error: tls_psk_file @TMP@/empty: no identity:hexkey line (psktool's format)"),
	H("PUT", "/migrate", MIGRATE ", 'tls_x509_dir': '@TMP@'}", 400,
	  "Migration error: tls_x509_dir @TMP@/ca-cert.pem: No such file or directory"),

	/* After boot (the router alone): what the rules refuse, what reaches a handler. */
	B("GET", "/", NULL, NULL),
	B("PUT", "/serial", "{}", POST_BOOT),
	B("GET", "/balloon/hinting/status", NULL, NULL),
	B("PATCH", "/balloon/hinting/stop", "{}", NULL),
	B("GET", "/version", NULL, NULL),
	B("GET", "/vm/config", NULL, NULL),
	B("GET", "/machine-config", NULL, NULL),
	B("PUT", "/machine-config", "{'vcpu_count': 2, 'mem_size_mib': 256}", POST_BOOT),
	B("PATCH", "/machine-config", "{'vcpu_count': 2}", POST_BOOT),
	B("PUT", "/boot-source", "{'kernel_image_path': '/k'}", POST_BOOT),
	B("PUT", "/drives/rootfs", ROOT_DRIVE, POST_BOOT),
	B("PATCH", "/drives/rootfs", "{'drive_id': 'rootfs', 'path_on_host': '/x'}", NULL),
	B("PUT", "/network-interfaces/eth0", "{'iface_id': 'eth0', 'host_dev_name': 'tap0'}", POST_BOOT),
	B("PATCH", "/network-interfaces/eth0", "{'iface_id': 'eth0'}", NULL),
	B("PUT", "/entropy", "{}", POST_BOOT),
	B("PUT", "/logger", "{'level': 'Info'}", POST_BOOT),
	B("PUT", "/metrics", "{'metrics_path': '/m'}", POST_BOOT),
	B("PUT", "/actions", "{'action_type': 'InstanceStart'}", NULL),
	B("PATCH", "/vm", "{'state': 'Paused'}", NULL),
	B("PUT", "/mmds/config", "{'network_interfaces': ['eth0']}", POST_BOOT),
	B("GET", "/mmds", NULL, NULL),
	B("PUT", "/mmds", "{}", NULL),
	B("PATCH", "/mmds", "{}", NULL),
	B("PUT", "/vsock", "{'guest_cid': 3, 'uds_path': '/v'}", POST_BOOT),
	B("GET", "/balloon/statistics", NULL, NULL),
	B("PATCH", "/balloon/statistics", "{'stats_polling_interval_s': 1}", NULL),
	B("PUT", "/balloon", "{'amount_mib': 1, 'deflate_on_oom': true}", POST_BOOT),
	B("PATCH", "/balloon", "{'amount_mib': 1}", NULL),
	B("GET", "/balloon", NULL, NULL),
	B("PUT", "/cpu-config", "{}", POST_BOOT),
	B("PUT", "/snapshot/create", "{'snapshot_path': '/s', 'mem_file_path': '/m'}", NULL),
	B("PUT", "/snapshot/load", "{'snapshot_path': '/s', 'mem_file_path': '/m'}", POST_BOOT),
	B("PUT", "/migrate", "{'destination_url': 'tcp:127.0.0.1:1'}", NULL),
	B("GET", "/migrate", NULL, NULL),
	/* the router's other checks come first */
	B("GET", "/migrate", "{}", "GET request cannot have a body."),
	B("PUT", "/drives/bad-id", "{}", BAD_ID),
	B("PUT", "/machine-config", "[1]", DESER "expected a JSON object."),
	B("PUT", "/nothing", "{}", "Invalid request method and/or path: PUT nothing."),
};

/* Firecracker's routes as kiln must keep them: method, segments, boot rule, metrics name. */
static const struct {
	const char *method, *tok0, *tok1;
	enum fc_when when;
	const char *metric;
} expected_routes[] = {
	{ "GET", "", NULL, FC_ANY, "instance_info" },
	{ "GET", "version", NULL, FC_ANY, "vmm_version" },
	{ "GET", "vm", "config", FC_ANY, "vm_config" },
	{ "GET", "machine-config", NULL, FC_ANY, "machine_cfg" },
	{ "PUT", "machine-config", NULL, FC_PRE_BOOT, "machine_cfg" },
	{ "PATCH", "machine-config", NULL, FC_PRE_BOOT, "machine_cfg" },
	{ "PUT", "boot-source", NULL, FC_PRE_BOOT, "boot_source" },
	{ "PUT", "drives", "*", FC_PRE_BOOT, "drive" },
	{ "PATCH", "drives", "*", FC_POST_BOOT, "drive" },
	{ "PUT", "network-interfaces", "*", FC_PRE_BOOT, "network" },
	{ "PATCH", "network-interfaces", "*", FC_POST_BOOT, "network" },
	{ "PUT", "entropy", NULL, FC_PRE_BOOT, "entropy" },
	{ "PUT", "serial", NULL, FC_PRE_BOOT, "serial" },
	{ "PUT", "logger", NULL, FC_PRE_BOOT, "logger" },
	{ "PUT", "metrics", NULL, FC_PRE_BOOT, "metrics" },
	{ "PUT", "actions", NULL, FC_ANY, "actions" },
	{ "PATCH", "vm", NULL, FC_ANY, "vm" },
	{ "PUT", "mmds", "config", FC_PRE_BOOT, "mmds" },
	{ "GET", "mmds", NULL, FC_ANY, "mmds" },
	{ "PUT", "mmds", NULL, FC_ANY, "mmds" },
	{ "PATCH", "mmds", NULL, FC_ANY, "mmds" },
	{ "PUT", "vsock", NULL, FC_PRE_BOOT, "vsock" },
	{ "GET", "balloon", "statistics", FC_ANY, "balloon" },
	{ "GET", "balloon", "hinting", FC_POST_BOOT, "balloon" },
	{ "PATCH", "balloon", "hinting", FC_POST_BOOT, "balloon" },
	{ "PATCH", "balloon", "statistics", FC_POST_BOOT, "balloon" },
	{ "PUT", "balloon", NULL, FC_PRE_BOOT, "balloon" },
	{ "PATCH", "balloon", NULL, FC_POST_BOOT, "balloon" },
	{ "GET", "balloon", NULL, FC_ANY, "balloon" },
	{ "PUT", "cpu-config", NULL, FC_PRE_BOOT, "cpu_cfg" },
	{ "PUT", "snapshot", "create", FC_POST_BOOT, "create_snapshot" },
	{ "PUT", "snapshot", "load", FC_PRE_BOOT, "load_snapshot" },
	{ "PUT", "migrate", NULL, FC_POST_BOOT, "migrate" },
	{ "GET", "migrate", NULL, FC_POST_BOOT, "migrate" },
};

static struct loop *loop;
static char tmp[64];

/* A static CPU template for the other vendor's CPUs than this host's. */
static const char *foreign_template(void)
{
	struct x86_cpu_id host;

	x86_host_cpu_id(&host);
	return strcmp(host.vendor, X86_VENDOR_INTEL) ? "T2" : "T2A";
}

/* @text with @TMP@ and @FOREIGN@ expanded and, when @quotes, ' made " and @BIG@ expanded;
 * malloc'd. */
static char *expand(const char *text, bool quotes)
{
	size_t cap = strlen(text) + 70000, n = 0;
	char *out = malloc(cap);

	assert_non_null(out);
	for (const char *p = text; *p;) {
		if (!strncmp(p, "@TMP@", 5)) {
			n += (size_t)snprintf(out + n, cap - n, "%s", tmp);
			p += 5;
		} else if (!strncmp(p, "@FOREIGN@", 9)) {
			n += (size_t)snprintf(out + n, cap - n, "%s", foreign_template());
			p += 9;
		} else if (quotes && !strncmp(p, "@BIG@", 5)) {
			memset(out + n, 'x', 60000);
			n += 60000;
			p += 5;
		} else {
			out[n++] = quotes && *p == '\'' ? '"' : *p;
			p++;
		}
		assert_true(n < cap);
	}
	out[n] = 0;
	return out;
}

static json_t *load(const char *text)
{
	char *s = expand(text, true);
	json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);

	assert_non_null(j);
	free(s);
	return j;
}

static char *dump(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_non_null(s);
	return s;
}

/* GET /vm/config and GET /mmds, from their handlers (so not counted), as one string. */
static char *state(struct fc_api *api)
{
	struct http_reply config = { 0 }, store = { 0 };
	struct fc_request rq = { .api = api, .reply = &config };
	char *a, *b, *out;

	fc_get_vm_config(&rq);
	rq.reply = &store;
	fc_get_mmds(&rq);
	assert_int_equal(config.status, 200);
	assert_int_equal(store.status, 200);
	a = dump(config.body);
	b = dump(store.body);
	assert_true(asprintf(&out, "%s %s", a, b) > 0);
	free(a);
	free(b);
	json_decref(config.body);
	json_decref(store.body);
	return out;
}

static void write_file(const char *name, const void *data, size_t len)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A kiln snapshot file holding @config (NULL: none) as its configuration. */
static void write_snapshot(const char *name, const char *config)
{
	struct snap_writer w = { 0 };
	char path[128], err[256];
	uint32_t x = 1;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	snap_put(&w, "cpu", 0, 1, &x, sizeof(x));
	if (config)
		snap_put(&w, "config", 0, 1, config, strlen(config));
	assert_int_equal(snap_writer_save(&w, path, err, sizeof(err)), 0);
	snap_writer_free(&w);
}

static int setup(void **state_)
{
	static const char kernel[] = "not a kernel, but a file that opens";

	snprintf(tmp, sizeof(tmp), "/tmp/kiln-test-fc-router-XXXXXX");
	if (!mkdtemp(tmp) || loop_new(&loop))
		return -1;
	write_file("kernel", kernel, sizeof(kernel));
	write_file("disk", (char[4096]){ 0 }, 4096);
	write_file("metrics", "", 0);
	write_file("log", "", 0);
	write_file("empty", "", 0); /* stays empty (the log file gets the log's lines) */
	write_snapshot("noconfig.snap", NULL);
	write_snapshot("notjson.snap", "{\"machine-config\": ");
	write_snapshot("badconfig.snap", "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, "
		       "\"machine-config\": {\"vcpu_count\": 0, \"mem_size_mib\": 128}}");
	return 0;
}

static int teardown(void **state_)
{
	static const char *const names[] = { "kernel", "disk", "metrics", "log", "empty",
					     "noconfig.snap", "notjson.snap", "badconfig.snap" };
	char path[128];

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmp, names[i]);
		unlink(path);
	}
	rmdir(tmp);
	loop_free(loop);
	return 0;
}

static struct fc_api *api_new(const struct row *r)
{
	char metrics[128], err[256];
	struct fc_api_options o = { .id = "test-vm", .loop = loop,
				    .doc = r->doc ? load(r->doc) : json_object() };
	struct fc_api *api;

	snprintf(metrics, sizeof(metrics), "%s/metrics", tmp);
	o.metrics_path = r->metrics_set ? metrics : NULL;
	assert_int_equal(fc_api_start(&o, &api, err, sizeof(err)), 0);
	if (r->mmds) {
		json_t *store = load(r->mmds);

		assert_int_equal(mmds_put(api->mmds, store), 0);
		json_decref(store);
	}
	return api;
}

/* Check that the request was counted once, under @route's name (nothing when NULL), failed
 * or not: the metrics line's "get_api_requests", "put_api_requests", "patch_api_requests". */
static bool counted(struct fc_api *api, const struct fc_route *route, bool failed, size_t i)
{
	static const char *const methods[][2] = { { "GET", "get_api_requests" },
						  { "PUT", "put_api_requests" },
						  { "PATCH", "patch_api_requests" } };
	char path[128], err[256], line[4096], key[64];
	bool ok = true;
	json_t *j;
	ssize_t n;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/metrics", tmp);
	ret = fc_metrics_set_path(api->metrics, path, err, sizeof(err));
	assert_true(ret == 0 || ret == -EEXIST); /* -EEXIST: set by the row, to the same file */
	assert_int_equal(fc_metrics_flush(api->metrics), 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	assert_true(n > 0);
	line[n] = 0;
	assert_non_null(j = json_loads(line, 0, NULL)); /* one line, no more */
	for (unsigned m = 0; m < 3; m++) {
		json_t *o = json_object_get(j, methods[m][1]);
		bool mine = route && !strcmp(route->method, methods[m][0]);

		ok = ok && json_object_size(o) == (mine ? 2u : 0u);
		if (!mine)
			continue;
		snprintf(key, sizeof(key), "%s_count", route->metric);
		ok = ok && json_integer_value(json_object_get(o, key)) == 1;
		snprintf(key, sizeof(key), "%s_fails", route->metric);
		ok = ok && json_integer_value(json_object_get(o, key)) == failed;
	}
	if (!ok)
		print_error("row %zu: metrics %s", i, line);
	json_decref(j);
	return ok;
}

/* Whether @what is @expected (@exact) or holds it; @json: @expected is JSON written with '. */
static bool matches(const char *what, const char *expected, bool exact, bool json)
{
	char *e = expand(expected, json);
	bool ok = what && (exact ? !strcmp(what, e) : strstr(what, e) != NULL);

	free(e);
	return ok;
}

/* One row: whether its outcome is the expected one; *route is the route it reached, if any. */
static bool run_row(const struct row *r, size_t i, const struct fc_route **route)
{
	char *body = expand(r->body ? r->body : "", true), *before = NULL, *after = NULL;
	char err[1024], *json = NULL, *message = NULL;
	size_t len = strlen(body);
	struct fc_routed routed;
	unsigned status;
	bool ok = true;
	int ret;

	ret = fc_route_request(r->method, r->path, body, len, r->booted || r->handler, &routed, err,
			       sizeof(err));
	*route = routed.route;
	if (r->booted) {
		status = ret ? 400 : 0;
		message = ret ? strdup(err) : NULL;
	} else {
		struct fc_api *api = api_new(r);
		struct http_reply reply = { 0 };

		write_file("metrics", "", 0);
		before = state(api);
		if (r->handler) {
			struct fc_request rq = { .api = api, .id = routed.id, .sub = routed.sub,
						 .body = routed.body,
						 .reply = &reply };

			assert_int_equal(ret, 0);
			routed.route->fn(&rq);
		} else {
			struct http_request hr = { .method = r->method, .path = r->path, .body = body,
						   .len = len };

			fc_api_handle(api, &hr, &reply);
			ok = counted(api, routed.route, reply.status >= 400, i) &&
			     reply.deprecation == r->deprecation;
		}
		after = state(api);
		status = reply.status;
		if (json_object_get(reply.body, "fault_message"))
			message = strdup(json_string_value(json_object_get(reply.body, "fault_message")));
		if (reply.body)
			json = dump(reply.body);
		ok = ok && (status < 400 || !strcmp(before, after)) &&
		     (!r->after || matches(after, r->after, false, true)) &&
		     (!r->json || matches(json, r->json, false, true));
		json_decref(reply.body);
		free(reply.text);
		fc_api_stop(api);
	}
	json_decref(routed.body);
	ok = ok && status == r->status && (!r->message || matches(message, r->message, true, false)) &&
	     (!r->part || matches(message, r->part, false, false)) &&
	     (r->message || r->part || !message);
	if (!ok)
		print_error("row %zu: %s %s %s%s\n  got %u %s\n  body %s\n  before %s\n  after  %s\n", i,
			    r->method, r->path, r->body ? r->body : "",
			    r->booted ? " (booted)" : r->handler ? " (handler)" : "", status,
			    message ? message : "", json ? json : "", before ? before : "",
			    after ? after : "");
	free(body);
	free(before);
	free(after);
	free(json);
	free(message);
	return ok;
}

static void test_requests(void **state_)
{
	size_t nr_routes, failures = 0;
	const struct fc_route *routes = fc_routes(&nr_routes);
	bool seen[64][2] = { { false } };

	assert_true(nr_routes <= 64);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct fc_route *route;

		if (!run_row(&rows[i], i, &route))
			failures++;
		if (route)
			seen[route - routes][rows[i].booted || rows[i].handler] = true;
	}
	for (size_t i = 0; i < nr_routes; i++) {
		if (!seen[i][0] || !seen[i][1]) {
			print_error("route %s /%s/%s: no row %s\n", routes[i].method, routes[i].tok0,
				    routes[i].tok1 ? routes[i].tok1 : "",
				    !seen[i][0] ? "before boot" : "after boot");
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void test_route_table(void **state_)
{
	size_t n;
	const struct fc_route *routes = fc_routes(&n);

	assert_int_equal(n, sizeof(expected_routes) / sizeof(expected_routes[0]));
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(routes[i].method, expected_routes[i].method);
		assert_string_equal(routes[i].tok0, expected_routes[i].tok0);
		if (expected_routes[i].tok1)
			assert_string_equal(routes[i].tok1, expected_routes[i].tok1);
		else
			assert_null(routes[i].tok1);
		assert_int_equal(routes[i].when, expected_routes[i].when);
		assert_string_equal(routes[i].metric, expected_routes[i].metric);
		assert_non_null(routes[i].fn);
		/* The boot rule alone. */
		assert_true(!fc_route_refusal(&routes[i], false) == (routes[i].when != FC_POST_BOOT));
		assert_true(!fc_route_refusal(&routes[i], true) == (routes[i].when != FC_PRE_BOOT));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_table),
		cmocka_unit_test(test_requests),
	};
	char err[600];

	/* kiln loads these before its seccomp filters; the tests, before any test. */
	if (http_library_load(err, sizeof(err)) ||
	    mig_tls_library_load(err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}

	return cmocka_run_group_tests(tests, setup, teardown);
}
