/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: Firecracker's configuration file and API requests, as a client or a
 * configuration file may send them (src/fc).
 *
 * The first byte picks what the rest is. Even: a whole configuration document (--config-file,
 * a snapshot's "config" section), parsed and checked by fc_config_parse(), with and without a
 * boot source required. Odd: an API request, "PATH\nBODY" with the method picked by that byte,
 * through the router (fc_route_request(): method, path, resource id, JSON body, the pre- and
 * post-boot rules) for a VM started or not. Both are pure (no file, no KVM), so the target
 * runs them as they are; the handlers that apply a request are the unit tests' and the
 * integration tests' part. AddressSanitizer and UBSan turn any bad access into a crash; the
 * target checks the contract: a refusal always comes with a message. Build and run:
 * scripts/fuzz [SECONDS].
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "fc/fc_internal.h"
#include "kiln/fc.h"
#include "kiln/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void document(const uint8_t *text, size_t len)
{
	json_t *root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL);

	for (int boot = 0; root && boot < 2; boot++) {
		struct fc_config cfg = { 0 };
		char err[600] = "";

		if (fc_config_parse(root, boot, &cfg, err, sizeof(err)) && !err[0])
			abort(); /* refused without saying why */
		fc_config_release(&cfg);
	}
	json_decref(root);
}

static void request(uint8_t pick, const uint8_t *text, size_t len)
{
	static const char *const methods[] = { "GET", "PUT", "PATCH", "POST", "DELETE" };
	const uint8_t *nl = memchr(text, '\n', len);
	size_t path_len = nl ? (size_t)(nl - text) : len;
	char *path = strndup((const char *)text, path_len);
	size_t body_len = nl ? len - path_len - 1 : 0;
	char *body = malloc(body_len + 1);

	if (!path || !body)
		abort();
	memcpy(body, nl ? nl + 1 : text, body_len);
	body[body_len] = 0; /* the HTTP layer hands bodies over NUL-terminated */
	for (int booted = 0; booted < 2; booted++) {
		struct fc_routed routed;
		char err[600] = "";

		if (fc_route_request(methods[(pick >> 1) % 5], path, body, body_len, booted, &routed,
				     err, sizeof(err)) && !err[0])
			abort();
		json_decref(routed.body);
	}
	free(path);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_set_level(LOG_OFF);
	if (!size)
		return 0;
	if (data[0] & 1)
		request(data[0], data + 1, size - 1);
	else
		document(data + 1, size - 1);
	return 0;
}
