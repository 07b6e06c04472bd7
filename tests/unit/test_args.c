/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for `kiln run` argument and SIZE parsing. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <cmocka.h>

#include "kiln/cli.h"

static void test_sizes(void **state)
{
	uint64_t b;

	assert_int_equal(cli_parse_size("512M", &b), 0);
	assert_int_equal(b, 512ULL << 20);
	assert_int_equal(cli_parse_size("2G", &b), 0);
	assert_int_equal(b, 2ULL << 30);
	assert_int_equal(cli_parse_size("2g", &b), 0);
	assert_int_equal(b, 2ULL << 30);
	assert_int_equal(cli_parse_size("1GiB", &b), 0);
	assert_int_equal(b, 1ULL << 30);
	assert_int_equal(cli_parse_size("768", &b), 0);
	assert_int_equal(b, 768ULL << 20);
	assert_int_equal(cli_parse_size("4096K", &b), 0);
	assert_int_equal(b, 4ULL << 20);
	assert_int_equal(cli_parse_size("1T", &b), 0);
	assert_int_equal(b, 1ULL << 40);
	assert_int_equal(cli_parse_size("0", &b), -EINVAL);
	assert_int_equal(cli_parse_size("", &b), -EINVAL);
	assert_int_equal(cli_parse_size("-1G", &b), -EINVAL);
	assert_int_equal(cli_parse_size("1.5G", &b), -EINVAL);
	assert_int_equal(cli_parse_size("12X", &b), -EINVAL);
	assert_int_equal(cli_parse_size("1Gx", &b), -EINVAL);
	assert_int_equal(cli_parse_size(" 1G", &b), -EINVAL);
	assert_int_equal(cli_parse_size("99999999999999999999", &b), -ERANGE);
	assert_int_equal(cli_parse_size("9999999999T", &b), -ERANGE);
}

static enum log_level last_level;
static struct cli_run run;

/* Parse argv "run" + the arguments; @cfg shows run.vm, the parsed configuration. */
static int parse(struct vm_config **cfg, char *err, size_t n, int argc, ...)
{
	char *argv[16] = { "run" };
	va_list ap;
	int ret;

	va_start(ap, argc);
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	ret = cli_parse_run(argc, argv, &run, err, n);
	last_level = run.level;
	*cfg = &run.vm;
	return ret;
}

static void test_defaults_and_values(void **state)
{
	struct vm_config *cfg;
	char err[256];

	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--kernel", "/k"), CLI_RUN);
	assert_string_equal(cfg->kernel_path, "/k");
	assert_null(cfg->initrd_path);
	assert_string_equal(cfg->cmdline, "console=ttyS0");
	assert_int_equal(cfg->nr_cpus, 1);
	assert_int_equal(cfg->mem_bytes, 512ULL << 20);
	assert_int_equal(last_level, LOG_WARN);

	assert_int_equal(parse(&cfg, err, sizeof(err), 11, "--kernel", "/k", "--initrd", "/i",
			       "--cmdline", "console=ttyS0 quiet", "--cpus", "4", "--memory", "2G"),
			 CLI_RUN);
	assert_string_equal(cfg->initrd_path, "/i");
	assert_string_equal(cfg->cmdline, "console=ttyS0 quiet");
	assert_int_equal(cfg->nr_cpus, 4);
	assert_int_equal(cfg->mem_bytes, 2ULL << 30);
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--kernel=/k2"), CLI_RUN);
	assert_string_equal(cfg->kernel_path, "/k2");
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--log-level", "info"), CLI_RUN);
	assert_int_equal(last_level, LOG_INFO);
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--help"), CLI_HELP);
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--version"), CLI_VERSION);
}

static void test_errors_name_option_and_value(void **state)
{
	struct vm_config *cfg;
	char err[256];

	assert_int_equal(parse(&cfg, err, sizeof(err), 1), -EINVAL);
	assert_non_null(strstr(err, "--kernel"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--cpus", "0"), -EINVAL);
	assert_non_null(strstr(err, "--cpus"));
	assert_non_null(strstr(err, "\"0\""));
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--cpus", "two"), -EINVAL);
	assert_non_null(strstr(err, "two"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--memory", "0"), -EINVAL);
	assert_non_null(strstr(err, "--memory"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--memory", "12Q"), -EINVAL);
	assert_non_null(strstr(err, "12Q"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--memory", "1001K"), -EINVAL);
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--kernel", "/k", "--bogus"), -EINVAL);
	assert_non_null(strstr(err, "--bogus"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--kernel", "/k", "extra"), -EINVAL);
	assert_non_null(strstr(err, "extra"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--log-level", "loud"), -EINVAL);
	assert_non_null(strstr(err, "loud"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--kernel"), -EINVAL);
	assert_non_null(strstr(err, "--kernel"));
}

/* --smt, --cpu-template, --huge-pages: Firecracker's machine-config fields. */
/* --firmware bios[=PATH] | uefi[=CODE][,vars=FILE] (the value is cut at ",vars=", so each is
 * a writable copy as argv is). */
static void test_firmware(void **state)
{
	struct vm_config *cfg;
	char err[256];
	char uefi[] = "uefi", uefi_code[] = "uefi=/c.fd", uefi_both[] = "uefi=/c.fd,vars=/v.fd";
	char uefi_vars[] = "uefi,vars=/v.fd", bios[] = "bios", bios_path[] = "bios=/b.bin";
	char bios_vars[] = "bios,vars=/v.fd", empty_vars[] = "uefi=/c.fd,vars=";
	char empty_code[] = "uefi=", other[] = "efi", suffix[] = "uefix";

	(void)state;
	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--firmware", uefi), CLI_RUN);
	assert_string_equal(cfg->firmware_path, "/usr/share/OVMF/OVMF_CODE_4M.fd");
	assert_string_equal(cfg->firmware_vars_path, "/usr/share/OVMF/OVMF_VARS_4M.fd");
	assert_true(cfg->firmware_vars_private);
	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--firmware", uefi_code), CLI_RUN);
	assert_string_equal(cfg->firmware_path, "/c.fd");
	assert_true(cfg->firmware_vars_private);
	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--firmware", uefi_both), CLI_RUN);
	assert_string_equal(cfg->firmware_path, "/c.fd");
	assert_string_equal(cfg->firmware_vars_path, "/v.fd");
	assert_false(cfg->firmware_vars_private);
	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--firmware", uefi_vars), CLI_RUN);
	assert_string_equal(cfg->firmware_path, "/usr/share/OVMF/OVMF_CODE_4M.fd");
	assert_string_equal(cfg->firmware_vars_path, "/v.fd");
	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--firmware", bios), CLI_RUN);
	assert_string_equal(cfg->firmware_path, "/usr/share/seabios/bios-256k.bin");
	assert_null(cfg->firmware_vars_path);
	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--firmware", bios_path), CLI_RUN);
	assert_string_equal(cfg->firmware_path, "/b.bin");

	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--firmware", bios_vars), -EINVAL);
	assert_string_equal(err, "--firmware: vars=/v.fd: only uefi has a variable store");
	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--firmware", empty_vars), -EINVAL);
	assert_string_equal(err, "--firmware: vars= names no file");
	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--firmware", empty_code), -EINVAL);
	assert_string_equal(err, "--firmware: uefi= names no file");
	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--firmware", other), -EINVAL);
	assert_string_equal(err, "--firmware: \"efi\" is not bios[=PATH] or uefi[=CODE][,vars=FILE]");
	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--firmware", suffix), -EINVAL);
	/* UEFI loads a kernel from fw_cfg (as OVMF under qemu -kernel); SeaBIOS would need QEMU's
	 * linuxboot option ROM. */
	assert_int_equal(parse(&cfg, err, sizeof(err), 7, "--firmware", uefi, "--kernel", "/k",
			       "--initrd", "/i"), CLI_RUN);
	assert_string_equal(cfg->kernel_path, "/k");
	assert_string_equal(cfg->initrd_path, "/i");
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--firmware", uefi, "--initrd", "/i"),
			 -EINVAL);
	assert_string_equal(err, "--firmware: --initrd goes with --kernel");
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--firmware", bios, "--kernel", "/k"),
			 -EINVAL);
	assert_string_equal(err, "--firmware: the BIOS boots from a disk; --kernel is not taken "
			    "with it (QEMU's linuxboot option ROM is not built; --firmware uefi loads a "
			    "kernel)");
}

static void test_machine_options(void **state)
{
	struct vm_config *cfg;
	char err[256];

	assert_int_equal(parse(&cfg, err, sizeof(err), 9, "--kernel", "/k", "--smt", "--cpus", "2",
			       "--huge-pages", "2M", "--cpu-template=T2S"), CLI_RUN);
	assert_true(cfg->smt);
	assert_true(cfg->huge_pages);
	assert_int_equal(cfg->cpu_template, X86_CPU_TEMPLATE_T2S);
	assert_null(run.cpu_template_file);
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--cpu-template",
			       "./t.json"), CLI_RUN);
	assert_string_equal(run.cpu_template_file, "./t.json");
	assert_int_equal(cfg->cpu_template, X86_CPU_TEMPLATE_NONE);
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--cpu-template", "T9"),
			 -EINVAL);
	assert_non_null(strstr(err, "--cpu-template: \"T9\""));
	assert_int_equal(parse(&cfg, err, sizeof(err), 6, "--kernel", "/k", "--smt", "--cpus", "3"),
			 -EINVAL);
	assert_non_null(strstr(err, "--cpus 3"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 7, "--kernel", "/k", "--huge-pages", "2M",
			       "--memory", "129M"), -EINVAL);
	assert_non_null(strstr(err, "2 MiB"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--huge-pages", "1G"),
			 -EINVAL);
	assert_non_null(strstr(err, "\"1G\""));
}

/* --net: the two backends, MAC addresses and port forwards (text is modified: arrays). */
static void test_net(void **state)
{
	char tap[] = "tap=tap0,mac=52:54:00:AB:cd:01", user[] = "user,hostfwd=tcp:127.0.0.1:2222-:22,"
		"hostfwd=udp::5353-10.0.2.16:53";
	char bad_mac[] = "user,mac=52:54:00:ab:cd", multicast[] = "user,mac=01:00:5e:00:00:01",
	     bad_fwd[] = "user,hostfwd=tcp::0-:22", tap_fwd[] = "tap=t,hostfwd=tcp::22-:22",
	     bridge[] = "bridge=br0", m1[] = "tap=a,mac=02:00:00:00:00:01", m2[] = "user,mac=02:00:00:00:00:01";
	struct vm_config *cfg;
	const struct net_config *net;
	struct in_addr a;
	char err[256];

	assert_int_equal(parse(&cfg, err, sizeof(err), 7, "--kernel", "/k", "--net", tap, "--net", user), CLI_RUN);
	assert_int_equal(cfg->nr_devices, 2);
	assert_ptr_equal(cfg->device[0].cls, &virtio_net_class);
	assert_ptr_equal(cfg->device[1].cls, &virtio_net_class);
	net = cfg->device[0].config;
	assert_int_equal(net->kind, NET_TAP);
	assert_string_equal(net->tap, "tap0");
	assert_true(net->mac_set);
	assert_memory_equal(net->mac, ((uint8_t[]){ 0x52, 0x54, 0, 0xab, 0xcd, 1 }), 6);
	net = cfg->device[1].config;
	assert_int_equal(net->kind, NET_USER);
	assert_false(net->mac_set);
	assert_int_equal(net->nr_hostfwd, 2);
	assert_false(net->hostfwd[0].udp);
	assert_int_equal(net->hostfwd[0].host_port, 2222);
	assert_int_equal(net->hostfwd[0].guest_port, 22);
	inet_pton(AF_INET, "10.0.2.15", &a);
	assert_int_equal(net->hostfwd[0].guest_addr.s_addr, a.s_addr);
	assert_true(net->hostfwd[1].udp);
	inet_pton(AF_INET, "127.0.0.1", &a); /* loopback unless the user says otherwise */
	assert_int_equal(net->hostfwd[1].host_addr.s_addr, a.s_addr);
	inet_pton(AF_INET, "10.0.2.16", &a);
	assert_int_equal(net->hostfwd[1].guest_addr.s_addr, a.s_addr);

	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--net", bad_mac), -EINVAL);
	assert_non_null(strstr(err, "\"52:54:00:ab:cd\" is not a unicast MAC address"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--net", multicast), -EINVAL);
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--net", bad_fwd), -EINVAL);
	assert_non_null(strstr(err, "hostfwd=tcp::0-:22"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--net", tap_fwd), -EINVAL);
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--net", bridge), -EINVAL);
	assert_non_null(strstr(err, "\"bridge=br0\" is not tap=NAME or user"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 7, "--kernel", "/k", "--net", m1, "--net", m2), -EINVAL);
	assert_non_null(strstr(err, "same MAC address"));
}

/* Rate limits on --disk, --net (rx-, tx-) and --rng (text is modified: arrays). */
static void test_rate_limits(void **state)
{
	char disk[] = "/d.img,bw=10M/1s,ops=200/100ms,bw-burst=1G,ops-burst=5,cache=unsafe", net[] =
		"user,rx-bw=64K/250ms,tx-ops=1000/1s";
	static const char *const bad[] = { "bw=10M", "bw=10M/0s", "bw=0/1s", "bw=10M/1h", "ops=x/1s",
					   "bw-burst=1M/1s", "ops=99999999999999999999/1s" };
	struct vm_config *cfg;
	const struct disk_config *d;
	const struct net_config *n;
	const struct rng_config *r;
	char err[256], text[64];

	assert_int_equal(parse(&cfg, err, sizeof(err), 7, "--kernel", "/k", "--disk", disk, "--net", net),
			 CLI_RUN);
	d = cfg->device[0].config;
	assert_int_equal(d->limit.bandwidth.size, 10 << 20);
	assert_int_equal(d->limit.bandwidth.refill_ms, 1000);
	assert_int_equal(d->limit.bandwidth.one_time_burst, 1 << 30);
	assert_int_equal(d->limit.ops.size, 200);
	assert_int_equal(d->limit.ops.refill_ms, 100);
	assert_int_equal(d->limit.ops.one_time_burst, 5);
	assert_true(d->cache_unsafe);
	n = cfg->device[1].config;
	assert_int_equal(n->rx_limit.bandwidth.size, 64 << 10);
	assert_int_equal(n->rx_limit.bandwidth.refill_ms, 250);
	assert_int_equal(n->rx_limit.ops.size, 0);
	assert_int_equal(n->tx_limit.bandwidth.size, 0);
	assert_int_equal(n->tx_limit.ops.size, 1000);
	assert_int_equal(n->tx_limit.ops.refill_ms, 1000);

	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--kernel", "/k", "--rng=bw=4K/1s"), CLI_RUN);
	r = cfg->device[0].config;
	assert_int_equal(r->limit.bandwidth.size, 4096);
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--kernel", "/k", "--rng"), CLI_RUN);
	r = cfg->device[0].config;
	assert_false(rate_limit_enabled(&r->limit));

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "/d.img,%s", bad[i]);
		assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--disk", text),
				 -EINVAL);
		if (!strstr(err, "--disk") || !strstr(err, bad[i]))
			fail_msg("--disk %s: %s", bad[i], err);
	}
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--kernel", "/k", "--rng=fast"), -EINVAL);
	assert_non_null(strstr(err, "\"fast\""));
}

/* --debug-exit (QEMU's iobase/iosize, in the same word or the next) and --fw-cfg. */
static void test_debug_exit_and_fw_cfg(void **state)
{
	const struct debug_exit_config *d;
	struct vm_config *cfg;
	char err[256], props[] = "iobase=0x501,iosize=2", bad[] = "iosize=3";
	char same_word[] = "--debug-exit=iosize=4", past_end[] = "--debug-exit=iobase=0xffff,iosize=2";

	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--debug-exit",
			       "--fw-cfg"), CLI_RUN);
	assert_int_equal(cfg->nr_devices, 2);
	assert_ptr_equal(cfg->device[0].cls, &debug_exit_class);
	assert_ptr_equal(cfg->device[1].cls, &fw_cfg_class);
	d = cfg->device[0].config;
	assert_int_equal(d->iobase, 0xf4);
	assert_int_equal(d->iosize, 1);
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--debug-exit", props),
			 CLI_RUN);
	d = cfg->device[0].config;
	assert_int_equal(d->iobase, 0x501);
	assert_int_equal(d->iosize, 2);
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, same_word, "--kernel", "/k"),
			 CLI_RUN);
	d = cfg->device[0].config;
	assert_int_equal(d->iobase, 0xf4);
	assert_int_equal(d->iosize, 4);
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--debug-exit", bad),
			 -EINVAL);
	assert_non_null(strstr(err, "--debug-exit: \"iosize=3\""));
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--debug-exit",
			       "--debug-exit"), -EINVAL);
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--kernel", "/k", past_end),
			 -EINVAL);
	assert_non_null(strstr(err, "passes port 0xffff"));
}

/* --reboot: reset by default with firmware (as QEMU's PC), exit otherwise; either can be asked. */
static void test_reboot(void **state)
{
	struct vm_config *cfg;
	char err[256];

	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--kernel", "/k"), CLI_RUN);
	assert_false(run.reboot_reset);
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--reboot", "reset"),
			 CLI_RUN);
	assert_true(run.reboot_reset);
	assert_int_equal(parse(&cfg, err, sizeof(err), 3, "--firmware", "bios"), CLI_RUN);
	assert_true(run.reboot_reset);
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--firmware", "bios", "--reboot", "exit"),
			 CLI_RUN);
	assert_false(run.reboot_reset);
	assert_int_equal(parse(&cfg, err, sizeof(err), 5, "--kernel", "/k", "--reboot", "halt"),
			 -EINVAL);
	assert_string_equal(err, "--reboot: \"halt\" is not exit or reset");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_defaults_and_values),
		cmocka_unit_test(test_errors_name_option_and_value),
		cmocka_unit_test(test_firmware),
		cmocka_unit_test(test_machine_options),
		cmocka_unit_test(test_net),
		cmocka_unit_test(test_rate_limits),
		cmocka_unit_test(test_debug_exit_and_fw_cfg),
		cmocka_unit_test(test_reboot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
