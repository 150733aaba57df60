// SPDX-License-Identifier: GPL-2.0
/*
 * ts-integrity: every byte arrives once, in order, in both directions, with
 * random write and read sizes around the ring's capacity, across the start-up
 * window (bytes sent before the pair is ready) and under backpressure.
 */
#include <errno.h>
#include <linux/aio_abi.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tsutil.h"

/* One direction of a bulk transfer: a writer thread on one end, a reader on the other. */
struct dir {
	const char *name;
	int wfd, rfd;
	uint64_t seed, len;
	size_t max_chunk;
	uint64_t rng_seed;
	uint64_t got, sum;
};

static size_t pick_size(struct ts_rng *g, size_t max)
{
	switch (ts_rand(g) % 4) {
	case 0:
		return ts_rand_range(g, 1, 64);
	case 1:
		return ts_rand_range(g, 65, 4096);
	default:
		return ts_rand_range(g, 1, max);
	}
}

static void wait_ready(int fd, short ev, const char *what)
{
	if (!(ts_poll1(fd, ev, 20000) & (ev | POLLERR | POLLHUP)))
		ts_fail("%s: poll for %s timed out after 20 s", what,
			ev == POLLIN ? "POLLIN" : "POLLOUT");
}

static void *bulk_writer(void *arg)
{
	struct dir *d = arg;
	char *buf = malloc(d->max_chunk);
	struct ts_rng g;
	uint64_t off = 0;

	ts_rng_init(&g, d->rng_seed);
	while (off < d->len) {
		size_t n = pick_size(&g, d->max_chunk);
		int flags = MSG_NOSIGNAL | (ts_rand(&g) % 4 == 0 ? MSG_DONTWAIT : 0);
		ssize_t k;

		if (n > d->len - off)
			n = d->len - off;
		ts_fill(d->seed, off, buf, n);
		k = send(d->wfd, buf, n, flags);
		if (k < 0 && errno == EAGAIN && (flags & MSG_DONTWAIT)) {
			wait_ready(d->wfd, POLLOUT, d->name);
			continue;
		}
		if (k <= 0)
			ts_fail("%s: send of %zu at %llu: %m", d->name, n, (unsigned long long)off);
		off += k;
	}
	if (shutdown(d->wfd, SHUT_WR) < 0)
		ts_fail("%s: shutdown: %m", d->name);
	free(buf);
	return NULL;
}

static void *bulk_reader(void *arg)
{
	struct dir *d = arg;
	char *buf = malloc(d->max_chunk);
	struct ts_rng g;

	ts_rng_init(&g, d->rng_seed ^ 0x5555);
	d->sum = TS_SUM_INIT;
	for (;;) {
		size_t n = pick_size(&g, d->max_chunk);
		int flags = ts_rand(&g) % 4 == 0 ? MSG_DONTWAIT : 0;
		ssize_t k = recv(d->rfd, buf, n, flags);
		long bad;

		if (k < 0 && errno == EAGAIN && flags) {
			wait_ready(d->rfd, POLLIN, d->name);
			continue;
		}
		if (k < 0)
			ts_fail("%s: recv at %llu: %m", d->name, (unsigned long long)d->got);
		if (k == 0)
			break;
		bad = ts_check(d->seed, d->got, buf, k);
		if (bad >= 0)
			ts_fail("%s: byte %llu corrupt (read of %zd at %llu)", d->name,
				(unsigned long long)(d->got + bad), k, (unsigned long long)d->got);
		d->sum = ts_sum64(d->sum, buf, k);
		d->got += k;
		if (d->got > d->len)
			ts_fail("%s: %llu bytes received, only %llu sent", d->name,
				(unsigned long long)d->got, (unsigned long long)d->len);
	}
	if (d->got != d->len)
		ts_fail("%s: EOF after %llu of %llu bytes", d->name, (unsigned long long)d->got,
			(unsigned long long)d->len);
	free(buf);
	return NULL;
}

static uint64_t stream_sum(uint64_t seed, uint64_t len)
{
	char buf[4096];
	uint64_t h = TS_SUM_INIT;

	for (uint64_t off = 0; off < len; off += sizeof(buf)) {
		size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);

		ts_fill(seed, off, buf, n);
		h = ts_sum64(h, buf, n);
	}
	return h;
}

/* Both directions at once, each `len` bytes, random sizes and MSG_DONTWAIT. */
static void bulk(struct ts_run *r, uint64_t len)
{
	size_t max = 3 * ts_ring_max();
	struct dir d[2] = {
		{.name = "client->server",
		 .seed = r->seed ^ 1,
		 .len = len,
		 .max_chunk = max,
		 .rng_seed = r->seed ^ 11},
		{.name = "server->client",
		 .seed = r->seed ^ 2,
		 .len = len,
		 .max_chunk = max,
		 .rng_seed = r->seed ^ 12},
	};
	unsigned long t[4];
	int c, s;

	ts_pair(&c, &s);
	d[0].wfd = c, d[0].rfd = s;
	d[1].wfd = s, d[1].rfd = c;
	ts_phase("bulk transfer, both directions");
	for (int i = 0; i < 2; i++) {
		t[2 * i] = ts_spawn(bulk_reader, &d[i]);
		t[2 * i + 1] = ts_spawn(bulk_writer, &d[i]);
	}
	for (int i = 0; i < 4; i++)
		ts_join(t[i]);
	for (int i = 0; i < 2; i++) {
		if (d[i].sum != stream_sum(d[i].seed, len))
			ts_fail("%s: checksum mismatch", d[i].name);
		ts_note("%s %llu bytes sum %016llx", d[i].name, (unsigned long long)d[i].got,
			(unsigned long long)d[i].sum);
	}
	close(c);
	close(s);
}

static void scen_bulk(struct ts_run *r)
{
	bulk(r, 4u << 20);
}

static void t_bulk_v4(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_bulk});
}

static void t_bulk_v6(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_bulk, .family = AF_INET6});
}

/* ---- single writes just below, at and above power-of-two ring sizes ---- */

struct one_write {
	int fd;
	uint64_t seed, off;
	size_t len;
};

static void *write_once(void *arg)
{
	struct one_write *w = arg;
	char *buf = malloc(w->len);

	ts_fill(w->seed, w->off, buf, w->len);
	/* One call: a blocking send returns only when all of it is taken. */
	ssize_t n = send(w->fd, buf, w->len, MSG_NOSIGNAL);

	if (n != (ssize_t)w->len)
		ts_fail("send(%zu) returned %zd: %m", w->len, n);
	free(buf);
	return NULL;
}

static void scen_sizes(struct ts_run *r)
{
	size_t max = ts_ring_max();
	uint64_t off[2] = {0, 0};
	struct ts_rng g;
	int fd[2];

	ts_rng_init(&g, r->seed);
	ts_pair(&fd[0], &fd[1]);
	for (size_t p = 4096; p <= 2 * max; p *= 2) {
		for (int d = -1; d <= 1; d++) {
			for (int dir = 0; dir < 2; dir++) {
				struct one_write w = {fd[dir], r->seed ^ dir, off[dir], p + d};
				unsigned long t;

				ts_phase("size %zu, direction %d", p + d, dir);
				t = ts_spawn(write_once, &w);
				ts_recv_stream(fd[!dir], w.seed, w.off, w.len, 3 * max, &g);
				ts_join(t);
				off[dir] += w.len;
			}
		}
	}
	ts_note("sent %llu and %llu bytes", (unsigned long long)off[0], (unsigned long long)off[1]);
	close(fd[0]);
	close(fd[1]);
}

static void t_capacity_sizes(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_sizes});
}

/* ---- one byte at a time ---- */

static void *tiny_writer(void *arg)
{
	struct one_write *w = arg;

	for (size_t i = 0; i < w->len; i++) {
		char b;

		ts_fill(w->seed, i, &b, 1);
		ts_write_all(w->fd, &b, 1);
	}
	return NULL;
}

static void scen_tiny(struct ts_run *r)
{
	struct one_write w = {.seed = r->seed, .len = 20000};
	struct ts_rng g;
	unsigned long t;
	int s;

	ts_rng_init(&g, r->seed);
	ts_pair(&w.fd, &s);
	t = ts_spawn(tiny_writer, &w);
	ts_recv_stream(s, w.seed, 0, w.len, 7, &g);
	ts_join(t);
	ts_note("%zu one-byte writes received", w.len);
	close(w.fd);
	close(s);
}

static void t_tiny_writes(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_tiny});
}

/* ---- start-up window: bytes sent before the pair is ready arrive first ---- */

/*
 * Three stretches of one stream: A before the server's socket exists
 * (TCP_DEFER_ACCEPT creates it with the first data, so A surely precedes the
 * pair), B once paired but before the server ever read (the module hands a
 * direction over only once its receiver reads), C after the server read:
 * the ring.  A, B and C must arrive in order.
 */
static void scen_startup(struct ts_run *r)
{
	const uint64_t a = 3000, b = 5000, c_len = 300000;
	int lfd = ts_listen_at(ts_loopback(r->family), r->port, 16, 5);
	int c = ts_connect(r->family, r->port), s;
	struct ts_rng g;
	char one;

	ts_rng_init(&g, r->seed);
	ts_phase("start-up bytes before the pair");
	ts_send_stream(c, r->seed, 0, a, 1000, &g);
	s = ts_accept(lfd, 10000);
	close(lfd);
	ts_expect_spliced(c);
	ts_expect_spliced(s);
	ts_phase("start-up bytes of the pair");
	ts_send_stream(c, r->seed, a, b, 1000, &g);
	ts_sleep_ms(50);
	ts_phase("reading the start-up bytes");
	ts_recv_stream(s, r->seed, 0, a + b, 1000, &g);
	ts_phase("ring bytes");
	struct one_write w = {c, r->seed, a + b, c_len};
	unsigned long t = ts_spawn(write_once, &w);

	ts_recv_stream(s, r->seed, a + b, c_len, 70000, &g);
	ts_join(t);
	/* The other direction: the same, starting once the client read. */
	ts_send_stream(s, r->seed ^ 7, 0, 3000, 1000, &g);
	ts_recv_stream(c, r->seed ^ 7, 0, 3000, 1000, &g);
	ts_transfer(s, c, r->seed ^ 7, 3000, 100000);
	TS_ASSERT(recv(s, &one, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "extra bytes");
	ts_note("start-up %llu + %llu, then %llu bytes in order", (unsigned long long)a,
		(unsigned long long)b, (unsigned long long)c_len);
	close(c);
	close(s);
}

static void t_startup_first(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_startup,
		.want = TS_WANT_RING " handoffs>=2 startup_bytes>0",
	});
}

/*
 * A large start-up backlog: the client writes 1 MiB in one call before the
 * server accepts; its later writes go through the ring.
 */
static void scen_startup_backlog(struct ts_run *r)
{
	const size_t a = 1 << 20;
	int lfd = ts_listen_at(ts_loopback(r->family), r->port, 16, 5);
	int c = ts_connect(r->family, r->port), s;
	struct one_write w = {c, r->seed, 0, a};
	struct ts_rng g;
	unsigned long t;

	ts_rng_init(&g, r->seed);
	t = ts_spawn(write_once, &w);
	ts_sleep_ms(300);
	s = ts_accept(lfd, 10000);
	close(lfd);
	ts_phase("reading the backlog");
	ts_recv_stream(s, r->seed, 0, a, 100000, &g);
	ts_join(t);
	ts_expect_spliced(c);
	ts_expect_spliced(s);
	ts_phase("after the backlog");
	w.off = a;
	w.len = 200000;
	t = ts_spawn(write_once, &w);
	ts_recv_stream(s, r->seed, a, w.len, 100000, &g);
	ts_join(t);
	ts_note("backlog %zu + %zu bytes in order", a, w.len);
	close(c);
	close(s);
}

static void t_startup_backlog(void)
{
	/* The backlog itself went over TCP: fewer ring bytes than bytes sent. */
	ts_differential(&(struct ts_diff){
		.fn = scen_startup_backlog,
		.want = TS_WANT_RING " ring_bytes_tx<1248576",
	});
}

/*
 * TCP_CORK and MSG_MORE across the handoff: start-up bytes still held by the
 * cork in the TCP send queue when the ring takes over must come first.
 */
struct cork_reader {
	int fd;
	uint64_t seed, len;
};

static void *cork_read(void *arg)
{
	struct cork_reader *a = arg;

	ts_recv_stream(a->fd, a->seed, 0, a->len, 4096, &(struct ts_rng){a->seed});
	return NULL;
}

static void cork_send(int fd, uint64_t seed, uint64_t *off, size_t n, int flags)
{
	char *buf = malloc(n);

	ts_fill(seed, *off, buf, n);
	if (send(fd, buf, n, flags | MSG_NOSIGNAL) != (ssize_t)n)
		ts_fail("send of %zu (flags %#x): %m", n, flags);
	*off += n;
	free(buf);
}

static void scen_cork(struct ts_run *r)
{
	struct cork_reader rd;
	uint64_t off = 0;
	unsigned long t;
	int c, s;

	ts_pair_cold(&c, &s);
	ts_set_int(c, IPPROTO_TCP, TCP_CORK, 1);
	cork_send(c, r->seed, &off, 100, 0); /* held by the cork, receiver not reading */
	rd = (struct cork_reader){s, r->seed, 100 + 333 + 50000 + 777 + 10};
	t = ts_spawn(cork_read, &rd);
	ts_sleep_ms(50); /* the reader waits in recvmsg: the next send may hand off */
	cork_send(c, r->seed, &off, 333, MSG_MORE);
	cork_send(c, r->seed, &off, 50000, 0);
	ts_set_int(c, IPPROTO_TCP, TCP_CORK, 0);
	cork_send(c, r->seed, &off, 777, MSG_MORE);
	cork_send(c, r->seed, &off, 10, 0);
	ts_phase("reading corked bytes");
	ts_join(t);
	ts_note("%llu corked bytes in order", (unsigned long long)off);
	close(c);
	close(s);
}

static void t_cork_across_handoff(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_cork});
}

/* ---- a streaming echo: the client reads while it writes ---- */

struct echo_arg {
	int fd;
	uint64_t len;
};

static void *echo_server(void *arg)
{
	struct echo_arg *e = arg;
	char buf[65536];
	uint64_t n = 0;

	for (;;) {
		ssize_t k = recv(e->fd, buf, sizeof(buf), 0);

		if (k < 0)
			ts_fail("echo server recv: %m");
		if (k == 0)
			break;
		ts_write_all(e->fd, buf, k);
		n += k;
	}
	shutdown(e->fd, SHUT_WR);
	e->len = n;
	return NULL;
}

struct stream_arg {
	int fd;
	uint64_t seed, len;
	size_t max;
	uint64_t rng;
};

static void *stream_writer(void *arg)
{
	struct stream_arg *a = arg;
	struct ts_rng g;

	ts_rng_init(&g, a->rng);
	ts_send_stream(a->fd, a->seed, 0, a->len, a->max, &g);
	shutdown(a->fd, SHUT_WR);
	return NULL;
}

static void scen_echo(struct ts_run *r)
{
	struct stream_arg w = {
		.seed = r->seed, .len = 2u << 20, .max = 3 * ts_ring_max(), .rng = r->seed};
	struct echo_arg e;
	unsigned long t1, t2;
	uint64_t got;
	int c, s;

	ts_pair(&c, &s);
	w.fd = c;
	e.fd = s;
	t1 = ts_spawn(echo_server, &e);
	t2 = ts_spawn(stream_writer, &w);
	ts_phase("reading the echo");
	got = ts_read_stream_to_eof(c, r->seed, 100000);
	ts_join(t1);
	ts_join(t2);
	TS_ASSERT(got == w.len, "echo: %llu of %llu bytes", (unsigned long long)got,
		  (unsigned long long)w.len);
	ts_note("echoed %llu bytes", (unsigned long long)got);
	close(c);
	close(s);
}

static void t_echo_stream(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_echo});
}

/* ---- both directions full at once, then both sides read concurrently ---- */

struct recv_arg {
	int fd;
	uint64_t seed, len;
	uint64_t rng;
};

static void *recv_thread(void *arg)
{
	struct recv_arg *a = arg;
	struct ts_rng g;

	ts_rng_init(&g, a->rng);
	ts_recv_stream(a->fd, a->seed, 0, a->len, 100000, &g);
	return NULL;
}

static void scen_both_full(struct ts_run *r)
{
	size_t len = 8 * ts_ring_max() + 12345;
	struct one_write w[2];
	struct recv_arg rd[2];
	unsigned long t[2], tr[2];
	int fd[2];

	ts_pair(&fd[0], &fd[1]);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct one_write){fd[i], r->seed ^ (i + 1), 0, len};
		t[i] = ts_spawn(write_once, &w[i]);
	}
	ts_sleep_ms(300); /* both writers blocked, both paths full */
	ts_phase("reading both directions");
	for (int i = 0; i < 2; i++) {
		rd[i] = (struct recv_arg){fd[!i], w[i].seed, len, r->seed + i};
		tr[i] = ts_spawn(recv_thread, &rd[i]);
	}
	for (int i = 0; i < 2; i++) {
		ts_join(tr[i]);
		ts_join(t[i]);
	}
	ts_note("%zu bytes each way", len);
	close(fd[0]);
	close(fd[1]);
}

static void t_both_full(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_both_full});
}

/* ---- a full path blocks the sender until the reader makes room ---- */

static void scen_full_blocks(struct ts_run *r)
{
	struct one_write w;
	struct ts_rng g;
	uint64_t filled;
	unsigned long t;
	int c, s;

	ts_rng_init(&g, r->seed);
	ts_pair(&c, &s);
	ts_phase("filling");
	filled = ts_fill_until_eagain(c, r->seed, 0);
	ts_sleep_ms(100);
	filled += ts_fill_until_eagain(c, r->seed, filled);
	w = (struct one_write){c, r->seed, filled, 1000};
	t = ts_spawn(write_once, &w);
	ts_sleep_ms(300);
	/* The blocked writer must still be in send(): nothing was read. */
	TS_ASSERT(pthread_tryjoin_np((pthread_t)t, NULL) != 0,
		  "a blocking send returned with the path full (%llu bytes queued)",
		  (unsigned long long)filled);
	ts_note("sender blocked while full");
	ts_phase("draining");
	ts_recv_stream(s, r->seed, 0, filled + w.len, 100000, &g);
	ts_join(t);
	ts_note("sender resumed, all bytes received");
	close(c);
	close(s);
}

static void t_full_blocks_sender(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_full_blocks});
}

/* ---- module parameters ---- */

#define PARAMS "/sys/module/tcp_splice/parameters/"

/* A parameter as sysfs shows it, or false without the module. */
static bool param_get(const char *name, char *buf, size_t n)
{
	char path[128];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	f = fopen(path, "r");
	if (!f)
		return false;
	ok = fgets(buf, (int)n, f) != NULL;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return ok;
}

/* ---- request/response: the requester is woken when its request is consumed ---- */

#define EW_ROUNDS 40
#define EW_REQ	  300
#define EW_REPLY  700

/* A boolean parameter as sysfs shows it ('Y' or 'N'), 0 without the module. */
static char bool_param(const char *name)
{
	char v[8];

	if (!param_get(name, v, sizeof(v)))
		return 0;
	return v[0] == 'Y' || v[0] == 'N' ? v[0] : 0;
}

static void bool_param_set(const char *name, char v)
{
	ts_param_set(name, (char[]){v, 0});
}

static char early_wake_saved, early_wake_poll_saved;

static void early_wake_restore(void)
{
	if (early_wake_saved)
		bool_param_set("early_wake", early_wake_saved);
	if (early_wake_poll_saved)
		bool_param_set("early_wake_poll", early_wake_poll_saved);
}

/*
 * How the requester waits for its reply; EW_SPIN never sleeps to wait.
 * io_uring and AIO poll trust a wake-up's key, and look again for
 * themselves when there is none, as the early wake-up's.
 */
enum ew_wait { EW_RECV, EW_EPOLL, EW_POLL, EW_SPIN, EW_URING, EW_AIO };

static const char *const ew_wait_names[] = {
	[EW_RECV] = "recv",	  [EW_EPOLL] = "epoll",		[EW_POLL] = "poll",
	[EW_SPIN] = "busy epoll", [EW_URING] = "io_uring poll", [EW_AIO] = "AIO poll"};

/* A minimal io_uring, for one IORING_OP_POLL_ADD at a time (no liburing). */
struct uring {
	int fd;
	unsigned int *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	void *sq_ring, *cq_ring;
	size_t sq_len, cq_len, sqes_len;
};

static void *uring_map(int fd, size_t len, off_t off)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, off);

	if (p == MAP_FAILED)
		ts_fail("io_uring mmap at %#llx: %m", (unsigned long long)off);
	return p;
}

static void uring_init(struct uring *u)
{
	struct io_uring_params p = {0};

	u->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (u->fd < 0)
		ts_fail("io_uring_setup: %m");
	u->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned int);
	u->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	u->sq_ring = uring_map(u->fd, u->sq_len, IORING_OFF_SQ_RING);
	u->cq_ring = uring_map(u->fd, u->cq_len, IORING_OFF_CQ_RING);
	u->sqes = uring_map(u->fd, u->sqes_len, IORING_OFF_SQES);
	u->sq_tail = (unsigned int *)((char *)u->sq_ring + p.sq_off.tail);
	u->sq_mask = (unsigned int *)((char *)u->sq_ring + p.sq_off.ring_mask);
	u->sq_array = (unsigned int *)((char *)u->sq_ring + p.sq_off.array);
	u->cq_head = (unsigned int *)((char *)u->cq_ring + p.cq_off.head);
	u->cq_tail = (unsigned int *)((char *)u->cq_ring + p.cq_off.tail);
	u->cq_mask = (unsigned int *)((char *)u->cq_ring + p.cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)((char *)u->cq_ring + p.cq_off.cqes);
}

static void uring_exit(struct uring *u)
{
	munmap(u->sqes, u->sqes_len);
	munmap(u->cq_ring, u->cq_len);
	munmap(u->sq_ring, u->sq_len);
	close(u->fd);
}

/* One poll of fd for events, waited for up to ms: its result (events or -errno). */
static int uring_poll(const struct uring *u, int fd, unsigned int events, int ms)
{
	unsigned int tail = *u->sq_tail, idx = tail & *u->sq_mask, head;
	struct io_uring_sqe *sqe = &u->sqes[idx];
	struct __kernel_timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	struct io_uring_getevents_arg arg = {.ts = (uint64_t)(uintptr_t)&ts};
	int res;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_POLL_ADD;
	sqe->fd = fd;
	sqe->poll32_events = events;
	u->sq_array[idx] = idx;
	/* The entry before the tail: the kernel reads the tail with acquire. */
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, u->fd, 1, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
		    &arg, sizeof(arg)) < 0 &&
	    errno != ETIME)
		ts_fail("io_uring_enter: %m");
	head = *u->cq_head;
	if (head == __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE))
		ts_fail("io_uring poll: no completion within %d ms", ms);
	res = u->cqes[head & *u->cq_mask].res;
	__atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

/* One AIO poll (IOCB_CMD_POLL) of fd for events, waited for up to ms. */
static long long aio_poll1(aio_context_t ctx, int fd, unsigned int events, int ms)
{
	struct iocb cb = {
		.aio_fildes = (uint32_t)fd, .aio_lio_opcode = IOCB_CMD_POLL, .aio_buf = events};
	struct iocb *cbs[1] = {&cb};
	struct io_event ev;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	if (syscall(__NR_io_submit, ctx, 1, cbs) != 1)
		ts_fail("io_submit: %m");
	if (syscall(__NR_io_getevents, ctx, 1, 1, &ev, &ts) != 1)
		ts_fail("AIO poll: no completion within %d ms: %m", ms);
	return ev.res;
}

struct ew_case {
	enum ew_wait wait;
	bool early_wake, early_wake_poll;
};

struct requester {
	int fd;
	uint64_t seed;
	enum ew_wait wait;
	long sleeps; /* out: the thread's voluntary context switches */
	struct uring uring;
	aio_context_t aio;
};

static long thread_sleeps(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru))
		ts_fail("getrusage: %m");
	return ru.ru_nvcsw;
}

/*
 * An event loop's wait: the socket must be readable when it returns, and a
 * receive that does not block must find bytes; an early wake-up must never
 * show through.
 */
static void requester_wait(const struct requester *q, int ep, int i)
{
	struct epoll_event ev;
	char c;
	ssize_t n;

	if (q->wait == EW_SPIN) {
		/* A busy event loop: it looks again at once, and never sleeps. */
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		while ((n = epoll_wait(ep, &ev, 1, 0)) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if (t1.tv_sec - t0.tv_sec > 5)
				ts_fail("reply %d: not readable by epoll within 5 s", i);
		}
		if (n != 1 || !(ev.events & EPOLLIN))
			ts_fail("reply %d: epoll_wait returned %zd (events %#x): %m", i, n,
				n == 1 ? ev.events : 0);
	} else if (q->wait == EW_EPOLL) {
		n = epoll_wait(ep, &ev, 1, 5000);
		if (n != 1 || !(ev.events & EPOLLIN))
			ts_fail("reply %d: epoll_wait returned %zd (events %#x): %m", i, n,
				n == 1 ? ev.events : 0);
	} else if (q->wait == EW_URING || q->wait == EW_AIO) {
		long long res = q->wait == EW_URING ? uring_poll(&q->uring, q->fd, POLLIN, 5000)
						    : aio_poll1(q->aio, q->fd, POLLIN, 5000);

		if (res < 0 || !(res & POLLIN))
			ts_fail("reply %d: %s completed with %lld (%s)", i, ew_wait_names[q->wait],
				res, res < 0 ? strerror((int)-res) : "no POLLIN");
	} else if (!(ts_poll1(q->fd, POLLIN, 5000) & POLLIN)) {
		ts_fail("reply %d: not readable by poll within 5 s", i);
	}
	n = recv(q->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n != 1)
		ts_fail("reply %d: %s reported the socket readable, but a peek found %s", i,
			ew_wait_names[q->wait], n < 0 ? strerror(errno) : "end of stream");
}

static void *requester_thread(void *arg)
{
	struct requester *q = arg;
	char buf[EW_REPLY];
	int ep = -1;
	long sleeps0;

	if (q->wait == EW_EPOLL || q->wait == EW_SPIN) {
		struct epoll_event ev = {.events = EPOLLIN};

		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, q->fd, &ev))
			ts_fail("epoll: %m");
	} else if (q->wait == EW_URING) {
		uring_init(&q->uring);
	} else if (q->wait == EW_AIO && syscall(__NR_io_setup, 1, &q->aio)) {
		ts_fail("io_setup: %m");
	}
	sleeps0 = thread_sleeps();
	for (int i = 0; i < EW_ROUNDS; i++) {
		ts_fill(q->seed, (uint64_t)i * EW_REQ, buf, EW_REQ);
		if (ts_write_all(q->fd, buf, EW_REQ) != EW_REQ)
			ts_fail("request %d: short write: %m", i);
		if (q->wait != EW_RECV) {
			requester_wait(q, ep, i);
			/* The responder asleep in poll when the reply is taken. */
			ts_sleep_ms(3);
		}
		ts_read_full(q->fd, buf, EW_REPLY);
		if (ts_check(q->seed ^ 1, (uint64_t)i * EW_REPLY, buf, EW_REPLY) >= 0)
			ts_fail("reply %d: wrong bytes", i);
	}
	q->sleeps = thread_sleeps() - sleeps0;
	if (ep >= 0)
		close(ep);
	if (q->wait == EW_URING)
		uring_exit(&q->uring);
	if (q->wait == EW_AIO)
		syscall(__NR_io_destroy, q->aio);
	return NULL;
}

/*
 * The responder waits until the request is readable, then long enough for
 * the requester to be asleep, before it reads, and again before it replies.
 * With early_wake on, each read that empties the ring wakes a requester
 * asleep in recv once (early_wakes); one asleep in epoll, poll, io_uring or
 * AIO poll only with early_wake_poll on too, and only from the second
 * exchange (it must have read a reply before); a busy event loop, never
 * asleep, never; nor any requester with the parameters off.  Woken early,
 * the requester finds nothing and sleeps again: a voluntary context switch
 * more per exchange, which proves the wake-up reached it (AIO poll looks
 * again in a worker instead), and none of these waits may report the
 * socket readable before the reply is there.  With early_wake_poll, the
 * requester that takes a reply also wakes the responder, asleep in poll for
 * the next request (not after the last); an epoll or poll requester waits
 * before it reads, so that the responder always is asleep by then.  Either
 * way every byte arrives in order.
 */
static void scen_early_wake(struct ts_run *r)
{
	const struct ew_case *ec = r->arg;
	bool on = r->splice && ec->early_wake;
	struct requester q;
	struct ts_counters before, after;
	char buf[EW_REPLY];
	long long wakes, req_want = 0, resp_min = 0, resp_max = 0, extra;
	unsigned long t;
	int c, s;

	ts_pair(&c, &s);
	q = (struct requester){.fd = c, .seed = r->seed, .wait = ec->wait};
	ts_counters_read(&before);
	t = ts_spawn(requester_thread, &q);
	for (int i = 0; i < EW_ROUNDS; i++) {
		if (!(ts_poll1(s, POLLIN, 5000) & POLLIN))
			ts_fail("request %d: not readable within 5 s", i);
		ts_sleep_ms(3);
		ts_read_full(s, buf, EW_REQ);
		if (ts_check(r->seed, (uint64_t)i * EW_REQ, buf, EW_REQ) >= 0)
			ts_fail("request %d: wrong bytes", i);
		ts_sleep_ms(3);
		ts_fill(r->seed ^ 1, (uint64_t)i * EW_REPLY, buf, EW_REPLY);
		if (ts_write_all(s, buf, EW_REPLY) != EW_REPLY)
			ts_fail("reply %d: short write: %m", i);
	}
	ts_join(t);
	ts_counters_read(&after);
	wakes = ts_counter(&after, "early_wakes", NULL) - ts_counter(&before, "early_wakes", NULL);
	if (on && ec->wait == EW_RECV)
		req_want = EW_ROUNDS;
	else if (on && ec->early_wake_poll && ec->wait != EW_SPIN)
		req_want = EW_ROUNDS - 1;
	if (on && ec->early_wake_poll) {
		resp_max = EW_ROUNDS - 1;
		resp_min = ec->wait == EW_RECV ? 0 : resp_max * 9 / 10;
	}
	/* Sleeps per exchange without early wake-ups: recv, or wait and pause. */
	extra = q.sleeps -
		(long long)EW_ROUNDS * (ec->wait == EW_RECV || ec->wait == EW_SPIN ? 1 : 2);
	ts_log("%s, requester in %s, early_wake %d, early_wake_poll %d: %lld early wake-ups, "
	       "%ld requester sleeps in %d exchanges",
	       r->label, ew_wait_names[ec->wait], ec->early_wake, ec->early_wake_poll, wakes,
	       q.sleeps, EW_ROUNDS);
	/* A requester slower than 3 ms to fall asleep misses one. */
	TS_ASSERT(wakes >= req_want * 9 / 10 + resp_min && wakes <= req_want + resp_max,
		  "%lld early wake-ups in %d exchanges, %lld to %lld expected (%s, requester in "
		  "%s)",
		  wakes, EW_ROUNDS, req_want * 9 / 10 + resp_min, req_want + resp_max, r->label,
		  ew_wait_names[ec->wait]);
	/*
	 * AIO poll takes a wake-up without a key in a worker, which polls
	 * again and re-arms: the waiting thread itself is not woken.
	 */
	if (req_want && ec->wait != EW_AIO)
		TS_ASSERT(extra >= req_want * 8 / 10,
			  "the requester slept %ld times in %d exchanges: %lld early wake-ups "
			  "did not reach it (%s, in %s)",
			  q.sleeps, EW_ROUNDS, req_want, r->label, ew_wait_names[ec->wait]);
	else
		TS_ASSERT(extra <= EW_ROUNDS / 5,
			  "the requester slept %ld times in %d exchanges, as if woken early (%s, "
			  "in %s)",
			  q.sleeps, EW_ROUNDS, r->label, ew_wait_names[ec->wait]);
	ts_note("%d exchanges intact", EW_ROUNDS);
	close(c);
	close(s);
}

/*
 * A responder that serves a batch: two requesters wait in epoll, asleep,
 * each on its own connection; the responder never sleeps to wait for them
 * (it spins until both requests are there), then pauses once and reads
 * both.  Only the first read follows a sleep of the responder: it alone
 * wakes its requester early, the second (a batch's later request, whose
 * reply waits for the batch) wakes nobody.  The requesters' reads of their
 * replies wake nobody either: the spinning responder never sleeps.
 */
static void scen_early_wake_batch(struct ts_run *r)
{
	struct requester q[2];
	struct ts_counters before, after;
	char buf[EW_REPLY];
	long long wakes, want = r->splice ? EW_ROUNDS - 1 : 0;
	unsigned long t[2];
	int c[2], s[2];

	for (int k = 0; k < 2; k++) {
		ts_pair(&c[k], &s[k]);
		q[k] = (struct requester){.fd = c[k], .seed = r->seed + k, .wait = EW_EPOLL};
	}
	ts_counters_read(&before);
	for (int k = 0; k < 2; k++)
		t[k] = ts_spawn(requester_thread, &q[k]);
	for (int i = 0; i < EW_ROUNDS; i++) {
		for (int k = 0; k < 2; k++)
			for (int spins = 0; !(ts_poll1(s[k], POLLIN, 0) & POLLIN); spins++) {
				if (spins > 5000000)
					ts_fail("request %d of requester %d: not readable", i, k);
				sched_yield();
			}
		ts_sleep_ms(3);
		for (int k = 0; k < 2; k++) {
			ts_read_full(s[k], buf, EW_REQ);
			if (ts_check(r->seed + k, (uint64_t)i * EW_REQ, buf, EW_REQ) >= 0)
				ts_fail("request %d of requester %d: wrong bytes", i, k);
		}
		for (int k = 0; k < 2; k++) {
			ts_fill((r->seed + k) ^ 1, (uint64_t)i * EW_REPLY, buf, EW_REPLY);
			if (ts_write_all(s[k], buf, EW_REPLY) != EW_REPLY)
				ts_fail("reply %d to requester %d: short write: %m", i, k);
		}
	}
	for (int k = 0; k < 2; k++)
		ts_join(t[k]);
	ts_counters_read(&after);
	wakes = ts_counter(&after, "early_wakes", NULL) - ts_counter(&before, "early_wakes", NULL);
	ts_log("%s, a batch of two requesters in epoll: %lld early wake-ups in %d rounds", r->label,
	       wakes, EW_ROUNDS);
	TS_ASSERT(wakes >= want * 9 / 10 && wakes <= want + EW_ROUNDS / 10,
		  "%lld early wake-ups in %d rounds of a batch of two, %lld to %lld expected "
		  "(%s): one per round from the second",
		  wakes, EW_ROUNDS, want * 9 / 10, want + EW_ROUNDS / 10, r->label);
	ts_note("%d rounds of two exchanges intact", EW_ROUNDS);
	for (int k = 0; k < 2; k++) {
		close(c[k]);
		close(s[k]);
	}
}

static void t_early_wake(void)
{
	static struct ew_case cases[] = {
		{EW_RECV, true, false}, {EW_EPOLL, true, false}, {EW_POLL, true, false},
		{EW_RECV, true, true},	{EW_EPOLL, true, true},	 {EW_POLL, true, true},
		{EW_RECV, false, true}, {EW_EPOLL, false, true}, {EW_SPIN, true, true},
		{EW_URING, true, true}, {EW_AIO, true, true},
	};

	early_wake_saved = bool_param("early_wake");
	early_wake_poll_saved = bool_param("early_wake_poll");
	if (!early_wake_saved || !early_wake_poll_saved) {
		/* No module: both runs are plain TCP, and wake nobody early. */
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			ts_differential(&(struct ts_diff){.fn = scen_early_wake, .arg = &cases[i]});
		ts_differential(&(struct ts_diff){.fn = scen_early_wake_batch});
		return;
	}
	ts_cleanup(early_wake_restore);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool_param_set("early_wake", cases[i].early_wake ? 'Y' : 'N');
		bool_param_set("early_wake_poll", cases[i].early_wake_poll ? 'Y' : 'N');
		ts_differential(&(struct ts_diff){.fn = scen_early_wake, .arg = &cases[i]});
	}
	bool_param_set("early_wake", 'Y');
	bool_param_set("early_wake_poll", 'Y');
	ts_differential(&(struct ts_diff){.fn = scen_early_wake_batch});
	early_wake_restore();
}

/* ---- a ring that grew for a backlog gives its memory back once idle ---- */

/* The spliced run's inbound ring size of fd, in bytes. */
static unsigned long long ring_size(int fd)
{
	struct ts_conn cn;

	TS_ASSERT(ts_conn_of_fd(fd, &cn) == 1, "socket not in /proc/net/tcp_splice_conns");
	return cn.rx_size;
}

static void scen_shrink(struct ts_run *r)
{
	size_t len = ts_ring_max() < (1u << 20) ? ts_ring_max() : (1u << 20);
	struct ts_counters before, after;
	unsigned long long size = 0;
	struct one_write w;
	struct ts_rng g;
	unsigned long t;
	int c, s;

	ts_rng_init(&g, r->seed);
	ts_pair(&c, &s);
	ts_counters_read(&before);
	for (int round = 0; round < 2; round++) {
		uint64_t off = (uint64_t)round * len;

		ts_phase("round %d: a backlog of %zu bytes", round, len);
		/* Nothing read meanwhile: the ring grows to hold it all. */
		w = (struct one_write){c, r->seed, off, len};
		t = ts_spawn(write_once, &w);
		ts_join(t);
		if (r->splice) {
			size = ring_size(s);
			TS_ASSERT(size >= len, "round %d: a ring of %llu bytes holds %zu unread",
				  round, size, len);
		}
		ts_recv_stream(s, r->seed, off, len, 100000, &g);
		ts_note("round %d: %zu bytes of backlog read", round, len);
		if (round == 0) {
			/* Idle: the empty ring shrinks. */
			ts_phase("round %d: waiting for the empty ring to shrink", round);
			for (int i = 0; r->splice && i < 50; i++) {
				size = ring_size(s);
				if (size == 4096)
					break;
				ts_sleep_ms(100);
			}
		} else {
			/* A trickle, each write read at once: it shrinks too. */
			ts_phase("round %d: a trickle of 100-byte writes", round);
			for (int i = 0; i < 50; i++) {
				off += i ? 100 : len;
				ts_send_stream(c, r->seed, off, 100, 100, &g);
				ts_recv_stream(s, r->seed, off, 100, 100, &g);
				if (r->splice && size != 4096)
					size = ring_size(s);
				ts_sleep_ms(100);
			}
			ts_note("round %d: 5000 bytes trickled", round);
		}
		if (r->splice)
			TS_ASSERT(size == 4096,
				  "round %d: the ring is still %llu bytes 5 s after it was emptied",
				  round, size);
	}
	/* A stream after the shrinks: the ring grows again as needed. */
	ts_transfer(c, s, r->seed, 2 * (uint64_t)len + 5000, 4 * (uint64_t)len);
	ts_note("then %zu bytes streamed", 4 * len);
	ts_counters_read(&after);
	if (r->splice) {
		long long n = ts_counter(&after, "ring_shrinks", NULL) -
			      ts_counter(&before, "ring_shrinks", NULL);

		TS_ASSERT(n >= 2, "ring_shrinks +%lld, want at least +2", n);
	}
	close(c);
	close(s);
}

static void t_ring_shrinks(void)
{
	if (ts_ring_max() < 16384)
		ts_skip("ring_max_kb below 16: rings never grow");
	ts_differential(&(struct ts_diff){.fn = scen_shrink});
}

/* ---- a writer held back by a ring limit goes on once the limit is lifted ---- */

#define LIFT_LEN    (1024 * 1024)
#define LIFT_WAIT_S 30

static char lift_max[32], lift_cap[32];

static void lift_restore(void)
{
	if (lift_max[0])
		ts_param_set("ring_max_kb", lift_max);
	if (lift_cap[0])
		ts_param_set("ring_mem_max_kb", lift_cap);
}

struct lift_writer {
	int fd;
	bool epoll; /* non-blocking, waiting for EPOLLOUT; else one blocking send */
	uint64_t seed;
};

static void *lift_write(void *arg)
{
	struct lift_writer *w = arg;
	char *buf = malloc(LIFT_LEN);
	size_t off = 0;
	int ep;

	if (!buf)
		ts_fail("malloc: %m");
	ts_fill(w->seed, 1, buf, LIFT_LEN);
	if (!w->epoll) {
		ssize_t n = send(w->fd, buf, LIFT_LEN, MSG_NOSIGNAL);

		if (n != LIFT_LEN)
			ts_fail("blocking send(%d) returned %zd: %m", LIFT_LEN, n);
		free(buf);
		return NULL;
	}
	ep = TS_SYS(epoll_create1(EPOLL_CLOEXEC));
	TS_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, w->fd,
			 &(struct epoll_event){.events = EPOLLOUT, .data.fd = w->fd}));
	while (off < LIFT_LEN) {
		struct epoll_event ev;
		size_t k = LIFT_LEN - off < 1000 ? LIFT_LEN - off : 1000;
		ssize_t n;
		int rc = epoll_wait(ep, &ev, 1, 1000);

		if (rc < 0 && errno != EINTR)
			ts_fail("epoll_wait: %m");
		if (rc <= 0)
			continue;
		/*
		 * One send of 1000 bytes per readiness, as an event loop does:
		 * poll calls a ring writable while a quarter is free, so on a
		 * 4 KiB ring this writer stops short of full.
		 */
		n = send(w->fd, buf + off, k, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			off += n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			ts_fail("non-blocking send after %zu bytes: %m", off);
	}
	close(ep);
	free(buf);
	return NULL;
}

/*
 * Each end writes 1 MiB, one writer blocking and one on epoll, while only
 * the first 101 bytes are read: TCP's buffers take it all.  On the spliced
 * run a limit keeps the rings small at first ("max": ring_max_kb 4, "cap":
 * ring_mem_max_kb just above the rings already there, so growing fails), so
 * both writers must block; once the limit is lifted they must finish with
 * no further read, as over TCP, and every byte must then arrive in order.
 */
static void scen_limit_lifted(struct ts_run *r)
{
	const char *kind = r->arg;
	bool cap = !strcmp(kind, "cap"), mod = lift_max[0] != 0;
	struct ts_counters before, after;
	struct lift_writer w[2];
	unsigned long t[2];
	int fd[2][2];
	char v[32];

	ts_counters_read(&before);
	if (mod && !cap)
		ts_param_set("ring_max_kb", "4");
	for (int i = 0; i < 2; i++) {
		ts_pair(&fd[i][0], &fd[i][1]);
		/* A first ring of 4 KiB: the byte's own size, rounded up. */
		if (ts_write_all(fd[i][0], "x", 1) != 1)
			ts_fail("first byte: %m");
	}
	ts_sleep_ms(50);
	if (mod && cap) {
		ts_counters_read(&after);
		snprintf(v, sizeof(v), "%lld",
			 ts_counter(&after, "global_ring_bytes", NULL) / 1024 + 8);
		ts_param_set("ring_mem_max_kb", v);
	}
	for (int i = 0; i < 2; i++) {
		w[i] = (struct lift_writer){fd[i][0], i == 1, r->seed + i};
		if (w[i].epoll)
			ts_set_nonblock(fd[i][0], true);
		t[i] = ts_spawn(lift_write, &w[i]);
	}
	ts_phase("writers against the %s limit", kind);
	ts_sleep_ms(500);
	if (r->splice)
		for (int i = 0; i < 2; i++)
			TS_ASSERT(pthread_tryjoin_np((pthread_t)t[i], NULL) != 0,
				  "the %s writer finished with the %s limit on: not limited",
				  w[i].epoll ? "epoll" : "blocking", kind);
	/*
	 * A little is read while the limit holds: the rings are no longer
	 * full, yet far from a quarter free, which is what poll calls
	 * writable; the reader then stops for good.
	 */
	for (int i = 0; i < 2; i++) {
		struct ts_rng g;
		char c;

		ts_rng_init(&g, r->seed);
		ts_read_full(fd[i][1], &c, 1);
		TS_ASSERT(c == 'x', "first byte %#x, want 'x'", c);
		ts_recv_stream(fd[i][1], r->seed + i, 1, 100, 100, &g);
	}
	if (mod)
		lift_restore();
	ts_phase("limit lifted, waiting for the writers without reading");
	for (int i = 0; i < 2; i++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += LIFT_WAIT_S;
		TS_ASSERT(pthread_timedjoin_np((pthread_t)t[i], NULL, &ts) == 0,
			  "the %s writer still blocked %d s after the %s limit was lifted "
			  "(its reader stopped): hang",
			  w[i].epoll ? "epoll" : "blocking", LIFT_WAIT_S, kind);
	}
	ts_note("both writers done with 101 bytes read");
	for (int i = 0; i < 2; i++) {
		struct ts_rng g;

		ts_rng_init(&g, r->seed);
		ts_recv_stream(fd[i][1], r->seed + i, 101, LIFT_LEN - 100, 100000, &g);
		close(fd[i][0]);
		close(fd[i][1]);
	}
	ts_note("%d bytes each, in order", LIFT_LEN + 1);
	ts_counters_read(&after);
	if (r->splice && mod) {
		long long wakes = ts_counter(&after, "ring_persist_wakes", NULL) -
				  ts_counter(&before, "ring_persist_wakes", NULL);

		ts_log("%s limit: %lld persist wake-ups", kind, wakes);
		TS_ASSERT(wakes >= 1, "no ring_persist_wakes after the %s limit was lifted", kind);
	}
}

static void t_limit_lifted(void)
{
	if (param_get("ring_max_kb", lift_max, sizeof(lift_max)) &&
	    param_get("ring_mem_max_kb", lift_cap, sizeof(lift_cap)))
		ts_cleanup(lift_restore);
	else
		lift_max[0] = lift_cap[0] = 0;
	ts_differential(&(struct ts_diff){.fn = scen_limit_lifted, .arg = "max"});
	ts_differential(&(struct ts_diff){.fn = scen_limit_lifted, .arg = "cap"});
}

static const struct ts_test tests[] = {
	{"bulk-v4", t_bulk_v4, 0},
	{"bulk-v6", t_bulk_v6, 0},
	{"capacity-sizes", t_capacity_sizes, 0},
	{"tiny-writes", t_tiny_writes, 0},
	{"startup-first", t_startup_first, 0},
	{"startup-backlog", t_startup_backlog, 0},
	{"cork-across-handoff", t_cork_across_handoff, 0},
	{"echo-stream", t_echo_stream, 0},
	{"both-full", t_both_full, 0},
	{"full-blocks-sender", t_full_blocks_sender, 0},
	{"early-wake", t_early_wake, 0},
	{"limit-lifted", t_limit_lifted, 150},
	{"ring-shrinks", t_ring_shrinks, 0},
};

int main(int argc, char **argv)
{
	return ts_main(argc, argv, 0, tests, sizeof(tests) / sizeof(tests[0]));
}
