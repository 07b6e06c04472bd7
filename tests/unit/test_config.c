/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the checks across a whole VM configuration (src/core/config.c) and the
 * command line's wording of their errors (cli_word_error): slot counts, instances per class,
 * duplicate names, each class's own check, and which entry an error points at. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kiln/cli.h"
#include "kiln/devices.h"
#include "kiln/vm_config.h"

static struct vm_config cfg;
static struct disk_config disk[VM_MAX_DEVICES];
static struct net_config net[4];
static struct balloon_config balloon;
static struct vsock_config vsock[2];
static struct error e;

static int setup(void **state)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(disk, 0, sizeof(disk));
	memset(net, 0, sizeof(net));
	memset(&e, 0, sizeof(e));
	cfg.mem_bytes = 256ull << 20;
	for (unsigned i = 0; i < VM_MAX_DEVICES; i++)
		disk[i].path = "/img";
	return 0;
}

static void add(const struct device_class *cls, const void *config)
{
	assert_int_equal(vm_config_add(&cfg, cls, config, &e), 0);
}

/* A list of one device of each class is fine, and the registry knows every class by name. */
static void test_every_class_once(void **state)
{
	struct console_config console = { .kind = CONSOLE_FILE, .path = "/tmp/out" };

	add(&virtio_blk_class, &disk[0]);
	add(&virtio_net_class, &net[0]);
	add(&virtio_rng_class, NULL);
	add(&virtio_vsock_class, &vsock[0]);
	add(&virtio_balloon_class, &balloon);
	add(&virtio_console_class, &console);
	assert_int_equal(vm_config_check(&cfg, &e), 0);
	assert_int_equal(e.input, VM_INPUT_NONE);
	for (unsigned i = 0; i < cfg.nr_devices; i++)
		assert_ptr_equal(device_class_find(cfg.device[i].cls->name), cfg.device[i].cls);
	assert_null(device_class_find("floppy"));
}

/* More virtio devices than slots: the first one over is the culprit. */
static void test_too_many_virtio_devices(void **state)
{
	for (unsigned i = 0; i < VM_MAX_VIRTIO; i++)
		add(&virtio_blk_class, &disk[i]);
	add(&virtio_rng_class, NULL);
	assert_int_equal(vm_config_check(&cfg, &e), -EINVAL);
	assert_int_equal(e.kind, ERROR_USAGE);
	assert_int_equal(e.input, VM_INPUT_DEVICE + VM_MAX_VIRTIO);
	assert_string_equal(e.msg, "rng: 9 devices, more than the 8 virtio slots");
}

/* The list itself has a bound, reported by vm_config_add(). */
static void test_list_full(void **state)
{
	for (unsigned i = 0; i < VM_MAX_DEVICES; i++)
		add(&virtio_blk_class, &disk[i]);
	assert_int_equal(vm_config_add(&cfg, &virtio_blk_class, &disk[0], &e), -EINVAL);
	assert_non_null(strstr(e.msg, "more than 16 devices"));
}

/* Two disks with one id, two vsock devices, two NICs with one MAC, a balloon larger than RAM:
 * each names the later entry. */
static void test_conflicts(void **state)
{
	struct { const char *expect; int input; } cases[4];
	unsigned n = 0;

	disk[0].id = disk[1].id = "root";
	add(&virtio_blk_class, &disk[0]);
	add(&virtio_blk_class, &disk[1]);
	assert_int_equal(vm_config_check(&cfg, &e), -EINVAL);
	cases[n++] = (typeof(cases[0])){ "disk: id \"root\" is already disk0's", VM_INPUT_DEVICE + 1 };
	assert_string_equal(e.msg, cases[0].expect);
	assert_int_equal(e.input, cases[0].input);

	setup(NULL);
	add(&virtio_vsock_class, &vsock[0]);
	add(&virtio_vsock_class, &vsock[1]);
	assert_int_equal(vm_config_check(&cfg, &e), -EINVAL);
	assert_string_equal(e.msg, "vsock: only 1 per VM");
	assert_int_equal(e.input, VM_INPUT_DEVICE + 1);

	setup(NULL);
	net[0].mac_set = net[2].mac_set = true;
	memcpy(net[0].mac, (uint8_t[]){ 2, 0, 0, 0, 0, 1 }, 6);
	memcpy(net[2].mac, net[0].mac, 6);
	net[2].id = "eth2";
	add(&virtio_net_class, &net[0]);
	add(&virtio_net_class, &net[1]);
	add(&virtio_net_class, &net[2]);
	assert_int_equal(vm_config_check(&cfg, &e), -EINVAL);
	assert_string_equal(e.msg, "net0 and net \"eth2\" have the same MAC address 02:00:00:00:00:01");
	assert_int_equal(e.input, VM_INPUT_DEVICE + 2);

	setup(NULL);
	balloon.target_bytes = 512ull << 20;
	add(&virtio_blk_class, &disk[0]);
	add(&virtio_balloon_class, &balloon);
	assert_int_equal(vm_config_check(&cfg, &e), -EINVAL);
	assert_string_equal(e.msg, "balloon: 512 MiB is more than the guest's 256 MiB");
	assert_int_equal(e.input, VM_INPUT_DEVICE + 1);
	assert_int_equal(vm_config_class_index(&cfg, 1), 0);
}

/* The command line words an error as the option that caused it. */
static void test_cli_wording(void **state)
{
	struct cli_run r = { 0 };
	char out[ERROR_MSG_MAX + 64];

	r.vm.nr_devices = 2;
	r.option[0] = "--disk";
	r.option[1] = "--net";
	e = (struct error){ .input = VM_INPUT_DEVICE + 1 };
	strcpy(e.msg, "net1: tap t0: no such network interface");
	cli_word_error(&r, &e, out, sizeof(out));
	assert_string_equal(out, "--net: net1: tap t0: no such network interface");
	e.input = VM_INPUT_CPUS;
	strcpy(e.msg, "300 vCPUs is outside 1..255");
	cli_word_error(&r, &e, out, sizeof(out));
	assert_string_equal(out, "--cpus: 300 vCPUs is outside 1..255");
	e.input = VM_INPUT_NONE;
	cli_word_error(&r, &e, out, sizeof(out));
	assert_string_equal(out, "300 vCPUs is outside 1..255");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_every_class_once, setup),
		cmocka_unit_test_setup(test_too_many_virtio_devices, setup),
		cmocka_unit_test_setup(test_list_full, setup),
		cmocka_unit_test_setup(test_conflicts, setup),
		cmocka_unit_test_setup(test_cli_wording, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
