/* SPDX-License-Identifier: Apache-2.0 */
/* net_config — a NIC's configuration: MAC addresses and port-forward rules as users write
 * them (shared by every front end), and the backend it names. See include/kiln/virtio_net.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/net_backend.h"

struct net_backend *net_backend_open(struct dev_host *host, const struct net_config *cfg,
				     struct error *e)
{
	return cfg->kind == NET_TAP ? net_tap_open(host, cfg->tap, e) : net_user_open(host, cfg, e);
}

int net_parse_mac(const char *text, uint8_t mac[6])
{
	unsigned b[6];
	char tail;

	if (strlen(text) != 17 ||
	    sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++) {
		if (text[3 * i] == '+' || text[3 * i] == '-' || text[3 * i] == ' ' ||
		    text[3 * i + 1] == ' ' || (i < 5 && text[3 * i + 2] != ':'))
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	return (mac[0] & 1) ? -EINVAL : 0; /* a multicast address is no NIC's */
}

/* "ADDR:PORT" with ADDR possibly empty (then @def); returns 0 or -EINVAL. */
static int parse_endpoint(const char *text, size_t len, const char *def, struct in_addr *addr,
			  uint16_t *port)
{
	char buf[64];
	const char *colon;
	unsigned long p;
	char *end;

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, len);
	buf[len] = 0;
	colon = strrchr(buf, ':');
	if (!colon || colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || p == 0 || p > 65535)
		return -EINVAL;
	*port = (uint16_t)p;
	buf[colon - buf] = 0;
	return inet_pton(AF_INET, buf[0] ? buf : def, addr) == 1 ? 0 : -EINVAL;
}

int net_parse_hostfwd(const char *text, struct net_hostfwd *fwd)
{
	const char *rest = text, *dash;

	*fwd = (struct net_hostfwd){ .text = text };
	if (!strncmp(rest, "tcp:", 4)) {
		rest += 4;
	} else if (!strncmp(rest, "udp:", 4)) {
		fwd->udp = true;
		rest += 4;
	} else if (rest[0] == ':') {
		rest += 1; /* no protocol: TCP */
	} else {
		return -EINVAL;
	}
	dash = strchr(rest, '-');
	if (!dash || parse_endpoint(rest, (size_t)(dash - rest), "127.0.0.1", &fwd->host_addr,
				    &fwd->host_port))
		return -EINVAL;
	return parse_endpoint(dash + 1, strlen(dash + 1), "10.0.2.15", &fwd->guest_addr,
			      &fwd->guest_port);
}
