/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for what a migration's destination accepts (src/fc/guest_view.c) and how it is
 * asked for (src/cli/firecracker.c, `kiln restore --incoming`):
 *   - fc_config_guest_match(): a table of edits to a full stream document and to the
 *     destination operator's, each with the exact first difference named (or none: host
 *     values may differ freely);
 *   - fc_config_incoming(): without the operator's file, every host resource in the stream is
 *     refused by name and the rest comes back without the host's keys; with it, the operator's
 *     document comes back; a stream fc_config_parse() refuses is refused as the stream's;
 *   - the command line: every wrong combination of --incoming, --tls-psk, --tls-x509,
 *     --insecure-plain-tcp and --config-file exits 2 with its one-line message, before
 *     anything starts.
 * No KVM, no sockets. Documents are written with ' for " (converted before parsing). */
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
#include "kiln/cli.h"
#include "kiln/fc.h"

#define ROOTFS(ro, path) "{'drive_id': 'rootfs', 'path_on_host': '" path "', " \
			 "'is_root_device': true, 'is_read_only': " ro "}"
#define DATA(extra) "{'drive_id': 'data', 'path_on_host': '/d/data', 'is_root_device': false" \
		    extra "}"
#define EXTRA "{'drive_id': 'extra', 'path_on_host': '/d/x', 'is_root_device': false}"
#define NIC(mac) "{'iface_id': 'eth0', 'host_dev_name': 'tap0', 'guest_mac': '" mac "'}"
#define DEFAULT_ARGS "\"reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noa..."

/* A source's whole document, as its API built it. */
static const char stream_doc[] =
	"{'boot-source': {'kernel_image_path': '/s/vmlinuz', 'initrd_path': '/s/initrd', "
	"                 'boot_args': 'console=ttyS0'},"
	" 'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256, 'track_dirty_pages': true},"
	" 'drives': [" ROOTFS("true", "/s/root") ", {'drive_id': 'data', 'path_on_host': '/s/data',"
	"            'is_root_device': false, 'io_engine': 'Async'}],"
	" 'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap-s', "
	"                         'guest_mac': '06:00:AC:10:00:02'}],"
	" 'vsock': {'guest_cid': 3, 'uds_path': '/s/v.sock'},"
	" 'balloon': {'amount_mib': 16, 'deflate_on_oom': true},"
	" 'entropy': {},"
	" 'mmds-config': {'network_interfaces': ['eth0'], 'version': 'V2'},"
	" 'logger': {'level': 'Info', 'log_path': '/s/log'},"
	" 'metrics': {'metrics_path': '/s/metrics'}}";

/* The destination operator's: the same guest, every host value its own. */
static const char local_doc[] =
	"{'boot-source': {'kernel_image_path': '/d/vmlinuz', 'boot_args': 'console=ttyS0'},"
	" 'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256, 'huge_pages': 'None'},"
	" 'drives': [" ROOTFS("true", "/d/root") ", " DATA(", 'cache_type': 'Unsafe'") "],"
	" 'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap-d', "
	"                         'guest_mac': '06:00:ac:10:00:02'}],"
	" 'vsock': {'guest_cid': 3, 'uds_path': '/d/v.sock', 'vsock_id': 'v'},"
	" 'balloon': {'amount_mib': 16, 'deflate_on_oom': true, 'stats_polling_interval_s': 0},"
	" 'entropy': {'rate_limiter': null},"
	" 'mmds-config': {'network_interfaces': ['eth0'], 'version': 'V2', "
	"                 'ipv4_address': '169.254.169.254'}}";

/* Edits (JSON merge patches, RFC 7396: null deletes) to both documents and the first
 * difference named, or NULL when the guests are the same. */
struct row {
	const char *stream, *local;
	const char *message;
};

static const struct row rows[] = {
	{ NULL, NULL, NULL },
	/* machine-config, defaults filled in; the host's keys are not compared */
	{ NULL, "{'machine-config': {'vcpu_count': 1}}",
	  "machine-config: vcpu_count is 2 in the stream, 1 in --config-file" },
	{ "{'machine-config': {'mem_size_mib': 512}}", NULL,
	  "machine-config: mem_size_mib is 512 in the stream, 256 in --config-file" },
	{ NULL, "{'machine-config': null}",
	  "machine-config: vcpu_count is 2 in the stream, 1 in --config-file" },
	{ "{'machine-config': {'vcpu_count': 1, 'mem_size_mib': 128, 'smt': false}}",
	  "{'machine-config': null}", NULL },
	{ NULL, "{'machine-config': {'track_dirty_pages': true, 'huge_pages': null}}", NULL },
	{ NULL, "{'machine-config': {'cpu_template': 'None'}}", NULL },
	/* cpu-config: the custom CPU template, whole */
	{ "{'cpu-config': {'kvm_capabilities': ['!56']}}", NULL,
	  "cpu-config: {\"kvm_capabilities\":[\"!56\"]} in the stream, absent in --config-file" },
	{ NULL, "{'cpu-config': {}}", "cpu-config: absent in the stream, {} in --config-file" },
	{ "{'cpu-config': {'msr_modifiers': []}}", "{'cpu-config': {'msr_modifiers': [{'addr': "
	  "'0x10', 'bitmap': '0b0'}]}}", "cpu-config: {\"msr_modifiers\":[]} in the stream, "
	  "{\"msr_modifiers\":[{\"addr\":\"0x10\",\"bitmap\":\"0b0\"}]} in --config-file" },
	{ "{'cpu-config': {'msr_modifiers': []}}", "{'cpu-config': {'msr_modifiers': []}}", NULL },
	/* boot-source: boot_args is the guest's, the paths are the host's */
	{ NULL, "{'boot-source': {'boot_args': 'console=ttyS1'}}",
	  "boot-source: boot_args is \"console=ttyS0\" in the stream, \"console=ttyS1\" in "
	  "--config-file" },
	{ NULL, "{'boot-source': null}",
	  "boot-source: boot_args is \"console=ttyS0\" in the stream, " DEFAULT_ARGS " in "
	  "--config-file" },
	{ NULL, "{'boot-source': {'kernel_image_path': '/other', 'initrd_path': '/i'}}", NULL },
	{ "{'boot-source': {'boot_args': '\\u001b]0;x\\u0007\\u00e9'}}", NULL,
	  "boot-source: boot_args is \"\\u001B]0;x\\u0007\\u00E9\" in the stream, "
	  "\"console=ttyS0\" in --config-file" },
	/* drives: by drive_id, in order, guest keys with defaults; paths and engines differ */
	{ NULL, "{'drives': [" ROOTFS("false", "/d/root") ", " DATA("") "]}",
	  "drives \"rootfs\": is_read_only is true in the stream, false in --config-file" },
	{ NULL, "{'drives': [" ROOTFS("true", "/d/root") "]}",
	  "drives \"data\": in the stream, not in --config-file" },
	{ NULL, "{'drives': [" ROOTFS("true", "/d/root") ", " DATA("") ", " EXTRA "]}",
	  "drives \"extra\": in --config-file, not in the stream" },
	{ NULL, "{'drives': null}", "drives \"rootfs\": in the stream, not in --config-file" },
	{ NULL, "{'drives': [" DATA("") ", " ROOTFS("true", "/d/root") "]}",
	  "drives \"rootfs\": entry 1 in the stream, 2 in --config-file" },
	{ NULL, "{'drives': [" ROOTFS("true", "/d/root") ", " DATA(", 'cache_type': 'Writeback'")
	  "]}", "drives \"data\": cache_type is \"Unsafe\" in the stream, \"Writeback\" in "
	  "--config-file" },
	{ NULL, "{'drives': [" ROOTFS("true", "/d/root") ", " DATA(", 'is_read_only': false, "
	  "'io_engine': 'Sync', 'rate_limiter': null") "]}", NULL },
	{ NULL, "{'drives': [" ROOTFS("true", "/d/root") ", " DATA(", 'partuuid': 'abc'") "]}",
	  "drives \"data\": partuuid is absent in the stream, \"abc\" in --config-file" },
	/* network-interfaces: by iface_id, guest_mac in any case; the tap is the host's */
	{ NULL, "{'network-interfaces': [" NIC("06:00:AC:10:00:03") "]}",
	  "network-interfaces \"eth0\": guest_mac is \"06:00:AC:10:00:02\" in the stream, "
	  "\"06:00:AC:10:00:03\" in --config-file" },
	{ NULL, "{'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'x'}]}",
	  "network-interfaces \"eth0\": guest_mac is \"06:00:AC:10:00:02\" in the stream, absent "
	  "in --config-file" },
	{ NULL, "{'network-interfaces': []}",
	  "network-interfaces \"eth0\": in the stream, not in --config-file" },
	/* vsock, balloon, entropy, mmds-config: there or not, and their keys */
	{ NULL, "{'vsock': {'guest_cid': 4}}",
	  "vsock: guest_cid is 3 in the stream, 4 in --config-file" },
	{ NULL, "{'vsock': null}", "vsock: in the stream, not in --config-file" },
	{ "{'vsock': null}", NULL, "vsock: in --config-file, not in the stream" },
	{ "{'balloon': null}", NULL, "balloon: in --config-file, not in the stream" },
	{ NULL, "{'balloon': {'stats_polling_interval_s': 5}}",
	  "balloon: stats_polling_interval_s is 0 in the stream, 5 in --config-file" },
	{ NULL, "{'balloon': {'deflate_on_oom': false}}",
	  "balloon: deflate_on_oom is true in the stream, false in --config-file" },
	{ NULL, "{'entropy': null}", "entropy: in the stream, not in --config-file" },
	{ NULL, "{'mmds-config': {'version': null}}",
	  "mmds-config: version is \"V2\" in the stream, \"V1\" in --config-file" },
	{ NULL, "{'mmds-config': {'ipv4_address': '169.254.170.2'}}",
	  "mmds-config: ipv4_address is \"169.254.169.254\" in the stream, \"169.254.170.2\" in "
	  "--config-file" },
	/* logger and metrics are the host's */
	{ "{'logger': null, 'metrics': null}", "{'logger': {'level': 'Debug'}}", NULL },
	/* the first difference, in the documents' order of sections */
	{ "{'machine-config': {'vcpu_count': 1}, 'vsock': null}", NULL,
	  "machine-config: vcpu_count is 1 in the stream, 2 in --config-file" },
};

/* ' to " */
static json_t *load(const char *text)
{
	char *copy = strdup(text);
	json_error_t e;
	json_t *j;

	for (char *p = copy; *p; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(copy, 0, &e);
	if (!j)
		fail_msg("%s: %s", text, e.text);
	free(copy);
	return j;
}

/* RFC 7396 merge patch of @patch onto @target. */
static void merge(json_t *target, json_t *patch)
{
	const char *key;
	json_t *v;

	json_object_foreach(patch, key, v) {
		json_t *t = json_object_get(target, key);

		if (json_is_null(v))
			json_object_del(target, key);
		else if (json_is_object(v) && json_is_object(t))
			merge(t, v);
		else
			json_object_set(target, key, v);
	}
}

static json_t *edited(const char *base, const char *patch)
{
	json_t *doc = load(base), *p;

	if (patch) {
		p = load(patch);
		merge(doc, p);
		json_decref(p);
	}
	return doc;
}

static void test_guest_match(void **state)
{
	size_t failures = 0;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		json_t *s = edited(stream_doc, rows[i].stream), *l = edited(local_doc, rows[i].local);
		char err[512] = "";
		int ret = fc_config_guest_match(s, l, err, sizeof(err));

		if (rows[i].message ? ret != -EINVAL || strcmp(err, rows[i].message) : ret != 0) {
			print_error("row %zu: got %d \"%s\"\n  want \"%s\"\n", i, ret, err,
				    rows[i].message ? rows[i].message : "(the same guest)");
			failures++;
		}
		json_decref(s);
		json_decref(l);
	}
	assert_int_equal(failures, 0);
}

/* Both base documents are ones fc_config_parse() accepts, as the function requires. */
static void test_documents_parse(void **state)
{
	const char *docs[2] = { stream_doc, local_doc };
	struct fc_config c;
	char err[512];

	for (int i = 0; i < 2; i++) {
		json_t *d = load(docs[i]);

		if (fc_config_parse(d, true, &c, err, sizeof(err)))
			fail_msg("%s", err);
		fc_config_release(&c);
		json_decref(d);
	}
}

static void test_incoming(void **state)
{
	static const struct { const char *patch, *message; } refused[] = {
		{ "{'drives': [" DATA("") "]}", "drives \"data\": the stream names a host resource "
		  "(path_on_host); the destination takes those only from its own --config-file" },
		{ "{'network-interfaces': [" NIC("06:00:AC:10:00:02") "]}", "network-interfaces "
		  "\"eth0\": the stream names a host resource (host_dev_name); the destination takes "
		  "those only from its own --config-file" },
		{ "{'vsock': {'guest_cid': 3, 'uds_path': '/v'}}", "vsock: the stream names a host "
		  "resource (uds_path); the destination takes those only from its own --config-file" },
		{ "{'logger': {'log_path': '/l'}}", "logger: the stream names a host resource "
		  "(log_path); the destination takes those only from its own --config-file" },
		{ "{'metrics': {'metrics_path': '/m'}}", "metrics: the stream names a host resource "
		  "(metrics_path); the destination takes those only from its own --config-file" },
		{ "{'bogus': 1}", "the stream's configuration: unknown field \"bogus\"" },
		{ "{'machine-config': {'vcpu_count': 0}}", "the stream's configuration: "
		  "\"machine-config\": \"vcpu_count\": 0 is not in [1, 32]" },
	};
	const char *plain = "{'boot-source': {'kernel_image_path': '/s/k', 'boot_args': 'b'},"
			    " 'machine-config': {'vcpu_count': 1, 'mem_size_mib': 64, "
			    "'track_dirty_pages': true, 'huge_pages': 'None'}, 'entropy': {}}";
	json_t *s, *l, *out, *want;
	char err[512];

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		s = edited(plain, refused[i].patch);
		err[0] = 0;
		assert_null(fc_config_incoming(s, NULL, err, sizeof(err)));
		if (strcmp(err, refused[i].message))
			fail_msg("refused[%zu]: got \"%s\"", i, err);
		json_decref(s);
	}
	/* Without the operator's file: the stream's guest, none of the host's keys. */
	s = edited(plain, "{'logger': {'level': 'Debug'}}");
	out = fc_config_incoming(s, NULL, err, sizeof(err));
	want = edited(plain, "{'machine-config': {'track_dirty_pages': null, 'huge_pages': null}}");
	assert_non_null(out);
	assert_true(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	json_decref(s);
	/* With it: the operator's document, when the guests are the same; else the difference. */
	s = load(stream_doc);
	l = load(local_doc);
	out = fc_config_incoming(s, l, err, sizeof(err));
	assert_non_null(out);
	assert_true(out != l && json_equal(out, l));
	json_decref(out);
	json_object_set_new(json_object_get(l, "vsock"), "guest_cid", json_integer(9));
	assert_null(fc_config_incoming(s, l, err, sizeof(err)));
	assert_string_equal(err, "vsock: guest_cid is 3 in the stream, 9 in --config-file");
	json_decref(s);
	json_decref(l);
}

/* `kiln restore` (or with @restore false, `kiln`) with the arguments after @len (NULL-ended):
 * its exit status, and what it printed on stderr in @out. */
static int cli(bool restore, char *out, size_t len, ...)
{
	char *argv[16] = { restore ? "restore" : "kiln" }, path[] = "/tmp/kiln-restore-XXXXXX";
	int argc = 1, saved, fd = mkstemp(path), ret;
	va_list ap;
	ssize_t n;

	assert_true(fd >= 0);
	va_start(ap, len);
	while ((argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	ret = cli_firecracker(argc, argv, restore);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, len - 1, 0);
	out[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	return ret;
}

static void test_restore_flags(void **state)
{
	static const char *const need = "kiln: the migration channel needs one of --tls-psk FILE, "
					"--tls-x509 DIR or --insecure-plain-tcp\n";
	static const char *const with = "kiln: --config-file, --tls-psk, --tls-x509 and "
					"--insecure-plain-tcp go with --incoming (a snapshot file "
					"holds its own configuration)\n";
	char out[1024], bad[] = "/tmp/kiln-config-XXXXXX";
	int fd;

	assert_int_equal(cli(true, out, sizeof(out), "--incoming", "tcp::1", NULL), 2);
	assert_string_equal(out, need);
	assert_int_equal(cli(true, out, sizeof(out), "--incoming", "tcp::1", "--tls-psk", "/k",
				 "--insecure-plain-tcp", NULL), 2);
	assert_string_equal(out, "kiln: --tls-psk FILE and --insecure-plain-tcp exclude each "
			    "other\n");
	assert_int_equal(cli(true, out, sizeof(out), "--incoming=fd:3", "--tls-x509=/d",
				 "--tls-psk=/k", NULL), 2);
	assert_string_equal(out, "kiln: --tls-psk FILE and --tls-x509 DIR exclude each other\n");
	assert_int_equal(cli(true, out, sizeof(out), "--snapshot", "s", "--mem-file", "m",
				 "--tls-psk", "/k", NULL), 2);
	assert_string_equal(out, with);
	assert_int_equal(cli(true, out, sizeof(out), "--snapshot", "s", "--mem-file", "m",
				 "--config-file", "/c", NULL), 2);
	assert_string_equal(out, with);
	assert_int_equal(cli(true, out, sizeof(out), "--snapshot", "s", "--mem-file", "m",
				 "--insecure-plain-tcp", NULL), 2);
	assert_string_equal(out, with);
	assert_int_equal(cli(true, out, sizeof(out), "--incoming", "tcp::1",
				 "--insecure-plain-tcp=yes", NULL), 2);
	assert_string_equal(out, "kiln: --insecure-plain-tcp takes no value\n");
	assert_int_equal(cli(true, out, sizeof(out), "--incoming", "tcp::1", "--tls-psk", NULL), 2);
	assert_string_equal(out, "kiln: --tls-psk: missing value\n");
	assert_int_equal(cli(true, out, sizeof(out), "--incoming", "tcp::1", "--tls-psk",
				 "/nonexistent/k.psk", NULL), 2);
	assert_string_equal(out, "kiln: --tls-psk /nonexistent/k.psk: No such file or directory\n");
	assert_int_equal(cli(true, out, sizeof(out), "--incoming", "tcp::1", "--tls-x509",
				 "/nonexistent", NULL), 2);
	assert_string_equal(out, "kiln: --tls-x509 /nonexistent/ca-cert.pem: No such file or "
			    "directory\n");
	assert_int_equal(cli(true, out, sizeof(out), "--incoming", "tcp::1", "--insecure-plain-tcp",
				 "--no-api", NULL), 2);
	assert_string_equal(out, "kiln: kiln restore takes no --no-api\n");
	/* The operator's configuration file is checked before anything listens. */
	fd = mkstemp(bad);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"drives\": [{\"drive_id\": \"a\"}]}", 31), 31);
	close(fd);
	assert_int_equal(cli(true, out, sizeof(out), "--incoming", "tcp::1", "--insecure-plain-tcp",
				 "--config-file", bad, NULL), 2);
	assert_non_null(strstr(out, "\"drives\"[0]: \"is_root_device\" is required"));
	unlink(bad);
	/* The TLS flags are kiln restore's. */
	assert_int_equal(cli(false, out, sizeof(out), "--tls-psk", "/k", NULL), 2);
	assert_string_equal(out, "kiln: unknown flag \"--tls-psk\" (kiln --help)\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_documents_parse),
		cmocka_unit_test(test_guest_match),
		cmocka_unit_test(test_incoming),
		cmocka_unit_test(test_restore_flags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
