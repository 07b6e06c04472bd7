/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for Firecracker's FullVmConfiguration parser (src/fc/config.c, fc_config_parse):
 * a table of documents it refuses, each with the exact message, and a few it accepts, with
 * the configuration they make. No KVM, no files: the parser opens nothing. And
 * fc_config_read_cpu_config, which reads the file --config-file's "cpu-config" names.
 *
 * Documents are written with ' for " (converted before parsing); messages are verbatim. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "kiln/fc.h"
#include "kiln/virtio_rng.h"
#include "kiln/x86.h"

#define BOOT "'boot-source': {'kernel_image_path': 'K'}"
#define MC "'machine-config': {'vcpu_count': 1, 'mem_size_mib': 128"
#define DRIVE(id) "{'drive_id': '" id "', 'path_on_host': '/" id "', 'is_root_device': false}"
#define NIC(id) "{'iface_id': '" id "', 'host_dev_name': 'tap_" id "'}"
#define NOT_IMPL "not implemented by kiln yet (leave it out or null)"
#define NOT_LINK_LOCAL "The MMDS IPv4 address is not link local."
#define NICS_EMPTY "The list of network interface IDs that allow forwarding MMDS requests is empty."
#define NICS_UNKNOWN "The list of network interface IDs provided contains at least one ID that does " \
		     "not correspond to any existing network interface."

struct bad_doc {
	const char *doc;
	const char *message;    /* exact */
	bool substring;         /* message is a part of the error (messages src/cli owns) */
	bool no_boot_source;    /* parse as the API does before InstanceStart */
};

#define ROW(d, m, ...) { .doc = d, .message = m, __VA_ARGS__ }

/* How many devices of class @cls the configuration lists. */
static unsigned count(const struct vm_config *cfg, const struct device_class *cls)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cfg->nr_devices; i++)
		n += cfg->device[i].cls == cls;
	return n;
}

static const struct bad_doc bad_docs[] = {
	/* the root */
	ROW("[]", "expected an object"),
	ROW("{" BOOT ", 'bogus': 1}", "unknown field \"bogus\""),
	ROW("{}", "\"boot-source\" is required"),
	ROW("{'boot-source': null}", "\"boot-source\" is required"),
	/* cpu-config: a custom CPU template; a path only in --config-file, read at its load */
	ROW("{" BOOT ", 'cpu-config': '/t.json'}", "\"cpu-config\": \"/t.json\": a template "
	  "file's path is read only when --config-file is loaded"),
	ROW("{" BOOT ", 'cpu-config': [1]}", "\"cpu-config\": expected a CPU template (an object) "
	  "or, in --config-file, its file's path"),
	ROW("{" BOOT ", 'cpu-config': {'vcpu_features': []}}", "\"cpu-config\": unknown field "
	  "`vcpu_features`, expected one of `kvm_capabilities`, `cpuid_modifiers`, `msr_modifiers`"),
	ROW("{" BOOT ", 'cpu-config': {'msr_modifiers': [{'addr': '0x10a', 'bitmap': '0b2'}]}}",
	  "\"cpu-config\": \"msr_modifiers\"[0]: \"bitmap\": Failed to parse string [0b2] as a "
	  "bitmap - unknown character: '2'"),
	ROW("{" BOOT ", 'memory-hotplug': {'total_size_mib': 1}}", "\"memory-hotplug\": " NOT_IMPL),
	ROW("{" BOOT ", 'pmem': [{'id': 'p'}]}", "\"pmem\": " NOT_IMPL),
	/* boot-source */
	ROW("{'boot-source': 'K'}", "\"boot-source\": expected an object"),
	ROW("{'boot-source': {'boot_args': 'x'}}", "\"boot-source\": \"kernel_image_path\" is required"),
	ROW("{'boot-source': {'kernel_image_path': 7}}",
	  "\"boot-source\": \"kernel_image_path\": expected a string"),
	ROW("{'boot-source': {'kernel_image_path': 'K', 'initrd': 'I'}}",
	  "\"boot-source\": unknown field \"initrd\""),
	/* machine-config */
	ROW("{" BOOT ", 'machine-config': []}", "\"machine-config\": expected an object"),
	ROW("{" BOOT ", 'machine-config': {'vcpu_count': 1}}",
	  "\"machine-config\": \"mem_size_mib\" is required"),
	ROW("{" BOOT ", 'machine-config': {'mem_size_mib': 128}}",
	  "\"machine-config\": \"vcpu_count\" is required"),
	ROW("{" BOOT ", 'machine-config': {'vcpu_count': '2', 'mem_size_mib': 128}}",
	  "\"machine-config\": \"vcpu_count\": expected an integer"),
	ROW("{" BOOT ", 'machine-config': {'vcpu_count': 1.5, 'mem_size_mib': 128}}",
	  "\"machine-config\": \"vcpu_count\": expected an integer"),
	ROW("{" BOOT ", 'machine-config': {'vcpu_count': 0, 'mem_size_mib': 128}}",
	  "\"machine-config\": \"vcpu_count\": 0 is not in [1, 32]"),
	ROW("{" BOOT ", 'machine-config': {'vcpu_count': 33, 'mem_size_mib': 128}}",
	  "\"machine-config\": \"vcpu_count\": 33 is not in [1, 32]"),
	ROW("{" BOOT ", 'machine-config': {'vcpu_count': 1, 'mem_size_mib': 0}}",
	  "\"machine-config\": \"mem_size_mib\": 0: " FC_ERR_MEM_SIZE),
	ROW("{" BOOT ", 'machine-config': {'vcpu_count': 1, 'mem_size_mib': 1073741825}}",
	  "\"machine-config\": \"mem_size_mib\": 1073741825 is not a size in MiB"),
	ROW("{" BOOT ", " MC ", 'smt': 1}}", "\"machine-config\": \"smt\": expected true or false"),
	ROW("{" BOOT ", 'machine-config': {'vcpu_count': 3, 'mem_size_mib': 128, 'smt': true}}",
	  "\"machine-config\": \"vcpu_count\": 3 with \"smt\": true: " FC_ERR_VCPUS),
	ROW("{" BOOT ", 'machine-config': {'vcpu_count': 31, 'mem_size_mib': 128, 'smt': true}}",
	  "\"machine-config\": \"vcpu_count\": 31 with \"smt\": true: " FC_ERR_VCPUS),
	ROW("{" BOOT ", " MC ", 'cpu_template': 'T3'}}",
	  "\"machine-config\": \"cpu_template\": unknown variant `T3`, expected one of `C3`, `T2`, "
	  "`T2S`, `None`, `T2CL`, `T2A`"),
	ROW("{" BOOT ", " MC ", 'cpu_template': 't2'}}",
	  "\"machine-config\": \"cpu_template\": unknown variant `t2`, expected one of `C3`, `T2`, "
	  "`T2S`, `None`, `T2CL`, `T2A`"),
	ROW("{" BOOT ", " MC ", 'cpu_template': 2}}",
	  "\"machine-config\": \"cpu_template\": expected a string"),
	ROW("{" BOOT ", 'machine-config': {'vcpu_count': 1, 'mem_size_mib': 127, 'huge_pages': '2M'}}",
	  "\"machine-config\": \"mem_size_mib\": 127: " FC_ERR_MEM_SIZE " (2 MiB huge pages)"),
	ROW("{" BOOT ", " MC ", 'huge_pages': '2M'}, 'balloon': {'amount_mib': 1, 'deflate_on_oom': true}}",
	  "balloon: not with huge pages (a 4 KiB page cannot be given back out of a 2 MiB one)"),
	ROW("{" BOOT ", " MC ", 'turbo': true}}", "\"machine-config\": unknown field \"turbo\""),
	/* drives */
	ROW("{" BOOT ", 'drives': {}}", "\"drives\": expected an array"),
	ROW("{" BOOT ", 'drives': [" DRIVE("a") ", " DRIVE("b") ", " DRIVE("c") ", " DRIVE("d") ", "
	  DRIVE("e") ", " DRIVE("f") ", " DRIVE("g") ", " DRIVE("h") ", " DRIVE("i") "]}",
	  "\"drives\": 9 entries, more than 8"),
	ROW("{" BOOT ", 'drives': ['a']}", "\"drives\"[0]: expected an object"),
	ROW("{" BOOT ", 'drives': [{'path_on_host': '/x', 'is_root_device': false}]}",
	  "\"drives\"[0]: \"drive_id\" is required"),
	ROW("{" BOOT ", 'drives': [{'drive_id': 'a', 'path_on_host': '/x'}]}",
	  "\"drives\"[0]: \"is_root_device\" is required"),
	ROW("{" BOOT ", 'drives': [" DRIVE("a") ", {'drive_id': 'b', 'is_root_device': false}]}",
	  "\"drives\"[1]: \"path_on_host\" is required"),
	ROW("{" BOOT ", 'drives': [{'drive_id': 'a', 'path_on_host': '/x', 'is_root_device': 'yes'}]}",
	  "\"drives\"[0]: \"is_root_device\": expected true or false"),
	ROW("{" BOOT ", 'drives': [{'drive_id': 'a', 'path_on_host': '/x', 'is_root_device': false, "
	  "'size': 1}]}", "\"drives\"[0]: unknown field \"size\""),
	ROW("{" BOOT ", 'drives': [{'drive_id': 'bad id', 'path_on_host': '/x', 'is_root_device': false}]}",
	  "\"drives\"[0]: \"drive_id\": \"bad id\" is not 1-64 of A-Z a-z 0-9 _"),
	ROW("{" BOOT ", 'drives': [{'drive_id': '', 'path_on_host': '/x', 'is_root_device': false}]}",
	  "\"drives\"[0]: \"drive_id\": \"\" is not 1-64 of A-Z a-z 0-9 _"),
	ROW("{" BOOT ", 'drives': [{'drive_id': 'a', 'path_on_host': '/x', 'is_root_device': true}, "
	  "{'drive_id': 'b', 'path_on_host': '/y', 'is_root_device': true}]}",
	  "\"drives\": A root block device already exists! (\"a\" and \"b\" are both root devices)"),
	ROW("{" BOOT ", 'drives': [{'drive_id': 'a', 'path_on_host': '/x', 'is_root_device': false, "
	  "'cache_type': 'Fast'}]}", "\"drives\"[0]: \"cache_type\": \"Fast\" is not Unsafe or Writeback"),
	ROW("{" BOOT ", 'drives': [{'drive_id': 'a', 'path_on_host': '/x', 'is_root_device': false, "
	  "'io_engine': 'Fast'}]}", "\"drives\"[0]: \"io_engine\": \"Fast\" is not Sync or Async"),
	ROW("{" BOOT ", 'drives': [{'drive_id': 'a', 'path_on_host': '/x', 'is_root_device': false, "
	  "'rate_limiter': {'bandwidth': {'size': 1, 'refill_time': 1, 'burst': 2}}}]}",
	  "\"drives\"[0]: \"rate_limiter\": \"bandwidth\": unknown field \"burst\""),
	ROW("{" BOOT ", 'drives': [{'drive_id': 'a', 'path_on_host': '/x', 'is_root_device': false, "
	  "'rate_limiter': {'ops': {'size': 1, 'one_time_burst': -1, 'refill_time': 1}}}]}",
	  "\"drives\"[0]: \"rate_limiter\": \"ops\": \"one_time_burst\": -1 is negative"),
	ROW("{" BOOT ", 'drives': [{'drive_id': 'a', 'path_on_host': '/x', 'is_root_device': false, "
	  "'rate_limiter': []}]}", "\"drives\"[0]: \"rate_limiter\": expected an object"),
	ROW("{" BOOT ", 'drives': [{'drive_id': 'a', 'is_root_device': false, 'socket': '/s'}]}",
	  "\"drives\"[0]: \"socket\": " NOT_IMPL),
	/* network-interfaces */
	ROW("{" BOOT ", 'network-interfaces': 'eth0'}", "\"network-interfaces\": expected an array"),
	ROW("{" BOOT ", 'network-interfaces': [" NIC("a") ", " NIC("b") ", " NIC("c") ", " NIC("d") ", "
	  NIC("e") ", " NIC("f") ", " NIC("g") ", " NIC("h") ", " NIC("i") "]}",
	  "\"network-interfaces\": 9 entries, more than 8"),
	ROW("{" BOOT ", 'network-interfaces': [{'iface_id': 'eth0'}]}",
	  "\"network-interfaces\"[0]: \"host_dev_name\" is required"),
	ROW("{" BOOT ", 'network-interfaces': [{'host_dev_name': 'tap0'}]}",
	  "\"network-interfaces\"[0]: \"iface_id\" is required"),
	ROW("{" BOOT ", 'network-interfaces': [" NIC("eth0") ", {'iface_id': 'eth1', 'host_dev_name': 'tap1', "
	  "'queues': 2}]}", "\"network-interfaces\"[1]: unknown field \"queues\""),
	ROW("{" BOOT ", 'network-interfaces': [{'iface_id': 'eth-0', 'host_dev_name': 'tap0'}]}",
	  "\"network-interfaces\"[0]: \"iface_id\": \"eth-0\" is not 1-64 of A-Z a-z 0-9 _"),
	ROW("{" BOOT ", 'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0', "
	  "'guest_mac': 'zz:00:00:00:00:00'}]}",
	  "\"network-interfaces\"[0]: \"guest_mac\": \"zz:00:00:00:00:00\" is not a unicast MAC address "
	  "like 06:00:AC:10:00:02"),
	ROW("{" BOOT ", 'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0', "
	  "'guest_mac': '01:00:00:00:00:01'}]}",
	  "\"network-interfaces\"[0]: \"guest_mac\": \"01:00:00:00:00:01\" is not a unicast MAC address "
	  "like 06:00:AC:10:00:02"),
	ROW("{" BOOT ", 'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0', 'mtu': 67}]}",
	  "\"network-interfaces\"[0]: \"mtu\": not an MTU in [68, 65535]"),
	ROW("{" BOOT ", 'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0', 'mtu': '9000'}]}",
	  "\"network-interfaces\"[0]: \"mtu\": not an MTU in [68, 65535]"),
	ROW("{" BOOT ", 'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0', "
	  "'rx_rate_limiter': {'ops': 5}}]}",
	  "\"network-interfaces\"[0]: \"rx_rate_limiter\": \"ops\": expected an object"),
	ROW("{" BOOT ", 'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0', "
	  "'tx_rate_limiter': {'bandwidth': {'refill_time': 1}}}]}",
	  "\"network-interfaces\"[0]: \"tx_rate_limiter\": \"bandwidth\": \"size\" is required"),
	/* entropy */
	ROW("{" BOOT ", 'entropy': []}", "\"entropy\": expected an object"),
	ROW("{" BOOT ", 'entropy': {'rate_limiter': {'ops': {'size': 1, 'refill_time': 1.5}}}}",
	  "\"entropy\": \"rate_limiter\": \"ops\": \"refill_time\": expected an integer"),
	ROW("{" BOOT ", 'entropy': {'rate': 1}}", "\"entropy\": unknown field \"rate\""),
	/* logger and metrics */
	ROW("{" BOOT ", 'logger': {'level': 'Chatty'}}",
	  "\"logger\": \"level\": \"Chatty\" is not Error, Warning, Info, Debug, Trace or Off"),
	ROW("{" BOOT ", 'logger': {'show_level': 'yes'}}",
	  "\"logger\": \"show_level\": expected true or false"),
	ROW("{" BOOT ", 'logger': {'module': 5}}", "\"logger\": \"module\": expected a string"),
	ROW("{" BOOT ", 'logger': {'log_path': 1}}", "\"logger\": \"log_path\": expected a string"),
	ROW("{" BOOT ", 'metrics': {'path': '/m'}}", "\"metrics\": unknown field \"path\""),
	ROW("{" BOOT ", 'metrics': {}}", "\"metrics\": \"metrics_path\" is required"),
	/* mmds-config */
	ROW("{" BOOT ", 'mmds-config': {}}", "\"mmds-config\": \"network_interfaces\" is required"),
	ROW("{" BOOT ", 'network-interfaces': [" NIC("eth0") "], 'mmds-config': {'network_interfaces': "
	  "['eth0'], 'version': 'V3'}}",
	  "\"mmds-config\": \"version\": unknown variant `V3`, expected `V1` or `V2`"),
	ROW("{" BOOT ", 'mmds-config': {'network_interfaces': []}}", NICS_EMPTY),
	ROW("{" BOOT ", 'mmds-config': {'network_interfaces': 'eth0'}}", NICS_EMPTY),
	ROW("{" BOOT ", 'mmds-config': {'network_interfaces': ['eth9']}}", NICS_UNKNOWN),
	ROW("{" BOOT ", 'network-interfaces': [" NIC("eth0") "], 'mmds-config': {'network_interfaces': "
	  "['eth0', 'eth1']}}", NICS_UNKNOWN),
	ROW("{" BOOT ", 'network-interfaces': [" NIC("eth0") "], 'mmds-config': {'network_interfaces': "
	  "[0]}}", NICS_UNKNOWN),
	ROW("{" BOOT ", 'mmds-config': {'network_interfaces': ['x'], 'ipv4_address': '10.0.0.1'}}",
	  NOT_LINK_LOCAL),
	ROW("{" BOOT ", 'mmds-config': {'network_interfaces': ['x'], 'ipv4_address': '169.254.0.1'}}",
	  NOT_LINK_LOCAL),
	ROW("{" BOOT ", 'mmds-config': {'network_interfaces': ['x'], 'ipv4_address': '169.254.255.1'}}",
	  NOT_LINK_LOCAL),
	ROW("{" BOOT ", 'mmds-config': {'network_interfaces': ['x'], 'ipv4_address': 'metadata'}}",
	  NOT_LINK_LOCAL),
	ROW("{" BOOT ", 'mmds-config': {'network_interfaces': ['x'], 'imds_compat': 'yes'}}",
	  "\"mmds-config\": \"imds_compat\": expected true or false"),
	/* vsock */
	ROW("{" BOOT ", 'vsock': {'guest_cid': 3}}", "\"vsock\": \"uds_path\" is required"),
	ROW("{" BOOT ", 'vsock': {'uds_path': '/v'}}", "\"vsock\": \"guest_cid\" is required"),
	ROW("{" BOOT ", 'vsock': {'guest_cid': 2, 'uds_path': '/v'}}",
	  "\"vsock\": \"guest_cid\": 2 is not in [3, 4294967294]"),
	ROW("{" BOOT ", 'vsock': {'guest_cid': 4294967295, 'uds_path': '/v'}}",
	  "\"vsock\": \"guest_cid\": 4294967295 is not in [3, 4294967294]"),
	ROW("{" BOOT ", 'vsock': {'guest_cid': 3, 'uds_path': ''}}", "\"vsock\": \"uds_path\" is empty"),
	ROW("{" BOOT ", 'vsock': {'guest_cid': 3, 'uds_path': '/v', 'port': 1}}",
	  "\"vsock\": unknown field \"port\""),
	/* balloon */
	ROW("{" BOOT ", 'balloon': {'amount_mib': 1}}", "\"balloon\": \"deflate_on_oom\" is required"),
	ROW("{" BOOT ", 'balloon': {'amount_mib': -1, 'deflate_on_oom': true}}",
	  "\"balloon\": \"amount_mib\": -1 is not in [0, 128] (the guest's memory)"),
	ROW("{" BOOT ", 'balloon': {'amount_mib': 129, 'deflate_on_oom': true}}",
	  "\"balloon\": \"amount_mib\": 129 is not in [0, 128] (the guest's memory)"),
	ROW("{" BOOT ", " MC "}, 'balloon': {'amount_mib': 129, 'deflate_on_oom': true}}",
	  "\"balloon\": \"amount_mib\": 129 is not in [0, 128] (the guest's memory)"),
	ROW("{" BOOT ", 'balloon': {'amount_mib': 1, 'deflate_on_oom': true, 'free_page_hinting': 'on'}}",
	  "\"balloon\": \"free_page_hinting\": expected true or false"),
	ROW("{" BOOT ", 'balloon': {'amount_mib': 1, 'deflate_on_oom': true, 'stats_polling_interval_s': -1}}",
	  "\"balloon\": \"stats_polling_interval_s\": -1 is not in [0, 86400]"),
	ROW("{" BOOT ", 'balloon': {'amount_mib': 1, 'deflate_on_oom': true, "
	  "'stats_polling_interval_s': 86401}}",
	  "\"balloon\": \"stats_polling_interval_s\": 86401 is not in [0, 86400]"),
	/* the API's partial documents: no boot source needed, the rest still checked */
	ROW("{'machine-config': {'vcpu_count': 0, 'mem_size_mib': 128}}",
	  "\"machine-config\": \"vcpu_count\": 0 is not in [1, 32]", .no_boot_source = true),
	/* the checks every front end shares (vm_config_check in src/core/config.c) */
	ROW("{'drives': [" DRIVE("a") ", " DRIVE("a") "]}", "disk: id \"a\" is already disk0's",
	  .no_boot_source = true),
	ROW("{" BOOT ", 'drives': [" DRIVE("a") ", " DRIVE("b") ", " DRIVE("c") ", " DRIVE("d") ", "
	  DRIVE("e") "], 'network-interfaces': [" NIC("a") ", " NIC("b") ", " NIC("c") "], 'entropy': {}}",
	  "rng: 9 devices, more than the 8 virtio slots"),
	ROW("{" BOOT ", 'network-interfaces': [{'iface_id': 'a', 'host_dev_name': 't0'}, "
	  "{'iface_id': 'b', 'host_dev_name': 't0'}]}",
	  "\"network-interfaces\"[1]: \"host_dev_name\": Could not create the network device: "
	  "tap t0 is used by \"a\" already"),
	ROW("{" BOOT ", 'network-interfaces': [{'iface_id': 'a', 'host_dev_name': 't0', "
	  "'guest_mac': '06:00:00:00:00:01'}, {'iface_id': 'b', 'host_dev_name': 't1', "
	  "'guest_mac': '06:00:00:00:00:01'}]}",
	  "\"network-interfaces\"[1]: \"guest_mac\": The MAC address is already in use: "
	  "06:00:00:00:00:01"),
};

/* @text with ' made ", for the parser; the caller frees it. */
static char *unquote(const char *text)
{
	char *s = strdup(text);

	assert_non_null(s);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	return s;
}

/* Parse document @text (' for "): 0 or -EINVAL, the message in @err, the result in @c (the
 * document in *root; the caller releases both). */
static int parse(const char *text, bool need_boot_source, json_t **root, struct fc_config *c,
		 char *err, size_t errlen)
{
	char *s = unquote(text);
	json_error_t e;

	*root = json_loads(s, JSON_REJECT_DUPLICATES, &e);
	if (!*root)
		fail_msg("bad test document %s: %s", s, e.text);
	free(s);
	err[0] = 0;
	return fc_config_parse(*root, need_boot_source, c, err, errlen);
}

static void test_refused(void **state)
{
	unsigned failures = 0;

	for (size_t i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++) {
		const struct bad_doc *b = &bad_docs[i];
		struct fc_config c;
		json_t *root;
		char err[700];
		int ret = parse(b->doc, !b->no_boot_source, &root, &c, err, sizeof(err));
		bool ok = ret == -EINVAL &&
			  (b->substring ? strstr(err, b->message) != NULL : !strcmp(err, b->message));

		if (!ok) {
			print_error("row %zu: %s\n  returned %d, message:  %s\n  expected: %s\n", i,
				    b->doc, ret, err, b->message);
			failures++;
		}
		fc_config_release(&c);
		fc_config_release(&c); /* twice is fine */
		json_decref(root);
	}
	assert_int_equal(failures, 0);
}

/* Firecracker's defaults: 1 vCPU, 128 MiB, its command line, virtio-mmio, nothing else. */
static void test_defaults(void **state)
{
	struct fc_config c;
	json_t *root;
	char err[700];

	assert_int_equal(parse("{}", false, &root, &c, err, sizeof(err)), 0);
	assert_null(c.cfg.kernel_path);
	assert_int_equal(c.cfg.nr_cpus, 1);
	assert_int_equal(c.cfg.mem_bytes, 128ull << 20);
	assert_int_equal(c.cfg.transport, VM_TRANSPORT_MMIO);
	assert_string_equal(c.cfg.cmdline, "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 "
			    "i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd");
	assert_int_equal(count(&c.cfg, &virtio_rng_class), 0);
	assert_false(c.cfg.track_dirty_pages);
	assert_false(c.level_set);
	assert_null(c.log_path);
	assert_null(c.metrics_path);
	assert_int_equal(c.mmds_nics, 0);
	fc_config_release(&c);
	json_decref(root);

	/* Every key null (as Firecracker's GET /vm/config writes them), pmem an empty list. */
	assert_int_equal(parse("{" BOOT ", 'machine-config': null, 'drives': null, "
			       "'network-interfaces': null, 'entropy': null, 'logger': null, "
			       "'metrics': null, 'vsock': null, 'balloon': null, 'mmds-config': null, "
			       "'cpu-config': null, 'memory-hotplug': null, 'pmem': []}",
			       true, &root, &c, err, sizeof(err)), 0);
	assert_string_equal(c.cfg.kernel_path, "K");
	assert_int_equal(c.cfg.nr_cpus, 1);
	assert_int_equal(count(&c.cfg, &virtio_rng_class), 0);
	fc_config_release(&c);
	json_decref(root);
}

/* Everything but the devices: machine, boot source, logger, metrics, MMDS's options. */
static void test_machine_boot_and_services(void **state)
{
	struct fc_config c;
	json_t *root;
	char err[700];

	assert_int_equal(parse("{'boot-source': {'kernel_image_path': '/k', 'initrd_path': '/i', "
			       "'boot_args': 'console=ttyS0'}, 'machine-config': {'vcpu_count': 32, "
			       "'mem_size_mib': 2048, 'smt': false, 'track_dirty_pages': true, "
			       "'cpu_template': 'None', 'huge_pages': 'None'}, 'entropy': {}, "
			       "'logger': {'level': 'debug', 'log_path': '/l', 'show_level': false, "
			       "'show_log_origin': true, 'module': 'virtio::blk'}, "
			       "'metrics': {'metrics_path': '/m'}, "
			       "'network-interfaces': [" NIC("eth0") "], 'mmds-config': "
			       "{'network_interfaces': ['eth0'], 'version': 'V2', "
			       "'ipv4_address': '169.254.170.2', 'imds_compat': true}}",
			       true, &root, &c, err, sizeof(err)), 0);
	assert_string_equal(c.cfg.kernel_path, "/k");
	assert_string_equal(c.cfg.initrd_path, "/i");
	assert_string_equal(c.cfg.cmdline, "console=ttyS0"); /* no root device: nothing appended */
	assert_int_equal(c.cfg.nr_cpus, 32);
	assert_false(c.cfg.smt);
	assert_int_equal(c.cfg.cpu_template, X86_CPU_TEMPLATE_NONE);
	assert_int_equal(c.cfg.mem_bytes, 2048ull << 20);
	assert_true(c.cfg.track_dirty_pages);
	assert_int_equal(count(&c.cfg, &virtio_rng_class), 1);
	assert_true(c.level_set);
	assert_int_equal(c.level, LOG_DEBUG);
	assert_string_equal(c.log_path, "/l");
	assert_int_equal(c.log_show_level, 0);
	assert_int_equal(c.log_show_origin, 1);
	assert_string_equal(c.log_module, "virtio::blk");
	assert_string_equal(c.metrics_path, "/m");
	assert_true(c.mmds_v2);
	assert_true(c.mmds_imds_compat);
	assert_int_equal(c.mmds_ip, inet_addr("169.254.170.2"));
	fc_config_release(&c);
	json_decref(root);

	/* SMT with an even count or one vCPU, and each static template by its name (whether it
	 * fits the host is InstanceStart's question). */
	static const struct {
		const char *machine;
		unsigned cpus;
		bool smt;
		enum x86_cpu_template tmpl;
	} machines[] = {
		{ "'vcpu_count': 2, 'mem_size_mib': 128, 'smt': true, 'cpu_template': 'T2'", 2, true,
		  X86_CPU_TEMPLATE_T2 },
		{ "'vcpu_count': 1, 'mem_size_mib': 128, 'smt': true", 1, true, X86_CPU_TEMPLATE_NONE },
		{ "'vcpu_count': 32, 'mem_size_mib': 128, 'smt': true, 'cpu_template': 'T2A'", 32, true,
		  X86_CPU_TEMPLATE_T2A },
		{ "'vcpu_count': 3, 'mem_size_mib': 128, 'smt': false, 'cpu_template': 'C3'", 3, false,
		  X86_CPU_TEMPLATE_C3 },
		{ "'vcpu_count': 3, 'mem_size_mib': 128, 'smt': null, 'cpu_template': 'T2S'", 3, false,
		  X86_CPU_TEMPLATE_T2S },
		{ "'vcpu_count': 4, 'mem_size_mib': 128, 'cpu_template': 'T2CL'", 4, false,
		  X86_CPU_TEMPLATE_T2CL },
		{ "'vcpu_count': 4, 'mem_size_mib': 128, 'cpu_template': null", 4, false,
		  X86_CPU_TEMPLATE_NONE },
	};
	char doc[300];

	for (size_t i = 0; i < sizeof(machines) / sizeof(machines[0]); i++) {
		snprintf(doc, sizeof(doc), "{" BOOT ", 'machine-config': {%s}}", machines[i].machine);
		assert_int_equal(parse(doc, true, &root, &c, err, sizeof(err)), 0);
		assert_int_equal(c.cfg.nr_cpus, machines[i].cpus);
		assert_int_equal(c.cfg.smt, machines[i].smt);
		assert_int_equal(c.cfg.cpu_template, machines[i].tmpl);
		fc_config_release(&c);
		json_decref(root);
	}

	/* A custom template replaces the static one, wherever either is (Firecracker sets it
	 * after the machine configuration). */
	assert_int_equal(parse("{" BOOT ", 'cpu-config': {'kvm_capabilities': ['!56'], "
			       "'cpuid_modifiers': [{'leaf': '0x1', 'subleaf': '0x0', 'flags': 0, "
			       "'modifiers': [{'register': 'ecx', 'bitmap': '0b0'}]}]}, "
			       "'machine-config': {'vcpu_count': 2, 'mem_size_mib': 128, "
			       "'cpu_template': 'T2'}}", true, &root, &c, err, sizeof(err)), 0);
	assert_int_equal(c.cfg.cpu_template, X86_CPU_TEMPLATE_NONE);
	assert_non_null(c.cfg.custom_template);
	assert_ptr_equal(c.cfg.custom_template, c.cpu_config);
	assert_int_equal(c.cfg.custom_template->nr_cpuid, 1);
	assert_int_equal(c.cfg.custom_template->cpuid[0].mask, 1);
	assert_int_equal(c.cfg.custom_template->nr_caps, 1);
	fc_config_release(&c);
	assert_null(c.cfg.custom_template);
	json_decref(root);

	/* MMDS V1 at its default address; levels in any case. */
	assert_int_equal(parse("{" BOOT ", 'logger': {'level': 'WARNING'}, 'network-interfaces': ["
			       NIC("eth0") "], 'mmds-config': {'network_interfaces': ['eth0']}}",
			       true, &root, &c, err, sizeof(err)), 0);
	assert_int_equal(c.level, LOG_WARN);
	assert_false(c.mmds_v2);
	assert_false(c.mmds_imds_compat);
	assert_int_equal(c.mmds_ip, inet_addr(MMDS_DEFAULT_ADDR));
	fc_config_release(&c);
	json_decref(root);
}

/* The devices: the root drive first and its root= on the command line, the NICs that reach
 * MMDS, vsock, balloon. (The one place that reads struct vm_config's device fields.) */
static void test_devices(void **state)
{
	static const struct {
		const char *drives, *cmdline;
	} roots[] = {
		{ "[" DRIVE("data") ", {'drive_id': 'rootfs', 'path_on_host': '/r', 'is_root_device': true, "
		  "'is_read_only': true, 'io_engine': 'Async', 'cache_type': 'Writeback'}]",
		  "console=ttyS0 root=/dev/vda ro" },
		{ "[" DRIVE("data") ", {'drive_id': 'rootfs', 'path_on_host': '/r', 'is_root_device': true, "
		  "'partuuid': '0eaa91a0-01'}]", "console=ttyS0 root=PARTUUID=0eaa91a0-01 rw" },
		{ "[{'drive_id': 'data', 'path_on_host': '/data', 'is_root_device': false, "
		  "'partuuid': 'ignored'}, {'drive_id': 'rootfs', 'path_on_host': '/r', "
		  "'is_root_device': true, 'io_engine': 'Sync', 'rate_limiter': null, 'socket': null}]",
		  "console=ttyS0 root=/dev/vda rw" },
	};
	struct fc_config c;
	json_t *root;
	char err[700], doc[1024];

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		snprintf(doc, sizeof(doc), "{'boot-source': {'kernel_image_path': 'K', 'boot_args': "
			 "'console=ttyS0'}, 'drives': %s}", roots[i].drives);
		assert_int_equal(parse(doc, true, &root, &c, err, sizeof(err)), 0);
		assert_string_equal(c.cfg.cmdline, roots[i].cmdline);
		assert_int_equal(c.nr_disks, 2);
		assert_int_equal(count(&c.cfg, &virtio_blk_class), 2);
		assert_ptr_equal(c.cfg.device[0].config, &c.disk[0]);
		assert_string_equal(c.disk[0].id, "rootfs");
		assert_string_equal(c.disk[0].path, "/r");
		assert_int_equal(c.disk[0].readonly, i == 0);
		assert_int_equal(c.disk[0].engine, i == 0 ? BLOCK_ENGINE_IO_URING : BLOCK_ENGINE_SYNC);
		assert_int_equal(c.disk[0].cache_unsafe, i != 0); /* Writeback, or Unsafe by default */
		assert_string_equal(c.disk[1].id, "data");
		assert_string_equal(c.disk[1].path, "/data");
		fc_config_release(&c);
		json_decref(root);
	}

	/* Without boot_args: Firecracker's default line, then root=. */
	assert_int_equal(parse("{" BOOT ", 'drives': [{'drive_id': 'r', 'path_on_host': '/r', "
			       "'is_root_device': true}]}", true, &root, &c, err, sizeof(err)), 0);
	assert_string_equal(c.cfg.cmdline, "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 "
			    "i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd root=/dev/vda rw");
	fc_config_release(&c);
	json_decref(root);

	assert_int_equal(parse("{" BOOT ", 'network-interfaces': [" NIC("eth0") ", {'iface_id': 'eth1', "
			       "'host_dev_name': 'tap1', 'guest_mac': '06:00:AC:10:00:02', 'mtu': 9000}, "
			       NIC("eth2") "], 'mmds-config': {'network_interfaces': ['eth2', 'eth1']}, "
			       "'vsock': {'guest_cid': 4294967294, 'uds_path': '/v', 'vsock_id': 'x'}, "
			       "'balloon': {'amount_mib': 128, 'deflate_on_oom': true, "
			       "'stats_polling_interval_s': 5, 'free_page_reporting': true}}",
			       true, &root, &c, err, sizeof(err)), 0);
	assert_int_equal(c.nr_nets, 3);
	assert_int_equal(count(&c.cfg, &virtio_net_class), 3);
	assert_int_equal(count(&c.cfg, &virtio_vsock_class), 1);
	assert_int_equal(count(&c.cfg, &virtio_balloon_class), 1);
	assert_string_equal(c.net[0].id, "eth0");
	assert_string_equal(c.net[0].tap, "tap_eth0");
	assert_int_equal(c.net[0].kind, NET_TAP);
	assert_false(c.net[0].mac_set);
	assert_true(c.net[1].mac_set);
	assert_memory_equal(c.net[1].mac, ((uint8_t[]){ 0x06, 0, 0xac, 0x10, 0, 2 }), 6);
	assert_int_equal(c.net[0].mtu, 0);
	assert_int_equal(c.net[1].mtu, 9000);
	assert_int_equal(c.mmds_nics, 0x6); /* eth1 and eth2 */
	assert_int_equal(c.vsock.guest_cid, 4294967294u);
	assert_string_equal(c.vsock.uds_path, "/v");
	assert_int_equal(c.balloon.target_bytes, 128ull << 20);
	assert_true(c.balloon.deflate_on_oom);
	assert_true(c.balloon.free_page_reporting);
	assert_int_equal(c.balloon.stats_interval_s, 5);
	fc_config_release(&c);
	json_decref(root);
}

/* Rate limiters on a drive, a NIC's two directions and the entropy device. */
static void test_rate_limiters(void **state)
{
	struct fc_config c;
	json_t *root;
	char err[700];

	assert_int_equal(parse("{" BOOT ", 'drives': [{'drive_id': 'r', 'path_on_host': '/r', "
			       "'is_root_device': true, 'rate_limiter': {'bandwidth': {'size': 1048576, "
			       "'one_time_burst': 4096, 'refill_time': 1000}, 'ops': null}}], "
			       "'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0', "
			       "'rx_rate_limiter': {'ops': {'size': 100, 'refill_time': 10}}, "
			       "'tx_rate_limiter': {}}], 'entropy': {'rate_limiter': {'bandwidth': "
			       "{'size': 0, 'refill_time': 5}}}}", true, &root, &c, err, sizeof(err)), 0);
	assert_int_equal(c.disk[0].limit.bandwidth.size, 1048576);
	assert_int_equal(c.disk[0].limit.bandwidth.one_time_burst, 4096);
	assert_int_equal(c.disk[0].limit.bandwidth.refill_ms, 1000);
	assert_int_equal(c.disk[0].limit.ops.size, 0);
	assert_true(rate_limit_enabled(&c.disk[0].limit));
	assert_int_equal(c.net[0].rx_limit.ops.size, 100);
	assert_int_equal(c.net[0].rx_limit.ops.refill_ms, 10);
	assert_false(rate_limit_enabled(&c.net[0].tx_limit));
	assert_false(rate_limit_enabled(&c.rng.limit)); /* size 0: no limit, as Firecracker */
	assert_int_equal(c.rng.limit.bandwidth.refill_ms, 5);
	fc_config_release(&c);
	json_decref(root);
}

/* --config-file's "cpu-config" as a path: the file's template takes its place in the document;
 * anything but a string is left alone; a file that cannot be read, is not JSON or not an
 * object is named. */
static void test_cpu_config_file(void **state)
{
	char dir[] = "/tmp/kiln-test-cpu-XXXXXX", path[64], err[700], want[300];
	static const char *const files[] = {
		"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, "
		"\"modifiers\": [{\"register\": \"ecx\", \"bitmap\": \"0b0\"}]}]}",
		"{\"cpuid_modifiers\": [}", "[]",
	};
	json_t *root, *t;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	for (unsigned i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/t%u.json", dir, i);
		assert_non_null(f = fopen(path, "w"));
		fputs(files[i], f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/t0.json", dir);
	root = json_pack("{s:s, s:{s:s}}", "cpu-config", path, "boot-source", "kernel_image_path",
			 "K");
	assert_int_equal(fc_config_read_cpu_config(root, err, sizeof(err)), 0);
	t = json_object_get(root, "cpu-config");
	assert_true(json_is_object(t));
	assert_int_equal(json_array_size(json_object_get(t, "cpuid_modifiers")), 1);
	/* Once read, nothing more to read. */
	assert_int_equal(fc_config_read_cpu_config(root, err, sizeof(err)), 0);
	assert_ptr_equal(json_object_get(root, "cpu-config"), t);
	json_decref(root);

	root = json_pack("{s:i}", "cpu-config", 7);
	assert_int_equal(fc_config_read_cpu_config(root, err, sizeof(err)), 0);
	json_decref(root);
	root = json_object();
	assert_int_equal(fc_config_read_cpu_config(root, err, sizeof(err)), 0);
	json_decref(root);

	root = json_pack("{s:s}", "cpu-config", "/no/such/template.json");
	assert_int_equal(fc_config_read_cpu_config(root, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "\"cpu-config\": unable to open /no/such/template.json: No such "
			    "file or directory");
	assert_true(json_is_string(json_object_get(root, "cpu-config")));
	json_decref(root);

	snprintf(path, sizeof(path), "%s/t1.json", dir);
	root = json_pack("{s:s}", "cpu-config", path);
	assert_int_equal(fc_config_read_cpu_config(root, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "\"cpu-config\": %s: line 1: ", path);
	assert_memory_equal(err, want, strlen(want));
	json_decref(root);

	snprintf(path, sizeof(path), "%s/t2.json", dir);
	root = json_pack("{s:s}", "cpu-config", path);
	assert_int_equal(fc_config_read_cpu_config(root, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "\"cpu-config\": %s: expected a CPU template (a JSON "
		 "object)", path);
	assert_string_equal(err, want);
	json_decref(root);

	for (unsigned i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/t%u.json", dir, i);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_limiters),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_machine_boot_and_services),
		cmocka_unit_test(test_devices),
		cmocka_unit_test(test_cpu_config_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
