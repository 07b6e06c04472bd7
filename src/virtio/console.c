/* console — virtio-console (virtio 1.2 §5.3) as a second console, hvc0 in a Linux guest, see
 * include/kiln/virtio.h.
 *
 * One port, no multiport and no size feature: queue 0 carries bytes to the guest, queue 1
 * bytes from it. The host side is a Unix socket kiln listens on (one client at a time; its
 * bytes go to the guest, the guest's to it) or a file the guest's output is appended to. Bytes
 * to the guest are read from the client straight into the guest's buffers, only while the
 * guest has buffers; output with nobody connected, or that the client cannot take at once, is
 * dropped and counted (a console, like a serial line, does not hold a guest back). Everything
 * runs on kiln's event loop, the sockets registered with the interest the device's state
 * calls for (sync_interest()). See include/kiln/virtio_console.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>

#include "kiln/devices.h"
#include "kiln/pci.h"
#include "kiln/virtio.h"
#include "kiln/virtio_console.h"

#define CONS_QUEUE_SIZE 64
#define CONS_MAX_WRITE (64u << 10)  /* output taken per buffer; the rest is dropped */
#define RXQ 0
#define TXQ 1

struct cons {
	struct virtio_dev dev;
	struct loop *loop;
	char *path;
	int listen_fd;            /* socket backend, else -1 */
	int client_fd;            /* the connected client, or -1 */
	int out_fd;               /* file backend, else -1 */
	unsigned listen_events, client_events; /* what they are watched for */
	bool rx_waiting;          /* the guest has no receive buffers: wait for its kick */
	struct virtq_chain chain;
	uint64_t dropped;
	struct log_once drop;
};

static struct cons *to_cons(struct virtio_dev *dev) { return dev->opaque; }

static void drop_client(struct cons *c);
static void sync_interest(struct cons *c);

static void drop_output(struct cons *c, uint64_t bytes)
{
	c->dropped += bytes;
	if (log_once_first(&c->drop))
		log_info("virtio-console: output with no reader dropped (further drops not logged)");
}

/* Guest output (§5.3.6.1): to the client or the file. */
static uint32_t cons_tx(struct virtio_dev *dev, const struct virtq_chain *ch)
{
	struct cons *c = to_cons(dev);
	struct iovec iov[VIRTQ_CHAIN_MAX];
	int fd = c->out_fd >= 0 ? c->out_fd : c->client_fd;
	uint64_t len = ch->out_len < CONS_MAX_WRITE ? ch->out_len : CONS_MAX_WRITE;
	ssize_t done = 0;
	int n;

	if (!len)
		return 0;
	n = virtq_chain_iov(ch, false, 0, len, iov);
	if (fd >= 0) {
		done = writev(fd, iov, n);
		if (done < 0 && fd == c->client_fd && errno != EAGAIN && errno != EINTR)
			drop_client(c); /* the client went away */
		done = done < 0 ? 0 : done;
	}
	if ((uint64_t)done < ch->out_len)
		drop_output(c, ch->out_len - (uint64_t)done);
	return 0;
}

/* Client input into the guest's receive buffers while both have something. */
static void cons_rx(struct cons *c)
{
	struct virtq *q = &c->dev.q[RXQ];

	while (c->client_fd >= 0 && !c->rx_waiting && virtio_dev_live(&c->dev) && q->ready) {
		struct iovec iov[VIRTQ_CHAIN_MAX];
		int ret = virtq_pop(c->dev.mem, q, &c->chain), n;
		ssize_t got;

		if (ret < 0) {
			virtio_dev_needs_reset(&c->dev, "malformed receive descriptor chain");
			return;
		}
		if (ret == 0) {
			if (virtq_arm_notify(q))
				continue;
			c->rx_waiting = true;
			break;
		}
		if (!c->chain.in_len) {
			virtio_dev_needs_reset(&c->dev, "receive buffer without device-writable bytes");
			return;
		}
		n = virtq_chain_iov(&c->chain, true, 0, c->chain.in_len, iov);
		got = readv(c->client_fd, iov, n);
		if (got > 0) {
			virtq_push(q, c->chain.head, (uint32_t)got);
			continue;
		}
		q->last_avail--; /* nothing read: the buffer goes back */
		if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
			drop_client(c); /* end of the client's input: the next one may connect */
		break;
	}
	virtio_dev_notify_if_needed(&c->dev, RXQ);
}

static void cons_queue_notify(struct virtio_dev *dev, unsigned q)
{
	struct cons *c = to_cons(dev);

	if (q == TXQ) {
		virtio_dev_process(dev, TXQ, cons_tx);
	} else {
		c->rx_waiting = false;
		cons_rx(c);
	}
	sync_interest(c);
}

/* Forget the client: its socket, and its watch. */
static void drop_client(struct cons *c)
{
	loop_unwatch(c->loop, c->client_fd);
	close(c->client_fd);
	c->client_fd = -1;
}

/* Watch the sockets for what the state calls for: a new client while there is none; the
 * client's input only while the guest takes input (else only its hang-up, so that a client
 * that went away frees the place for the next one). Loop thread, lock held. */
static void sync_interest(struct cons *c)
{
	bool takes = !c->rx_waiting && virtio_dev_live(&c->dev) && c->dev.q[RXQ].ready;
	unsigned listen = c->client_fd < 0 ? LOOP_IN : 0, client = takes ? LOOP_IN : LOOP_HUP;

	if (c->listen_fd >= 0 && listen != c->listen_events &&
	    loop_set_events(c->loop, c->listen_fd, listen) == 0)
		c->listen_events = listen;
	if (c->client_fd >= 0 && client != c->client_events &&
	    loop_set_events(c->loop, c->client_fd, client) == 0)
		c->client_events = client;
}

static void client_event(void *opaque, unsigned events)
{
	struct cons *c = opaque;

	pthread_mutex_lock(&c->dev.lock);
	if (c->client_events == LOOP_HUP) /* gone while the guest took no input */
		drop_client(c);
	else
		cons_rx(c);
	sync_interest(c);
	pthread_mutex_unlock(&c->dev.lock);
}

static void listen_event(void *opaque, unsigned events)
{
	struct cons *c = opaque;
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	pthread_mutex_lock(&c->dev.lock);
	if (fd >= 0 && c->client_fd < 0 && loop_watch(c->loop, c, fd, 0, client_event, c) == 0) {
		c->client_fd = fd;
		c->client_events = 0;
	} else if (fd >= 0) {
		close(fd);
	}
	sync_interest(c);
	pthread_mutex_unlock(&c->dev.lock);
}

static void cons_reset(struct virtio_dev *dev) { to_cons(dev)->rx_waiting = false; }

/* Close the host side and release @c's own memory (not the virtio_dev part). */
static void close_backend(struct cons *c)
{
	if (c->loop)
		loop_forget(c->loop, c);
	if (c->client_fd >= 0)
		close(c->client_fd);
	if (c->out_fd >= 0)
		close(c->out_fd);
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->path);
	}
	free(c->path);
	free(c);
}

static void cons_free(struct virtio_dev *dev)
{
	virtio_dev_destroy(dev);
	close_backend(to_cons(dev));
}

static const struct virtio_dev_ops console_ops = {
	.device_id = VIRTIO_ID_CONSOLE,
	.nr_queues = 2,
	.queue_size = CONS_QUEUE_SIZE,
	.pci_class = PCI_CLASS_CODE_UNCLASSIFIED,
	.config_len = 0,
	.queue_notify = cons_queue_notify,
	.reset = cons_reset,
	.free = cons_free,
};

/* The backend: a listening Unix socket or an output file; -errno with @e set. */
static int open_backend(struct cons *c, const struct console_config *cfg, struct error *e)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int err;

	if (cfg->kind == CONSOLE_FILE) {
		c->out_fd = open(cfg->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (c->out_fd < 0)
			return error_set(e, ERROR_USAGE, "console: open %s: %s", cfg->path,
					 strerror(errno));
		return 0;
	}
	if (strlen(cfg->path) >= sizeof(addr.sun_path))
		return error_set(e, ERROR_USAGE, "console: socket path %s is longer than %zu bytes",
				 cfg->path, sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, cfg->path);
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->listen_fd < 0 || bind(c->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(c->listen_fd, 4)) {
		err = errno;
		error_set(e, err == EADDRINUSE || err == ENOENT || err == EACCES ? ERROR_USAGE
										 : ERROR_RUNTIME,
			  "console: bind %s: %s", cfg->path, strerror(err));
		if (c->listen_fd >= 0)
			close(c->listen_fd);
		c->listen_fd = -1;
		return error_code(e);
	}
	return 0;
}

static int cons_create(struct dev_host *host, const void *config, unsigned index, void **state,
		       struct error *e)
{
	const struct console_config *cfg = config;
	struct cons *c = calloc(1, sizeof(*c));
	int ret;

	if (!c || !(c->path = strdup(cfg->path))) {
		free(c);
		return error_set(e, ERROR_RUNTIME, "console: out of memory");
	}
	c->listen_fd = c->client_fd = c->out_fd = -1;
	c->loop = host->loop;
	if (open_backend(c, cfg, e)) {
		close_backend(c);
		return error_code(e);
	}
	ret = virtio_dev_init(&c->dev, &console_ops, c, host->mem);
	if (ret) {
		close_backend(c);
		return error_set(e, ERROR_RUNTIME, "console: %s", strerror(-ret));
	}
	ret = c->listen_fd >= 0 ? loop_watch(c->loop, c, c->listen_fd, LOOP_IN, listen_event, c) : 0;
	c->listen_events = LOOP_IN;
	if (ret) {
		cons_free(&c->dev);
		return error_set(e, ERROR_RUNTIME, "console: event loop: %s", strerror(-ret));
	}
	*state = &c->dev;
	return 0;
}

const struct device_class virtio_console_class = {
	.name = "console",
	.kind = DEVICE_VIRTIO,
	.max = 1,
	.create = cons_create,
};
