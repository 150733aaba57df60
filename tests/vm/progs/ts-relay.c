// SPDX-License-Identifier: GPL-2.0
/*
 * ts-relay: relay splicing (issue 8: OpenBSD's SO_SPLICE semantics) through
 * the raw ioctls of /dev/tcp-splice, after the categories of OpenBSD's
 * socket-splicing regression tests: argument errors, TCP streams, data queued
 * before the splice, both directions, max, idle timeout, EOF, resets, drain
 * errors, back-pressure, non-blocking sockets, explicit unsplice, blocked
 * readers and pollers, close, UDP datagrams, IPv4/IPv6 mixes and many relays
 * at once.  Every data test checks each byte in order and proves with the
 * module's relay_* counters (exact deltas) that the relay moved it.
 *
 * Topology of a relay: c -- a (source) ==splice==> b (drain) -- s.  The test
 * writes on c and reads on s; it reads a spliced source only to check that
 * the read fails with EAGAIN or waits, and a only once its splice ended.
 *
 * Ports: 30000 + the usual per-test slot (31600 and up), outside the ring
 * policy's 10000-19999 and the plain 20000-29999, so that the ring path never
 * takes a relay's connections.  UDP sockets bind ephemeral loopback ports.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../../src/module/uapi/tcp_splice_relay.h"
#include "tsutil.h"

#define RELAY_PORT_BASE 30000
#define ULL(x)		((unsigned long long)(x))

static const char *res(ssize_t n, int e)
{
	static __thread char buf[64];

	if (n >= 0)
		snprintf(buf, sizeof(buf), "n=%zd", n);
	else
		snprintf(buf, sizeof(buf), "-1 %s", strerrorname_np(e) ? strerrorname_np(e) : "E?");
	return buf;
}

static const char *ename(int e)
{
	const char *n = e ? strerrorname_np(e) : "0 (no error)";

	return n ? n : "E?";
}

/* ---- the device and its ioctls ---- */

static int relay_dev_fd = -1;

static int relay_dev(void)
{
	if (relay_dev_fd >= 0)
		return relay_dev_fd;
	relay_dev_fd = open(TCP_SPLICE_DEVICE, O_RDWR | O_CLOEXEC);
	if (relay_dev_fd < 0) {
		if (ts_expect_plain())
			ts_skip("TS_EXPECT_PLAIN=1: no module, no relay splicing");
		ts_fail("open %s: %m (module not loaded, or without relay splicing?)",
			TCP_SPLICE_DEVICE);
	}
	return relay_dev_fd;
}

/* TCP_SPLICE_IOC_SPLICE as it is: 0, or the errno of its -1. */
static int relay_ioc(int source, int drain, uint64_t max, uint64_t idle_us, uint32_t flags,
		     uint32_t reserved)
{
	struct tcp_splice_relay r = {
		.source = source,
		.drain = drain,
		.max = max,
		.idle_us = idle_us,
		.flags = flags,
		.reserved = reserved,
	};
	int rc = ioctl(relay_dev(), TCP_SPLICE_IOC_SPLICE, &r);

	if (rc > 0)
		ts_fail("TCP_SPLICE_IOC_SPLICE returned %d, want 0 or -1", rc);
	return rc < 0 ? errno : 0;
}

static void do_splice(int source, int drain, uint64_t max, uint64_t idle_us)
{
	int e = relay_ioc(source, drain, max, idle_us, 0, 0);

	if (e)
		ts_fail("splice %d -> %d (max %llu, idle %llu us): %s", source, drain, ULL(max),
			ULL(idle_us), ename(e));
}

static void do_unsplice(int source)
{
	int e = relay_ioc(source, -1, 0, 0, 0, 0);

	if (e)
		ts_fail("unsplice of %d: %s", source, ename(e));
}

static struct tcp_splice_relay_info relay_info(int source)
{
	struct tcp_splice_relay_info i = {.source = source};

	if (ioctl(relay_dev(), TCP_SPLICE_IOC_INFO, &i) < 0)
		ts_fail("TCP_SPLICE_IOC_INFO of %d: %m", source);
	return i;
}

static bool is_active(int source)
{
	return relay_info(source).flags & TCP_SPLICE_INFO_ACTIVE;
}

static uint64_t moved(int source)
{
	return relay_info(source).moved;
}

/* INFO after the splice of `source` ended: not active, exactly `want` bytes moved. */
static void expect_info_ended(int source, uint64_t want, const char *what)
{
	struct tcp_splice_relay_info i = relay_info(source);

	TS_ASSERT(!(i.flags & TCP_SPLICE_INFO_ACTIVE), "%s: INFO still active (flags %#x)", what,
		  i.flags);
	TS_ASSERT(i.moved == want, "%s: INFO.moved %llu, want %llu", what, ULL(i.moved), ULL(want));
}

/* Waits until the splice of `source` is no longer active. */
static void wait_ended(int source, int ms, const char *why)
{
	int64_t end = ts_now_us() + (int64_t)ms * 1000;

	while (is_active(source)) {
		if (ts_now_us() > end)
			ts_fail("the splice is still active %d ms after %s", ms, why);
		ts_sleep_ms(5);
	}
}

/* Waits until INFO.moved of `source` is exactly `want` (a later value is a failure). */
static void wait_moved(int source, uint64_t want, const char *what)
{
	int64_t end = ts_now_us() + 10000000;
	uint64_t m;

	while ((m = moved(source)) != want) {
		if (m > want)
			ts_fail("%s: INFO.moved %llu, more than the %llu bytes it can have moved",
				what, ULL(m), ULL(want));
		if (ts_now_us() > end)
			ts_fail("%s: INFO.moved %llu 10 s later, want %llu", what, ULL(m),
				ULL(want));
		ts_sleep_ms(5);
	}
}

/* Waits until INFO.moved stops changing for 300 ms (the relay is stuck); returns it. */
static uint64_t wait_moved_stable(int source)
{
	int64_t end = ts_now_us() + 20000000, since = ts_now_us();
	uint64_t last = moved(source);

	for (;;) {
		uint64_t m;

		ts_sleep_ms(50);
		m = moved(source);
		if (m != last) {
			last = m;
			since = ts_now_us();
		} else if (ts_now_us() - since >= 300000) {
			return m;
		}
		if (ts_now_us() > end)
			ts_fail("INFO.moved still growing (%llu) after 20 s with the drain's peer "
				"not reading: no back-pressure?",
				ULL(m));
	}
}

static int so_error(int fd)
{
	socklen_t l = sizeof(int);
	int e = 0;

	TS_SYS(getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l));
	return e;
}

/* Waits until poll reports POLLERR on fd (the error may be set just after the end). */
static void wait_pollerr(int fd, int ms, const char *why)
{
	int64_t end = ts_now_us() + (int64_t)ms * 1000;
	short rev;

	while (!((rev = ts_poll1(fd, 0, 0)) & POLLERR)) {
		if (ts_now_us() > end)
			ts_fail("%s: no POLLERR on the source %d ms after the splice ended "
				"(revents %#x)",
				why, ms, rev);
		ts_sleep_ms(5);
	}
}

/*
 * The splice of `source` ended with error `want`.  A poll blocked on the
 * source is woken (events 0: only POLLERR or POLLHUP end it; a reset brings
 * POLLHUP too).  SO_ERROR is read only once the splice is over (INFO not
 * active) and poll reports POLLERR: read earlier, the application could take
 * the error from under the relay.  It holds the error once.
 */
static void expect_error_end(int source, int want, const char *why)
{
	short rev = ts_poll1(source, 0, 10000);
	int e;

	TS_ASSERT(rev & (POLLERR | POLLHUP),
		  "%s: a poll on the source not woken within 10 s (revents %#x)", why, rev);
	wait_ended(source, 5000, why);
	wait_pollerr(source, 5000, why);
	e = so_error(source);
	TS_ASSERT(e == want, "%s: SO_ERROR of the source %s, want %s", why, ename(e), ename(want));
	e = so_error(source);
	TS_ASSERT(e == 0, "%s: SO_ERROR of the source %s when read a second time, want 0", why,
		  ename(e));
}

/* ---- counters ---- */

struct want {
	long long total, bytes, dgrams;
	long long unsplice, close, eof, error, drain, max, idle;
};

/* Checks every relay counter's delta (waiting up to 10 s for late ones), and that it stays. */
static void counters_expect(const struct ts_counters *before, const struct want *w)
{
	int64_t end = ts_now_us() + 10000000;
	struct ts_counters after;
	const char *bad;
	char spec[512];

	snprintf(spec, sizeof(spec),
		 "relay_total=%lld relay_bytes=%lld relay_datagrams=%lld relay_end_unsplice=%lld "
		 "relay_end_close=%lld relay_end_eof=%lld relay_end_error=%lld "
		 "relay_end_drain=%lld relay_end_max=%lld relay_end_idle=%lld",
		 w->total, w->bytes, w->dgrams, w->unsplice, w->close, w->eof, w->error, w->drain,
		 w->max, w->idle);
	for (;;) {
		ts_counters_read(&after);
		bad = ts_counters_check(before, &after, spec);
		if (!bad)
			break;
		if (ts_now_us() > end)
			ts_fail("relay counters: %s", bad);
		ts_sleep_ms(20);
	}
	/* Once more a little later: no late end or byte on top. */
	ts_sleep_ms(50);
	ts_counters_read(&after);
	bad = ts_counters_check(before, &after, spec);
	if (bad)
		ts_fail("relay counters changed after reaching their values: %s", bad);
}

static long long gauge_delta(const struct ts_counters *before, const char *name)
{
	struct ts_counters now;
	bool f1, f2;
	long long d;

	ts_counters_read(&now);
	d = ts_counter(&now, name, &f2) - ts_counter(before, name, &f1);
	if (!f1 || !f2)
		ts_fail("counter %s missing", name);
	return d;
}

/* Every splice of the test is over: the gauges are back, and the counters moved exactly so. */
static void finish(const struct ts_counters *before, const struct want *w)
{
	static const char *const gauges[] = {"relay_active", "global_relay_live"};

	for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
		bool found;
		long long b = ts_counter(before, gauges[i], &found), v;

		if (!found)
			ts_fail("counter %s missing", gauges[i]);
		v = ts_counter_wait(gauges[i], b, 10000);
		if (v != b)
			ts_fail("%s is %lld 10 s after every splice of the test ended, was %lld "
				"before",
				gauges[i], v, b);
	}
	counters_expect(before, w);
}

/* The module's relay_zerocopy parameter (TCP chunks passed as page references). */
static void relay_zerocopy_set(bool on)
{
	ts_param_set("relay_zerocopy", on ? "Y" : "N");
}

/*
 * Start of every test: the device is there (else skip in plain mode), the
 * module's default zero-copy (whatever an earlier test left), counters read.
 */
static void begin(struct ts_counters *before)
{
	bool found;

	relay_dev();
	relay_zerocopy_set(true);
	if (!ts_counters_read(before))
		ts_fail("no /proc/net/tcp_splice (module not loaded?)");
	ts_counter(before, "relay_total", &found);
	if (!found)
		ts_fail("no relay_total in /proc/net/tcp_splice: module without relay counters");
}

/* ---- sockets ---- */

/* 30000 + the test's usual slot: outside the ring policy and the plain range. */
static int relay_port(int k)
{
	return RELAY_PORT_BASE + ts_test_port(false, k) - TS_PORT_PLAIN;
}

static int listeners[2] = {-1, -1};

static int tcp_listener(int family)
{
	int i = family == AF_INET6;

	if (listeners[i] < 0)
		listeners[i] = ts_listen_at(ts_loopback(family), relay_port(i), 512, 0);
	return listeners[i];
}

/* A TCP connection on the loopback: *cl connected, *sv accepted. */
static void tcp_pair(int family, int *cl, int *sv)
{
	int l = tcp_listener(family);

	*cl = ts_connect(family, relay_port(family == AF_INET6));
	*sv = ts_accept(l, 5000);
}

static void big_bufs(int fd)
{
	int v = 4 << 20;

	/* Root in the VM: past rmem_max, so that no datagram is dropped at a full buffer. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		ts_set_int(fd, SOL_SOCKET, SO_RCVBUF, v);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		ts_set_int(fd, SOL_SOCKET, SO_SNDBUF, v);
}

static int udp_bound(int family, struct sockaddr_storage *ss, socklen_t *len)
{
	int fd = TS_SYS(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*s4);
	}
	if (bind(fd, (struct sockaddr *)ss, *len) < 0)
		ts_fail("bind UDP %s: %m", ts_loopback(family));
	TS_SYS(getsockname(fd, (struct sockaddr *)ss, len));
	big_bufs(fd);
	return fd;
}

/* Two UDP sockets on the loopback, each connect()ed to the other. */
static void udp_pair(int family, int *x, int *y)
{
	struct sockaddr_storage sx, sy;
	socklen_t lx, ly;

	*x = udp_bound(family, &sx, &lx);
	*y = udp_bound(family, &sy, &ly);
	TS_SYS(connect(*x, (struct sockaddr *)&sy, ly));
	TS_SYS(connect(*y, (struct sockaddr *)&sx, lx));
}

struct relay {
	int c, a, b, s; /* c -- a (source) ==> b (drain) -- s */
	bool udp;
};

/* The four sockets of a relay; a is of family fa, b of fb.  Nothing spliced yet. */
static void relay_open(struct relay *r, int fa, int fb, bool udp)
{
	r->udp = udp;
	if (udp) {
		udp_pair(fa, &r->c, &r->a);
		udp_pair(fb, &r->b, &r->s);
	} else {
		tcp_pair(fa, &r->c, &r->a);
		tcp_pair(fb, &r->b, &r->s);
	}
	/* The test's own reads fail with a message rather than wait for the alarm. */
	ts_set_timeo(r->c, SO_RCVTIMEO, 30000);
	ts_set_timeo(r->s, SO_RCVTIMEO, 30000);
}

static void relay_close(struct relay *r)
{
	int *fds[] = {&r->c, &r->a, &r->b, &r->s};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* Buffers that autotuning cannot grow: the relay cannot run far ahead of the reader. */
static void small_bufs(struct relay *r)
{
	ts_set_int(r->c, SOL_SOCKET, SO_SNDBUF, 65536);
	ts_set_int(r->a, SOL_SOCKET, SO_RCVBUF, 65536);
	ts_set_int(r->b, SOL_SOCKET, SO_SNDBUF, 65536);
	ts_set_int(r->s, SOL_SOCKET, SO_RCVBUF, 65536);
}

static void linger0(int fd)
{
	struct linger l = {1, 0};

	TS_SYS(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)));
}

static void need_v6(void)
{
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		ts_skip("no IPv6 sockets: %m");
	if (bind(fd, (struct sockaddr *)&s6, sizeof(s6)) < 0) {
		close(fd);
		ts_skip("IPv6 loopback ::1 unusable: %m");
	}
	close(fd);
}

/* ---- streams ---- */

static void send_at(int fd, uint64_t seed, uint64_t off, size_t len)
{
	char *buf = malloc(len ? len : 1);

	if (!buf)
		ts_fail("malloc");
	ts_fill(seed, off, buf, len);
	ts_write_all(fd, buf, len);
	free(buf);
}

/* Reads exactly len bytes of stream seed from off, random read sizes, checked. */
static void recv_at(int fd, uint64_t seed, uint64_t off, uint64_t len)
{
	struct ts_rng g;

	ts_rng_init(&g, seed ^ off ^ 0x7265);
	ts_recv_stream(fd, seed, off, len, 65536, &g);
}

/* The same on the source itself, once it is not spliced: bounded by a receive timeout. */
static void direct_read(int fd, uint64_t seed, uint64_t off, uint64_t len)
{
	ts_set_timeo(fd, SO_RCVTIMEO, 10000);
	recv_at(fd, seed, off, len);
	ts_set_timeo(fd, SO_RCVTIMEO, 0);
}

/* The same on a non-blocking socket, with poll. */
static void read_nb(int fd, uint64_t seed, uint64_t off, uint64_t len)
{
	char *buf = malloc(65536);
	uint64_t end = off + len;

	if (!buf)
		ts_fail("malloc");
	while (off < end) {
		size_t want = end - off < 65536 ? end - off : 65536;
		ssize_t n;

		if (!(ts_poll1(fd, POLLIN, 10000) & (POLLIN | POLLERR | POLLHUP)))
			ts_fail("non-blocking source: no byte within 10 s at stream offset %llu "
				"(%llu to go)",
				ULL(off), ULL(end - off));
		n = recv(fd, buf, want, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			ts_fail("recv at stream offset %llu: %s", ULL(off), res(n, errno));
		if (ts_check(seed, off, buf, n) >= 0)
			ts_fail("stream corrupt at byte %llu",
				ULL(off + ts_check(seed, off, buf, n)));
		off += n;
	}
	free(buf);
}

static void expect_eof(int fd, const char *who)
{
	ssize_t n;
	char b;

	do
		n = recv(fd, &b, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n != 0)
		ts_fail("%s: %s, want EOF", who, res(n, errno));
}

/* The peer of a socket that was released sees its connection end: EOF or a reset. */
static void expect_conn_end(int fd, const char *who)
{
	ssize_t n;
	char b;

	if (!(ts_poll1(fd, POLLIN, 10000) & (POLLIN | POLLHUP | POLLERR)))
		ts_fail("%s: the connection did not end within 10 s of the close", who);
	n = recv(fd, &b, 1, MSG_DONTWAIT);
	if (!(n == 0 || (n < 0 && errno == ECONNRESET)))
		ts_fail("%s: %s after the close, want EOF or ECONNRESET", who, res(n, errno));
}

/* A read on the spliced source: EAGAIN, no data (flags: 0 on O_NONBLOCK, or MSG_DONTWAIT). */
static void expect_eagain(int fd, int flags, const char *when)
{
	char b[16];
	ssize_t n = recv(fd, b, sizeof(b), flags);

	if (!(n < 0 && errno == EAGAIN))
		ts_fail("%s: non-blocking read of the spliced source: %s, want EAGAIN", when,
			res(n, errno));
}

/* Waits until the receive queue of fd holds exactly n bytes. */
static void wait_inq(int fd, int n)
{
	int64_t end = ts_now_us() + 5000000;

	while (ts_inq(fd) != n) {
		if (ts_now_us() > end)
			ts_fail("%d bytes queued after 5 s, want %d", ts_inq(fd), n);
		ts_sleep_ms(5);
	}
}

/*
 * After s read every byte moved: nothing is on its way from b any more
 * (SIOCOUTQ 0: all acknowledged by s) and nothing more is queued at s.
 */
static void expect_drained(int b, int s)
{
	int64_t end = ts_now_us() + 10000000;
	int outq = -1;

	for (;;) {
		TS_SYS(ioctl(b, SIOCOUTQ, &outq));
		if (outq == 0)
			break;
		if (ts_now_us() > end)
			ts_fail("the drain still has %d bytes unacknowledged after 10 s", outq);
		ts_sleep_ms(5);
	}
	TS_ASSERT(ts_inq(s) == 0, "%d bytes more than INFO.moved reached the drain's peer",
		  ts_inq(s));
}

/* ---- threads ---- */

struct sender {
	int fd;
	uint64_t seed, off, len;
	bool shut; /* shutdown(SHUT_WR) after the last byte */
};

static void *sender_main(void *arg)
{
	struct sender *w = arg;
	struct ts_rng g;

	ts_rng_init(&g, w->seed ^ w->off ^ 0x5e4d);
	ts_send_stream(w->fd, w->seed, w->off, w->len, 65536, &g);
	if (w->shut)
		TS_SYS(shutdown(w->fd, SHUT_WR));
	return NULL;
}

struct eof_reader {
	int fd;
	uint64_t seed, got;
};

static void *eof_reader_main(void *arg)
{
	struct eof_reader *r = arg;

	r->got = ts_read_stream_to_eof(r->fd, r->seed, 65536);
	return NULL;
}

/* A thread blocked in recv or poll on a spliced source. */
struct waiter {
	int fd;
	bool poll; /* poll(POLLIN) instead of recv */
	atomic_int tid;
	atomic_bool done;
	ssize_t n; /* recv's result, or poll's revents (0: poll timed out) */
	int err;
	char buf[65536];
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	atomic_store(&w->tid, (int)gettid());
	if (w->poll) {
		struct pollfd p = {.fd = w->fd, .events = POLLIN};
		int rc = poll(&p, 1, 30000);

		w->err = errno;
		w->n = rc > 0 ? p.revents : rc;
	} else {
		w->n = recv(w->fd, w->buf, sizeof(w->buf), 0);
		w->err = errno;
	}
	atomic_store(&w->done, true);
	return NULL;
}

/* Scheduler state of a thread of this process: 'S' while it sleeps in a system call. */
static char task_state(int tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] ? p[2] : '?';
}

static const char *waiter_what(const struct waiter *w)
{
	return w->poll ? "poll" : "read";
}

/*
 * The waiter has not returned, and sleeps: each byte that reaches the source
 * wakes it to look again (it runs for a moment), so it must be seen asleep
 * at least once within 2 s rather than at one instant.
 */
static void expect_still_blocked(struct waiter *w, const char *when)
{
	int64_t end = ts_now_us() + 2000000;
	char st;

	while ((st = task_state(atomic_load(&w->tid))) != 'S' && ts_now_us() < end)
		ts_sleep_ms(1);
	if (atomic_load(&w->done))
		ts_fail("the blocked %s of the spliced source returned %s: %s", waiter_what(w),
			when, w->poll ? "revents" : res(w->n, w->err));
	TS_ASSERT(st == 'S',
		  "the blocked %s of the spliced source never asleep in 2 s %s (state %c)",
		  waiter_what(w), when, st);
}

/* Starts a waiter on fd and waits until it sleeps in its recv or poll. */
static unsigned long start_waiter(struct waiter *w, int fd, bool poll)
{
	int64_t end = ts_now_us() + 5000000;
	unsigned long t;

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->poll = poll;
	t = ts_spawn(waiter_main, w);
	for (;;) {
		int tid = atomic_load(&w->tid);

		if (atomic_load(&w->done))
			ts_fail("a blocking %s of the spliced source returned at once: %s",
				waiter_what(w), poll ? "revents" : res(w->n, w->err));
		if (tid && task_state(tid) == 'S')
			break;
		if (ts_now_us() > end)
			ts_fail("the %s of the spliced source is not sleeping after 5 s (state %c)",
				waiter_what(w), tid ? task_state(tid) : '?');
		ts_sleep_ms(5);
	}
	expect_still_blocked(w, "at once");
	return t;
}

static void wait_waiter(struct waiter *w, unsigned long t, int ms, const char *when)
{
	int64_t end = ts_now_us() + (int64_t)ms * 1000;

	while (!atomic_load(&w->done)) {
		if (ts_now_us() > end)
			ts_fail("the blocked %s of the source still waits %d ms %s", waiter_what(w),
				ms, when);
		ts_sleep_ms(5);
	}
	ts_join(t);
}

/* ---- datagrams ---- */

static void send_dgram(int fd, uint64_t seed, size_t len)
{
	char *buf = malloc(len ? len : 1);
	ssize_t n;

	if (!buf)
		ts_fail("malloc");
	ts_fill(seed, 0, buf, len);
	n = send(fd, buf, len, 0);
	if (n != (ssize_t)len)
		ts_fail("send of a %zu-byte datagram: %s", len, res(n, errno));
	free(buf);
}

/* The next datagram on fd is datagram `seed` of len bytes. */
static void recv_dgram(int fd, uint64_t seed, size_t len, const char *what)
{
	static __thread char buf[65536];
	ssize_t n;

	if (!(ts_poll1(fd, POLLIN, 10000) & POLLIN))
		ts_fail("%s: the %zu-byte datagram not received within 10 s", what, len);
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
	if (n != (ssize_t)len)
		ts_fail("%s: %s, want a datagram of %zu bytes", what, res(n, errno), len);
	if (ts_check(seed, 0, buf, len) >= 0)
		ts_fail("%s: the %zu-byte datagram differs from the one expected (another one, "
			"or corrupt)",
			what, len);
}

/* One small exchange c -> s through the relay (TCP bytes or one UDP datagram), checked. */
static void ping(struct relay *r, uint64_t seed, int i)
{
	if (r->udp) {
		send_dgram(r->c, seed + i, 100);
		recv_dgram(r->s, seed + i, 100, "ping");
	} else {
		send_at(r->c, seed, (uint64_t)i * 100, 100);
		recv_at(r->s, seed, (uint64_t)i * 100, 100);
	}
}

/* ==== API errors ==== */

static void expect_err(int want, int source, int drain, uint32_t flags, uint32_t reserved,
		       const char *what)
{
	int e = relay_ioc(source, drain, 0, 0, flags, reserved);

	if (e != want)
		ts_fail("%s: splice gave %s, want %s", what, ename(e), ename(want));
}

static void expect_never_spliced(int fd, const char *what)
{
	struct tcp_splice_relay_info i = relay_info(fd);

	TS_ASSERT(i.moved == 0 && !(i.flags & TCP_SPLICE_INFO_ACTIVE),
		  "INFO of %s: flags %#x moved %llu, want not active, 0", what, i.flags,
		  ULL(i.moved));
}

/* A socket spliced by the ring path (a policy port) is held by another kernel user. */
static void check_ring_busy(int src, int drain)
{
	int port = ts_test_port(true, 0), l, x, y;
	int64_t end = ts_now_us() + 3000000;
	struct ts_conn cn;
	bool paired;

	l = ts_listen(AF_INET, port);
	x = ts_connect(AF_INET, port);
	y = ts_accept(l, 5000);
	close(l);
	while (!(paired = ts_conn_of_fd(x, &cn) > 0 && !strcmp(cn.state, "paired")) &&
	       ts_now_us() < end)
		ts_sleep_ms(10);
	if (!paired) {
		ts_log("port %d not spliced by the ring path (no policy attached?): EBUSY of "
		       "ring-held sockets not checked",
		       port);
	} else {
		expect_err(EBUSY, x, drain, 0, 0, "source spliced by the ring path");
		expect_err(EBUSY, src, x, 0, 0, "drain spliced by the ring path");
	}
	close(x);
	close(y);
}

static void t_api_errors(void)
{
	char tmpl[] = "/tmp/ts-relay.XXXXXX";
	int closed, pfd[2], file, un[2], ux, uy, tfree, ufree, lst, rx, ry, dupa, d1, d2, e;
	struct ts_counters before;
	struct relay r, r2;
	uint64_t seed = ts_seed();

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	expect_never_spliced(r.a, "a socket never spliced");

	ts_phase("EBADF");
	closed = TS_SYS(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	close(closed);
	expect_err(EBADF, closed, r.b, 0, 0, "closed source");
	expect_err(EBADF, r.a, closed, 0, 0, "closed drain");
	expect_err(EBADF, -5, r.b, 0, 0, "source -5");

	ts_phase("ENOTSOCK");
	TS_SYS(pipe2(pfd, O_CLOEXEC));
	file = TS_SYS(mkstemp(tmpl));
	unlink(tmpl);
	expect_err(ENOTSOCK, pfd[0], r.b, 0, 0, "pipe as source");
	expect_err(ENOTSOCK, r.a, pfd[1], 0, 0, "pipe as drain");
	expect_err(ENOTSOCK, file, r.b, 0, 0, "regular file as source");
	expect_err(ENOTSOCK, r.a, file, 0, 0, "regular file as drain");

	ts_phase("EPROTONOSUPPORT");
	TS_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, un));
	udp_pair(AF_INET, &ux, &uy);
	expect_err(EPROTONOSUPPORT, un[0], r.b, 0, 0, "AF_UNIX source");
	expect_err(EPROTONOSUPPORT, r.a, un[0], 0, 0, "AF_UNIX drain");
	expect_err(EPROTONOSUPPORT, r.a, ux, 0, 0, "TCP source, UDP drain");
	expect_err(EPROTONOSUPPORT, ux, r.b, 0, 0, "UDP source, TCP drain");

	ts_phase("ENOTCONN");
	tfree = TS_SYS(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	ufree = TS_SYS(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
	lst = tcp_listener(AF_INET);
	expect_err(ENOTCONN, tfree, r.b, 0, 0, "unconnected TCP source");
	expect_err(ENOTCONN, r.a, tfree, 0, 0, "unconnected TCP drain");
	expect_err(ENOTCONN, lst, r.b, 0, 0, "listening source");
	expect_err(ENOTCONN, r.a, lst, 0, 0, "listening drain");
	expect_err(ENOTCONN, ufree, uy, 0, 0, "unconnected UDP source");
	expect_err(ENOTCONN, ux, ufree, 0, 0, "unconnected UDP drain");
	/* A connection reset by its peer (state CLOSE, error already read) is not connected. */
	tcp_pair(AF_INET, &rx, &ry);
	linger0(rx);
	close(rx);
	TS_ASSERT(ts_poll1(ry, 0, 5000) & POLLERR, "no POLLERR after the peer's reset");
	e = so_error(ry);
	TS_ASSERT(e == ECONNRESET, "SO_ERROR after the peer's reset: %s", ename(e));
	expect_err(ENOTCONN, ry, r.b, 0, 0, "source reset by its peer");

	ts_phase("EINVAL");
	dupa = TS_SYS(dup(r.a));
	expect_err(EINVAL, r.a, r.a, 0, 0, "source == drain");
	expect_err(EINVAL, r.a, dupa, 0, 0, "drain a dup() of the source (same socket)");
	expect_err(EINVAL, r.a, r.b, 1, 0, "flags 1");
	expect_err(EINVAL, r.a, r.b, 0x80000000u, 0, "flags 0x80000000");
	expect_err(EINVAL, r.a, r.b, 0, 1, "reserved 1");

	ts_phase("EPIPE");
	relay_open(&r2, AF_INET, AF_INET, false);
	TS_SYS(shutdown(r2.b, SHUT_WR));
	expect_err(EPIPE, r2.a, r2.b, 0, 0, "TCP drain shut down for writing");
	expect_never_spliced(r2.a, "the source of a refused splice");
	TS_SYS(shutdown(uy, SHUT_WR));
	expect_err(EPIPE, ux, uy, 0, 0, "UDP drain shut down for writing");

	ts_phase("EBUSY of ring-held sockets");
	check_ring_busy(r.a, r.b);

	/* None of the refused calls spliced anything. */
	expect_never_spliced(r.a, "the source after refused splices");
	expect_never_spliced(ux, "a UDP socket after refused splices");
	TS_ASSERT(gauge_delta(&before, "relay_active") == 0,
		  "relay_active %+lld after refused splices only",
		  gauge_delta(&before, "relay_active"));

	ts_phase("unsplice of a socket never spliced");
	e = relay_ioc(r.a, -1, 0, 0, 0, 0);
	TS_ASSERT(e == 0, "unsplice of a socket not spliced: %s, want 0", ename(e));

	ts_phase("EBUSY");
	tcp_pair(AF_INET, &d1, &d2);
	do_splice(r.a, r.b, 0, 0);
	TS_ASSERT(is_active(r.a), "INFO not active right after a splice");
	expect_err(EBUSY, r.a, r.b, 0, 0, "the same splice again");
	expect_err(EBUSY, r.a, d1, 0, 0, "source already spliced");
	expect_err(EBUSY, d2, r.b, 0, 0, "drain already the drain of another splice");
	expect_never_spliced(d2, "the source of a splice refused with EBUSY");
	/* The splice survived the refused calls and moves data. */
	send_at(r.c, seed, 0, 1000);
	recv_at(r.s, seed, 0, 1000);
	wait_moved(r.a, 1000, "1000 bytes through the splice");
	TS_ASSERT(is_active(r.a), "the splice ended by itself");
	do_unsplice(r.a);
	expect_info_ended(r.a, 1000, "after unsplice (moved kept after the end)");
	e = relay_ioc(r.a, -1, 0, 0, 0, 0);
	TS_ASSERT(e == 0, "second unsplice: %s, want 0", ename(e));
	e = so_error(r.a);
	TS_ASSERT(e == 0, "SO_ERROR after an explicit unsplice: %s, want 0", ename(e));

	relay_close(&r);
	relay_close(&r2);
	close(pfd[0]);
	close(pfd[1]);
	close(file);
	close(un[0]);
	close(un[1]);
	close(ux);
	close(uy);
	close(tfree);
	close(ufree);
	close(ry);
	close(dupa);
	close(d1);
	close(d2);
	finish(&before, &(struct want){.total = 1, .bytes = 1000, .unsplice = 1});
}

/* ==== TCP streams ==== */

/*
 * LEN bytes c -> s in random write and read sizes; then EOF ends the splice.
 * With ZEROCOPY, loopback TCP keeps its payload in page fragments and most
 * of it must go by reference (relay_zc_bytes); without, none of it.
 */
static void tcp_stream(uint64_t len, bool zerocopy)
{
	struct ts_counters before;
	uint64_t seed = ts_seed();
	struct relay r;
	long long zc;

	begin(&before);
	relay_zerocopy_set(zerocopy);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, 0, 0);
	TS_ASSERT(is_active(r.a), "INFO not active right after the splice");
	TS_ASSERT(gauge_delta(&before, "relay_active") == 1, "relay_active %+lld with one splice",
		  gauge_delta(&before, "relay_active"));
	ts_phase("%llu MiB through the relay, relay_zerocopy=%c", (unsigned long long)(len >> 20),
		 zerocopy ? 'Y' : 'N');
	ts_transfer(r.c, r.s, seed, 0, len);
	wait_moved(r.a, len, "after the drain's peer read the whole stream");
	TS_ASSERT(is_active(r.a), "the splice ended by itself before EOF");
	ts_phase("EOF");
	TS_SYS(shutdown(r.c, SHUT_WR));
	expect_eof(r.s, "the drain's peer after the stream");
	wait_ended(r.a, 10000, "EOF on the source");
	expect_info_ended(r.a, len, "after EOF");
	TS_ASSERT(so_error(r.a) == 0, "SO_ERROR of the source after EOF");
	zc = gauge_delta(&before, "relay_zc_bytes");
	if (zerocopy)
		TS_ASSERT(zc >= (long long)len / 2,
			  "relay_zc_bytes %+lld of %llu bytes: the zero-copy path was not taken",
			  zc, (unsigned long long)len);
	else
		TS_ASSERT(zc == 0, "relay_zc_bytes %+lld with relay_zerocopy=N", zc);
	relay_close(&r);
	relay_zerocopy_set(true);
	finish(&before, &(struct want){.total = 1, .bytes = len, .eof = 1});
}

static void t_tcp_stream(void)
{
	tcp_stream(32ULL << 20, true);
}

/* Every chunk copied, none by reference. */
static void t_tcp_stream_copy(void)
{
	tcp_stream(8ULL << 20, false);
}

/* Bytes queued in the source before the splice move first, in order. */
static void t_queued_first(void)
{
	const uint64_t q = 50000, more = 1 << 20, skip = 1000;
	struct ts_counters before;
	uint64_t seed = ts_seed();
	struct relay r;
	struct sender w;
	unsigned long t;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	send_at(r.c, seed, 0, q);
	wait_inq(r.a, q);
	/* The application read the start itself: the splice takes over from there. */
	recv_at(r.a, seed, 0, skip);
	do_splice(r.a, r.b, 0, 0);
	w = (struct sender){r.c, seed, q, more, true};
	t = ts_spawn(sender_main, &w);
	ts_phase("queued bytes, then more, at the drain's peer");
	recv_at(r.s, seed, skip, q + more - skip);
	ts_join(t);
	expect_eof(r.s, "the drain's peer after the stream");
	wait_ended(r.a, 10000, "EOF on the source");
	expect_info_ended(r.a, q + more - skip, "after EOF");
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = q + more - skip, .eof = 1});
}

struct echo {
	int fd;
	uint64_t seed, n, sum;
};

/* s: reads (checking the stream), writes every byte back, half-closes at EOF. */
static void *echo_main(void *arg)
{
	struct echo *e = arg;
	char *buf = malloc(65536);

	e->sum = TS_SUM_INIT;
	for (;;) {
		ssize_t n = recv(e->fd, buf, 65536, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ts_fail("echo: recv after %llu bytes: %m", ULL(e->n));
		if (n == 0)
			break;
		if (ts_check(e->seed, e->n, buf, n) >= 0)
			ts_fail("echo: a->b stream corrupt at byte %llu",
				ULL(e->n + ts_check(e->seed, e->n, buf, n)));
		e->sum = ts_sum64(e->sum, buf, n);
		ts_write_all(e->fd, buf, n);
		e->n += n;
	}
	TS_SYS(shutdown(e->fd, SHUT_WR));
	free(buf);
	return NULL;
}

/* a -> b and b -> a: an echo through both splices, checked and checksummed both ways. */
static void t_bidirectional(void)
{
	const uint64_t len = 4 << 20;
	uint64_t seed = ts_seed(), got = 0, sum = TS_SUM_INIT, want_sum = TS_SUM_INIT;
	struct ts_counters before;
	char *buf = malloc(65536);
	struct relay r;
	struct sender w;
	struct echo e;
	unsigned long te, tw;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, 0, 0);
	do_splice(r.b, r.a, 0, 0); /* b is a's drain and the source of the other way */
	TS_ASSERT(is_active(r.a) && is_active(r.b), "INFO not active on both sources");
	TS_ASSERT(gauge_delta(&before, "relay_active") == 2, "relay_active %+lld with 2 splices",
		  gauge_delta(&before, "relay_active"));
	e = (struct echo){.fd = r.s, .seed = seed};
	te = ts_spawn(echo_main, &e);
	w = (struct sender){r.c, seed, 0, len, true};
	tw = ts_spawn(sender_main, &w);
	ts_phase("echo c -> s -> c");
	for (;;) {
		ssize_t n = recv(r.c, buf, 65536, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ts_fail("c: recv of the echo after %llu bytes: %m", ULL(got));
		if (n == 0)
			break;
		if (ts_check(seed, got, buf, n) >= 0)
			ts_fail("b->a echo corrupt at byte %llu",
				ULL(got + ts_check(seed, got, buf, n)));
		sum = ts_sum64(sum, buf, n);
		got += n;
	}
	ts_join(tw);
	ts_join(te);
	for (uint64_t off = 0; off < len; off += 65536) {
		size_t n = len - off < 65536 ? len - off : 65536;

		ts_fill(seed, off, buf, n);
		want_sum = ts_sum64(want_sum, buf, n);
	}
	TS_ASSERT(e.n == len && got == len, "s read %llu, c read %llu of %llu bytes", ULL(e.n),
		  ULL(got), ULL(len));
	TS_ASSERT(e.sum == want_sum && sum == want_sum,
		  "checksums: sent %#llx, at s %#llx, back at c %#llx", ULL(want_sum), ULL(e.sum),
		  ULL(sum));
	wait_ended(r.a, 10000, "EOF on a");
	wait_ended(r.b, 10000, "EOF on b");
	expect_info_ended(r.a, len, "a -> b after EOF");
	expect_info_ended(r.b, len, "b -> a after EOF");
	TS_ASSERT(so_error(r.a) == 0 && so_error(r.b) == 0, "an error on a source after EOF");
	free(buf);
	relay_close(&r);
	finish(&before, &(struct want){.total = 2, .bytes = 2 * len, .eof = 2});
}

/* ==== max ==== */

/* max N, more sent: exactly N reach s, EFBIG, the rest is read from the source in order. */
static void t_max(void)
{
	const uint64_t max = 1000003, extra = 30000;
	struct ts_counters before;
	uint64_t seed = ts_seed();
	struct relay r;
	struct sender w;
	unsigned long t;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, max, 0);
	w = (struct sender){r.c, seed, 0, max + extra, false};
	t = ts_spawn(sender_main, &w);
	ts_phase("max bytes at the drain's peer");
	recv_at(r.s, seed, 0, max);
	ts_join(t);
	expect_error_end(r.a, EFBIG, "max reached");
	expect_info_ended(r.a, max, "after max");
	ts_phase("the rest from the source");
	direct_read(r.a, seed, max, extra);
	TS_ASSERT(ts_inq(r.a) == 0, "%d bytes more than sent in the source", ts_inq(r.a));
	/* Not one byte more went to s: after the application's shutdown of b, s reads EOF. */
	TS_SYS(shutdown(r.b, SHUT_WR));
	expect_eof(r.s, "the drain's peer after max bytes");
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = max, .max = 1});
}

/* max N and exactly N sent: the splice ends at N without waiting for more data. */
static void t_max_exact(void)
{
	const uint64_t max = 200000;
	struct ts_counters before;
	uint64_t seed = ts_seed();
	struct relay r;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, max, 0);
	ts_transfer(r.c, r.s, seed, 0, max);
	expect_error_end(r.a, EFBIG, "exactly max bytes moved");
	expect_info_ended(r.a, max, "after max");
	/* What comes next is the application's. */
	send_at(r.c, seed, max, 500);
	direct_read(r.a, seed, max, 500);
	TS_SYS(shutdown(r.b, SHUT_WR));
	expect_eof(r.s, "the drain's peer after max bytes");
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = max, .max = 1});
}

/* ==== idle timeout (TCP and UDP) ==== */

static void idle_test(bool udp)
{
	const int idle_ms = 200, period_ms = 50, pings = 20;
	struct ts_counters before;
	uint64_t seed = ts_seed();
	int64_t t0, last = 0, el;
	struct relay r, r2;
	short rev;

	begin(&before);
	ts_phase("traffic every %d ms for 1 s", period_ms);
	relay_open(&r, AF_INET, AF_INET, udp);
	do_splice(r.a, r.b, 0, (uint64_t)idle_ms * 1000);
	t0 = ts_now_us();
	for (int i = 0; i < pings; i++) {
		int64_t at = t0 + (int64_t)i * period_ms * 1000, now = ts_now_us();

		if (at > now)
			ts_sleep_ms((int)((at - now) / 1000));
		TS_ASSERT(is_active(r.a),
			  "a splice with idle %d ms ended %lld ms into traffic every %d ms",
			  idle_ms, (long long)(ts_now_us() - t0) / 1000, period_ms);
		last = ts_now_us();
		ping(&r, seed, i);
	}
	TS_ASSERT(is_active(r.a), "the splice ended during traffic");
	TS_ASSERT(so_error(r.a) == 0, "an error on the source during traffic");
	ts_phase("then nothing: the timeout");
	/* Blocked in poll when the timeout strikes: the end must wake it with POLLERR. */
	rev = ts_poll1(r.a, 0, 10000);
	el = ts_now_us() - last;
	TS_ASSERT(rev & POLLERR, "no POLLERR on the source 10 s after the last byte (revents %#x)",
		  rev);
	TS_ASSERT(el >= 180000 && el <= 3000000,
		  "timed out %lld ms after the last byte, idle is %d ms", (long long)el / 1000,
		  idle_ms);
	expect_error_end(r.a, ETIMEDOUT, "idle timeout after traffic");
	expect_info_ended(r.a, (uint64_t)pings * 100, "after the idle timeout");

	ts_phase("nothing at all: the timeout");
	relay_open(&r2, AF_INET, AF_INET, udp);
	t0 = ts_now_us();
	do_splice(r2.a, r2.b, 0, (uint64_t)idle_ms * 1000);
	rev = ts_poll1(r2.a, 0, 10000);
	el = ts_now_us() - t0;
	TS_ASSERT(rev & POLLERR, "no POLLERR on an idle source after 10 s (revents %#x)", rev);
	TS_ASSERT(el >= 180000 && el <= 3000000,
		  "timed out %lld ms after the splice, idle is %d ms", (long long)el / 1000,
		  idle_ms);
	expect_error_end(r2.a, ETIMEDOUT, "idle timeout");
	expect_info_ended(r2.a, 0, "after the idle timeout");
	/* The source is the application's again. */
	if (udp) {
		send_dgram(r2.c, seed ^ 7, 10);
		recv_dgram(r2.a, seed ^ 7, 10, "the source after the timeout");
	} else {
		send_at(r2.c, seed ^ 7, 0, 10);
		direct_read(r2.a, seed ^ 7, 0, 10);
	}
	relay_close(&r);
	relay_close(&r2);
	finish(&before, &(struct want){.total = 2,
				       .bytes = (long long)pings * 100,
				       .dgrams = udp ? pings : 0,
				       .idle = 2});
}

static void t_idle_timeout(void)
{
	idle_test(false);
}

static void t_udp_idle_timeout(void)
{
	idle_test(true);
}

/* ==== EOF ==== */

/* The source's peer writes, then shuts down: s reads it all then EOF; the source reads EOF. */
static void t_eof(void)
{
	const uint64_t len = 300077;
	struct ts_counters before;
	uint64_t seed = ts_seed(), got;
	struct relay r;
	struct sender w;
	unsigned long t;
	ssize_t n;
	short rev;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, 0, 0);
	w = (struct sender){r.c, seed, 0, len, true};
	t = ts_spawn(sender_main, &w);
	ts_phase("the stream and EOF at the drain's peer");
	got = ts_read_stream_to_eof(r.s, seed, 65536);
	ts_join(t);
	TS_ASSERT(got == len, "the drain's peer read %llu bytes then EOF, want %llu", ULL(got),
		  ULL(len));
	wait_ended(r.a, 10000, "EOF on the source");
	expect_info_ended(r.a, len, "after EOF");
	TS_ASSERT(so_error(r.a) == 0, "SO_ERROR of the source after EOF");
	rev = ts_poll1(r.a, POLLIN, 5000);
	TS_ASSERT((rev & POLLIN) && !(rev & POLLERR),
		  "the source after EOF: revents %#x, want POLLIN without POLLERR", rev);
	n = recv(r.a, (char[8]){0}, 8, MSG_DONTWAIT);
	TS_ASSERT(n == 0, "the source after EOF: %s, want EOF", res(n, errno));
	/* The relay shut the drain down for writing. */
	n = send(r.b, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	TS_ASSERT(n < 0 && errno == EPIPE, "a write on the drain after EOF: %s, want EPIPE",
		  res(n, errno));
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = len, .eof = 1});
}

/*
 * The last bytes and the FIN in one segment (MSG_MORE, then shutdown): the
 * consume of those bytes reads the FIN too.  Every byte and EOF arrive.
 */
static void t_eof_same_segment(void)
{
	static const size_t sizes[] = {1, 1000, 40000};
	struct ts_counters before;
	uint64_t seed = ts_seed(), total = 0;

	begin(&before);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *buf = malloc(sizes[i]);
		struct relay r;
		uint64_t got;

		if (!buf)
			ts_fail("malloc");
		relay_open(&r, AF_INET, AF_INET, false);
		do_splice(r.a, r.b, 0, 0);
		ts_phase("%zu bytes and the FIN in one segment", sizes[i]);
		ts_fill(seed + i, 0, buf, sizes[i]);
		TS_ASSERT(send(r.c, buf, sizes[i], MSG_MORE) == (ssize_t)sizes[i],
			  "send with MSG_MORE: %m");
		TS_SYS(shutdown(r.c, SHUT_WR));
		got = ts_read_stream_to_eof(r.s, seed + i, 65536);
		TS_ASSERT(got == sizes[i], "the drain's peer read %llu bytes then EOF, want %zu",
			  ULL(got), sizes[i]);
		wait_ended(r.a, 10000, "EOF on the source");
		expect_info_ended(r.a, sizes[i], "after EOF");
		TS_ASSERT(so_error(r.a) == 0, "SO_ERROR of the source after EOF");
		relay_close(&r);
		free(buf);
		total += sizes[i];
	}
	finish(&before, &(struct want){.total = 3, .bytes = (long long)total, .eof = 3});
}

/* Bytes and FIN both queued before the splice (source in CLOSE_WAIT). */
static void t_eof_queued(void)
{
	const uint64_t len = 20000;
	struct ts_counters before;
	uint64_t seed = ts_seed(), got;
	struct relay r;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	send_at(r.c, seed, 0, len);
	TS_SYS(shutdown(r.c, SHUT_WR));
	TS_ASSERT(ts_poll1(r.a, POLLRDHUP, 5000) & POLLRDHUP, "the FIN did not reach the source");
	wait_inq(r.a, len);
	do_splice(r.a, r.b, 0, 0);
	ts_phase("the queued bytes and EOF at the drain's peer");
	got = ts_read_stream_to_eof(r.s, seed, 65536);
	TS_ASSERT(got == len, "the drain's peer read %llu bytes then EOF, want %llu", ULL(got),
		  ULL(len));
	wait_ended(r.a, 10000, "EOF on the source");
	expect_info_ended(r.a, len, "after EOF");
	TS_ASSERT(so_error(r.a) == 0, "SO_ERROR of the source after EOF");
	expect_eof(r.a, "the source after EOF");
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = len, .eof = 1});
}

/* ==== errors ==== */

/* The source's peer resets: ECONNRESET stays on the source, the drain is untouched. */
static void t_source_reset(void)
{
	struct ts_counters before;
	uint64_t seed = ts_seed();
	struct relay r;
	ssize_t n;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, 0, 0);
	send_at(r.c, seed, 0, 10000);
	recv_at(r.s, seed, 0, 10000);
	wait_moved(r.a, 10000, "10000 bytes at the drain's peer");
	linger0(r.c);
	close(r.c);
	r.c = -1;
	expect_error_end(r.a, ECONNRESET, "the source's peer reset");
	expect_info_ended(r.a, 10000, "after the reset");
	TS_ASSERT(so_error(r.b) == 0, "an error on the drain after the source's reset");
	/* The drain is the application's, still open both ways. */
	send_at(r.b, seed ^ 1, 0, 1000);
	recv_at(r.s, seed ^ 1, 0, 1000);
	n = recv(r.s, (char[8]){0}, 8, MSG_DONTWAIT);
	TS_ASSERT(n < 0 && errno == EAGAIN,
		  "the drain's peer after the source's reset: %s, want EAGAIN (drain untouched)",
		  res(n, errno));
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = 10000, .error = 1});
}

/* Sends 1000 bytes every 10 ms on c until the splice of a ends; *off: bytes sent in all. */
static void feed_until_ended(int c, int a, uint64_t seed, uint64_t *off, const char *why)
{
	int64_t end = ts_now_us() + 15000000;
	char buf[1000];

	while (is_active(a)) {
		if (ts_now_us() > end)
			ts_fail("the splice is still active 15 s after %s, with bytes to move",
				why);
		ts_fill(seed, *off, buf, sizeof(buf));
		ts_write_all(c, buf, sizeof(buf));
		*off += sizeof(buf);
		ts_sleep_ms(10);
	}
}

/* The drain's peer closes: the relay's writes fail, EPIPE on the source, unmoved bytes stay. */
static void t_drain_peer_closed(void)
{
	struct ts_counters before;
	uint64_t seed = ts_seed(), off = 10000, m;
	struct relay r;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, 0, 0);
	send_at(r.c, seed, 0, off);
	recv_at(r.s, seed, 0, off);
	close(r.s);
	r.s = -1;
	ts_phase("feeding the source until the splice ends");
	feed_until_ended(r.c, r.a, seed, &off, "the drain's peer closed");
	expect_error_end(r.a, EPIPE, "the drain's peer closed");
	m = moved(r.a);
	TS_ASSERT(m >= 10000 && m <= off, "INFO.moved %llu, sent %llu", ULL(m), ULL(off));
	ts_log("%llu bytes sent, %llu moved", ULL(off), ULL(m));
	/* Every byte not moved is still in the source, in order. */
	direct_read(r.a, seed, m, off - m);
	TS_ASSERT(ts_inq(r.a) == 0, "%d bytes more than sent in the source", ts_inq(r.a));
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = (long long)m, .drain = 1});
}

/* The application shuts the drain down while data flows: EPIPE; s got exactly INFO.moved. */
static void t_drain_shutdown(void)
{
	struct ts_counters before;
	uint64_t seed = ts_seed(), off = 100000, m;
	struct eof_reader rd;
	struct relay r;
	unsigned long t;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, 0, 0);
	rd = (struct eof_reader){.fd = r.s, .seed = seed};
	t = ts_spawn(eof_reader_main, &rd);
	send_at(r.c, seed, 0, off);
	wait_moved(r.a, off, "the first bytes");
	TS_SYS(shutdown(r.b, SHUT_WR));
	ts_phase("feeding the source until the splice ends");
	feed_until_ended(r.c, r.a, seed, &off, "the drain was shut down for writing");
	expect_error_end(r.a, EPIPE, "the drain shut down for writing");
	m = moved(r.a);
	ts_join(t);
	TS_ASSERT(rd.got == m, "the drain's peer read %llu bytes then EOF, INFO.moved %llu",
		  ULL(rd.got), ULL(m));
	direct_read(r.a, seed, m, off - m);
	TS_ASSERT(ts_inq(r.a) == 0, "%d bytes more than sent in the source", ts_inq(r.a));
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = (long long)m, .drain = 1});
}

/* ==== back-pressure ==== */

/*
 * Non-blocking sends on fd until it stays unwritable for 500 ms; returns the
 * bytes accepted.  More than `limit` accepted means nothing holds them back.
 */
static uint64_t fill_until_stuck(int fd, uint64_t seed, uint64_t limit)
{
	int64_t end = ts_now_us() + 60000000;
	char *buf = malloc(65536);
	uint64_t off = 0;

	if (!buf)
		ts_fail("malloc");
	for (;;) {
		ssize_t n;

		ts_fill(seed, off, buf, 65536);
		n = send(fd, buf, 65536, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			off += n;
			if (off > limit)
				ts_fail("%llu bytes accepted with the drain's peer not reading: no "
					"back-pressure",
					ULL(off));
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (!(n < 0 && errno == EAGAIN))
			ts_fail("non-blocking send after %llu bytes: %s", ULL(off), res(n, errno));
		if (!(ts_poll1(fd, POLLOUT, 500) & POLLOUT))
			break;
		if (ts_now_us() > end)
			ts_fail("still writable after 60 s and %llu bytes, the drain's peer "
				"not reading",
				ULL(off));
	}
	free(buf);
	return off;
}

static void t_back_pressure(void)
{
	const uint64_t more = 2 << 20, limit = 64ULL << 20;
	struct ts_counters before;
	uint64_t seed = ts_seed(), total, m;
	struct relay r;
	struct sender w;
	unsigned long t;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, 0, 0);
	ts_phase("writing until the writer is held back");
	total = fill_until_stuck(r.c, seed, limit);
	m = moved(r.a);
	ts_log("held back after %llu bytes, %llu of them moved, %d at the drain's peer", ULL(total),
	       ULL(m), ts_inq(r.s));
	TS_ASSERT(is_active(r.a), "the splice ended while the drain was full");
	TS_ASSERT(m > 0 && m <= total, "INFO.moved %llu with %llu bytes sent", ULL(m), ULL(total));
	ts_phase("the drain's peer reads, the writer continues");
	w = (struct sender){r.c, seed, total, more, true};
	t = ts_spawn(sender_main, &w);
	recv_at(r.s, seed, 0, total + more);
	ts_join(t);
	expect_eof(r.s, "the drain's peer after the stream");
	wait_ended(r.a, 10000, "EOF on the source");
	expect_info_ended(r.a, total + more, "after EOF");
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = (long long)(total + more), .eof = 1});
}

/* ==== non-blocking sockets ==== */

/* Neither poll, epoll nor select report the spliced source readable within ms. */
static void expect_not_readable(int fd, int ms, const char *when)
{
	struct epoll_event ev = {.events = EPOLLIN}, out;
	struct timeval tv = {0, 0};
	fd_set rs;
	short rev;
	int ep, n;

	rev = ts_poll1(fd, POLLIN, ms);
	TS_ASSERT(!(rev & POLLIN), "%s: poll reports the spliced source readable (revents %#x)",
		  when, rev);
	ep = TS_SYS(epoll_create1(EPOLL_CLOEXEC));
	TS_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	n = epoll_wait(ep, &out, 1, ms);
	TS_ASSERT(n == 0, "%s: epoll reports the spliced source (%d, events %#x)", when, n,
		  n > 0 ? out.events : 0);
	close(ep);
	FD_ZERO(&rs);
	FD_SET(fd, &rs);
	n = select(fd + 1, &rs, NULL, NULL, &tv);
	TS_ASSERT(n == 0, "%s: select reports the spliced source readable (%d)", when, n);
}

/*
 * Source and drain O_NONBLOCK: reads of the source give EAGAIN and it is
 * never reported readable while data flows and while bytes wait in it; an
 * unsplice wakes a poller, and the bytes not moved are read from the source.
 */
static void t_nonblocking(void)
{
	const uint64_t len = 4 << 20, first = 1 << 20;
	struct ts_counters before;
	uint64_t seed = ts_seed(), off = 0, m;
	char *buf = malloc(65536);
	struct waiter *p = malloc(sizeof(*p));
	unsigned long t, tp;
	struct relay r;
	struct sender w;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	small_bufs(&r);
	ts_set_nonblock(r.a, true);
	ts_set_nonblock(r.b, true);
	do_splice(r.a, r.b, 0, 0);
	expect_eagain(r.a, 0, "nothing sent yet");
	w = (struct sender){r.c, seed, 0, len, false};
	t = ts_spawn(sender_main, &w);
	ts_phase("data flowing");
	while (off < first) {
		ssize_t n = recv(r.s, buf, 65536, 0);

		if (n <= 0)
			ts_fail("recv at the drain's peer at %llu: %s", ULL(off), res(n, errno));
		if (ts_check(seed, off, buf, n) >= 0)
			ts_fail("stream corrupt at byte %llu",
				ULL(off + ts_check(seed, off, buf, n)));
		off += n;
		TS_ASSERT(!(ts_poll1(r.a, POLLIN, 0) & POLLIN),
			  "poll reports the spliced source readable while data flows");
		expect_eagain(r.a, 0, "data flowing");
	}
	ts_phase("the drain's peer stops reading");
	m = wait_moved_stable(r.a);
	ts_log("stuck at %llu bytes moved, %d queued in the source (FIONREAD)", ULL(m),
	       ts_inq(r.a));
	TS_ASSERT(m < len,
		  "everything moved (%llu bytes) although the drain's peer stopped at %llu: "
		  "nothing left in the source for the test",
		  ULL(m), ULL(off));
	expect_not_readable(r.a, 300, "bytes waiting in the spliced source");
	expect_eagain(r.a, 0, "bytes waiting in the spliced source");
	TS_ASSERT(is_active(r.a), "the splice ended by itself");
	ts_phase("unsplice with a poller waiting");
	tp = start_waiter(p, r.a, true);
	do_unsplice(r.a);
	m = moved(r.a);
	expect_info_ended(r.a, m, "after unsplice");
	wait_waiter(p, tp, 5000, "after the unsplice, with bytes queued in the source");
	TS_ASSERT(p->n > 0 && (p->n & POLLIN) && !(p->n & POLLERR),
		  "the poller woken by the unsplice: revents %#zx, want POLLIN", p->n);
	ts_phase("the moved bytes at the drain's peer, the others from the source");
	recv_at(r.s, seed, off, m - off);
	expect_drained(r.b, r.s);
	read_nb(r.a, seed, m, len - m);
	ts_join(t);
	TS_ASSERT(ts_inq(r.a) == 0, "%d bytes more than sent in the source", ts_inq(r.a));
	TS_ASSERT(so_error(r.a) == 0, "SO_ERROR after an explicit unsplice");
	free(buf);
	free(p);
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = (long long)m, .unsplice = 1});
}

/* ==== explicit unsplice ==== */

/*
 * Unsplice mid-stream: the bytes moved reach s, the rest is read from the
 * source; a new splice then takes the rest (INFO.moved counts it from 0).
 */
static void t_unsplice_midstream(void)
{
	const uint64_t len = 8 << 20, first = 2 << 20, direct = 100000;
	struct ts_counters before;
	uint64_t seed = ts_seed(), m;
	struct relay r;
	struct sender w;
	unsigned long t;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	ts_set_int(r.b, SOL_SOCKET, SO_SNDBUF, 65536);
	ts_set_int(r.s, SOL_SOCKET, SO_RCVBUF, 65536);
	do_splice(r.a, r.b, 0, 0);
	w = (struct sender){r.c, seed, 0, len, true};
	t = ts_spawn(sender_main, &w);
	recv_at(r.s, seed, 0, first);
	ts_phase("unsplice mid-stream");
	do_unsplice(r.a);
	m = moved(r.a);
	expect_info_ended(r.a, m, "after unsplice");
	ts_log("unspliced after %llu bytes moved", ULL(m));
	TS_ASSERT(m >= first && m + direct < len, "INFO.moved %llu: want %llu..%llu", ULL(m),
		  ULL(first), ULL(len - direct));
	recv_at(r.s, seed, first, m - first);
	expect_drained(r.b, r.s);
	TS_ASSERT(so_error(r.a) == 0, "SO_ERROR after an explicit unsplice");
	ts_phase("the application reads the source");
	direct_read(r.a, seed, m, direct);
	ts_phase("spliced again for the rest");
	do_splice(r.a, r.b, 0, 0);
	recv_at(r.s, seed, m + direct, len - m - direct);
	ts_join(t);
	expect_eof(r.s, "the drain's peer after the stream");
	wait_ended(r.a, 10000, "EOF on the source");
	expect_info_ended(r.a, len - m - direct, "the second splice after EOF (moved from 0)");
	relay_close(&r);
	finish(&before,
	       &(struct want){
		       .total = 2, .bytes = (long long)(len - direct), .unsplice = 1, .eof = 1});
}

/* ==== blocked readers ==== */

/* A read blocked on the spliced source steals nothing, and max (EFBIG) ends it. */
static void t_blocked_read_max(void)
{
	const uint64_t max = 300000, extra = 1000;
	struct waiter *rd = malloc(sizeof(*rd));
	struct ts_counters before;
	uint64_t seed = ts_seed(), got = 0;
	unsigned long t, tw;
	struct sender w;
	struct relay r;
	int e;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, max, 0);
	t = start_waiter(rd, r.a, false);
	ts_transfer(r.c, r.s, seed, 0, max / 2);
	expect_still_blocked(rd, "while the splice moved data");
	w = (struct sender){r.c, seed, max / 2, max - max / 2 + extra, false};
	tw = ts_spawn(sender_main, &w);
	recv_at(r.s, seed, max / 2, max - max / 2);
	ts_join(tw);
	wait_waiter(rd, t, 10000, "after max ended the splice");
	wait_ended(r.a, 5000, "max");
	if (rd->n > 0) {
		/* Woken, it found the bytes past max: they come first, the error stays. */
		TS_ASSERT((uint64_t)rd->n <= extra, "the blocked read returned %zd bytes", rd->n);
		TS_ASSERT(ts_check(seed, max, rd->buf, rd->n) < 0,
			  "the blocked read returned bytes other than those past max");
		wait_pollerr(r.a, 5000, "max, the blocked read returned data");
		e = so_error(r.a);
		TS_ASSERT(e == EFBIG, "the blocked read returned data; SO_ERROR %s, want EFBIG",
			  ename(e));
		got = rd->n;
	} else {
		/* It returned the error itself: that was its one report. */
		TS_ASSERT(rd->n < 0 && rd->err == EFBIG,
			  "the blocked read returned %s, want the bytes past max or EFBIG",
			  res(rd->n, rd->err));
		e = so_error(r.a);
		TS_ASSERT(e == 0, "the blocked read returned EFBIG, then SO_ERROR %s, want 0",
			  ename(e));
	}
	expect_info_ended(r.a, max, "after max");
	direct_read(r.a, seed, max + got, extra - got);
	TS_SYS(shutdown(r.b, SHUT_WR));
	expect_eof(r.s, "the drain's peer after max bytes");
	free(rd);
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = max, .max = 1});
}

/*
 * A read blocked on the spliced source, which is stuck with bytes queued (the
 * drain's peer stopped reading): the unsplice alone must wake it with them.
 */
static void t_blocked_read_unsplice(void)
{
	const uint64_t len = 2 << 20, first = 100000;
	struct waiter *rd = malloc(sizeof(*rd));
	struct ts_counters before;
	uint64_t seed = ts_seed(), m;
	unsigned long t, tw;
	struct relay r;
	struct sender w;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	small_bufs(&r);
	do_splice(r.a, r.b, 0, 0);
	t = start_waiter(rd, r.a, false);
	w = (struct sender){r.c, seed, 0, len, false};
	tw = ts_spawn(sender_main, &w);
	recv_at(r.s, seed, 0, first);
	expect_still_blocked(rd, "while the splice moved data");
	expect_eagain(r.a, MSG_DONTWAIT, "MSG_DONTWAIT on the blocking spliced source");
	ts_phase("the drain's peer stops reading");
	m = wait_moved_stable(r.a);
	TS_ASSERT(m < len, "everything moved (%llu bytes): nothing left in the source", ULL(m));
	expect_still_blocked(rd, "with bytes waiting in the spliced source");
	ts_phase("unsplice");
	do_unsplice(r.a);
	m = moved(r.a);
	expect_info_ended(r.a, m, "after unsplice");
	wait_waiter(rd, t, 5000, "after the unsplice, with bytes queued in the source");
	TS_ASSERT(rd->n > 0, "the read woken by the unsplice returned %s, want the bytes not moved",
		  res(rd->n, rd->err));
	TS_ASSERT(ts_check(seed, m, rd->buf, rd->n) < 0,
		  "the read woken by the unsplice returned bytes other than those after "
		  "INFO.moved (%llu)",
		  ULL(m));
	recv_at(r.s, seed, first, m - first);
	expect_drained(r.b, r.s);
	direct_read(r.a, seed, m + rd->n, len - m - rd->n);
	ts_join(tw);
	TS_ASSERT(so_error(r.a) == 0, "SO_ERROR after an explicit unsplice");
	free(rd);
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = (long long)m, .unsplice = 1});
}

/* A read blocked on the spliced source returns EOF once the splice ends on EOF. */
static void t_blocked_read_eof(void)
{
	const uint64_t len = 3000;
	struct waiter *rd = malloc(sizeof(*rd));
	struct ts_counters before;
	uint64_t seed = ts_seed(), got;
	struct relay r;
	unsigned long t;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, 0, 0);
	t = start_waiter(rd, r.a, false);
	send_at(r.c, seed, 0, len);
	TS_SYS(shutdown(r.c, SHUT_WR));
	ts_phase("the stream and EOF at the drain's peer");
	got = ts_read_stream_to_eof(r.s, seed, 65536);
	TS_ASSERT(got == len, "the drain's peer read %llu bytes then EOF, want %llu", ULL(got),
		  ULL(len));
	wait_waiter(rd, t, 5000, "after EOF ended the splice");
	TS_ASSERT(rd->n == 0, "the blocked read returned %s after EOF ended the splice, want 0",
		  res(rd->n, rd->err));
	wait_ended(r.a, 5000, "EOF");
	expect_info_ended(r.a, len, "after EOF");
	TS_ASSERT(so_error(r.a) == 0, "SO_ERROR of the source after EOF");
	free(rd);
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = len, .eof = 1});
}

/* ==== close ==== */

static void t_close_source(void)
{
	const uint64_t len = 100000;
	struct ts_counters before;
	uint64_t seed = ts_seed();
	struct relay r;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, 0, 0);
	ts_transfer(r.c, r.s, seed, 0, len);
	wait_moved(r.a, len, "the stream at the drain's peer");
	TS_ASSERT(gauge_delta(&before, "relay_active") == 1, "relay_active %+lld with one splice",
		  gauge_delta(&before, "relay_active"));
	close(r.a);
	r.a = -1;
	/* The splice ends and the source's socket is released: its peer sees the end. */
	TS_ASSERT(ts_counter_wait("relay_active", ts_counter(&before, "relay_active", NULL),
				  5000) == ts_counter(&before, "relay_active", NULL),
		  "relay_active not back 5 s after the source was closed");
	expect_conn_end(r.c, "the source's peer");
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = len, .close = 1});
}

static void t_close_drain(void)
{
	const uint64_t len = 100000;
	struct ts_counters before;
	uint64_t seed = ts_seed();
	struct relay r;
	short rev;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, 0, 0);
	ts_transfer(r.c, r.s, seed, 0, len);
	wait_moved(r.a, len, "the stream at the drain's peer");
	close(r.b);
	r.b = -1;
	wait_ended(r.a, 5000, "the drain was closed");
	expect_info_ended(r.a, len, "after the drain was closed");
	rev = ts_poll1(r.a, POLLIN, 0);
	TS_ASSERT(!(rev & POLLERR), "POLLERR on the source after the drain was closed");
	TS_ASSERT(so_error(r.a) == 0, "SO_ERROR of the source after the drain was closed");
	/* The drain's socket is released: its peer reads EOF after the moved bytes. */
	expect_eof(r.s, "the drain's peer after the drain was closed");
	/* The source is the application's again. */
	send_at(r.c, seed, len, 2000);
	direct_read(r.a, seed, len, 2000);
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = len, .close = 1});
}

/* ==== UDP ==== */

#define UDP_BURST 40

/*
 * Datagram boundaries kept, empty ones included, in order: two queued before
 * the splice, then 1472, 8192, 65000 and the IPv4 maximum 65507, then a burst
 * of small ones.  Each has its own contents: a reordering or a merge shows.
 */
static void t_udp_datagrams(void)
{
	static const size_t fixed[] = {0, 1, 1472, 8192, 65000, 65507};
	size_t sizes[sizeof(fixed) / sizeof(fixed[0]) + UDP_BURST];
	const size_t nq = 2, n = sizeof(sizes) / sizeof(sizes[0]);
	struct ts_counters before;
	uint64_t seed = ts_seed(), sum = 0;
	struct ts_rng g;
	struct relay r;
	char what[64];

	begin(&before);
	ts_rng_init(&g, seed);
	for (size_t i = 0; i < n; i++) {
		sizes[i] = i < sizeof(fixed) / sizeof(fixed[0]) ? fixed[i]
								: ts_rand_range(&g, 0, 3000);
		sum += sizes[i];
	}
	relay_open(&r, AF_INET, AF_INET, true);
	for (size_t i = 0; i < nq; i++)
		send_dgram(r.c, seed + i, sizes[i]);
	TS_ASSERT(ts_poll1(r.a, POLLIN, 5000) & POLLIN, "the queued datagrams did not arrive");
	do_splice(r.a, r.b, 0, 0);
	for (size_t i = nq; i < n; i++)
		send_dgram(r.c, seed + i, sizes[i]);
	ts_phase("datagrams at the drain's peer");
	for (size_t i = 0; i < n; i++) {
		snprintf(what, sizeof(what), "datagram %zu of %zu", i, n);
		recv_dgram(r.s, seed + i, sizes[i], what);
	}
	wait_moved(r.a, sum, "every datagram at the drain's peer");
	TS_ASSERT(is_active(r.a), "the UDP splice ended by itself");
	expect_eagain(r.a, MSG_DONTWAIT, "the spliced UDP source");
	do_unsplice(r.a);
	expect_info_ended(r.a, sum, "after unsplice");
	/* Not one datagram more at s; the source is the application's again. */
	expect_eagain(r.s, MSG_DONTWAIT, "the drain's peer after the last datagram");
	send_dgram(r.c, seed ^ 99, 100);
	recv_dgram(r.a, seed ^ 99, 100, "the source after unsplice");
	relay_close(&r);
	finish(&before,
	       &(struct want){
		       .total = 1, .bytes = (long long)sum, .dgrams = (long long)n, .unsplice = 1});
}

/* A datagram that would go past max is not moved: it stays in the source, EFBIG. */
static void t_udp_max(void)
{
	const uint64_t max = 3500;
	struct ts_counters before;
	uint64_t seed = ts_seed();
	struct relay r;

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, true);
	do_splice(r.a, r.b, max, 0);
	for (int i = 0; i < 5; i++)
		send_dgram(r.c, seed + i, 1000);
	for (int i = 0; i < 3; i++)
		recv_dgram(r.s, seed + i, 1000, "a datagram within max");
	expect_error_end(r.a, EFBIG, "a datagram going past max");
	expect_info_ended(r.a, 3000, "after max");
	recv_dgram(r.a, seed + 3, 1000, "the datagram past max, in the source");
	recv_dgram(r.a, seed + 4, 1000, "the next datagram, in the source");
	expect_eagain(r.s, MSG_DONTWAIT, "the drain's peer after max");
	relay_close(&r);
	finish(&before, &(struct want){.total = 1, .bytes = 3000, .dgrams = 3, .max = 1});
}

/* ==== IPv4 and IPv6 mixed ==== */

static void t_mix_tcp(void)
{
	static const int fam[2][2] = {{AF_INET, AF_INET6}, {AF_INET6, AF_INET}};
	const uint64_t len = 2 << 20;
	struct ts_counters before;
	uint64_t seed = ts_seed();
	struct relay r[2];

	need_v6();
	begin(&before);
	for (int k = 0; k < 2; k++) {
		struct sockaddr_storage sa, sb;
		socklen_t la = sizeof(sa), lb = sizeof(sb);

		ts_phase("TCP IPv%d -> IPv%d", fam[k][0] == AF_INET ? 4 : 6,
			 fam[k][1] == AF_INET ? 4 : 6);
		relay_open(&r[k], fam[k][0], fam[k][1], false);
		TS_SYS(getsockname(r[k].a, (struct sockaddr *)&sa, &la));
		TS_SYS(getsockname(r[k].b, (struct sockaddr *)&sb, &lb));
		TS_ASSERT(sa.ss_family == fam[k][0] && sb.ss_family == fam[k][1],
			  "socket families %d/%d, want %d/%d", sa.ss_family, sb.ss_family,
			  fam[k][0], fam[k][1]);
		do_splice(r[k].a, r[k].b, 0, 0);
		ts_transfer(r[k].c, r[k].s, seed + k, 0, len);
		TS_SYS(shutdown(r[k].c, SHUT_WR));
		expect_eof(r[k].s, "the drain's peer after the stream");
		wait_ended(r[k].a, 10000, "EOF on the source");
		expect_info_ended(r[k].a, len, "after EOF");
		relay_close(&r[k]);
	}
	finish(&before, &(struct want){.total = 2, .bytes = 2 * len, .eof = 2});
}

static void t_mix_udp(void)
{
	static const int fam[2][2] = {{AF_INET, AF_INET6}, {AF_INET6, AF_INET}};
	static const size_t sizes[] = {0, 1, 1472, 8192, 65000};
	const size_t n = sizeof(sizes) / sizeof(sizes[0]);
	struct ts_counters before;
	uint64_t seed = ts_seed(), sum = 0;
	struct relay r;

	need_v6();
	begin(&before);
	for (size_t i = 0; i < n; i++)
		sum += sizes[i];
	for (int k = 0; k < 2; k++) {
		ts_phase("UDP IPv%d -> IPv%d", fam[k][0] == AF_INET ? 4 : 6,
			 fam[k][1] == AF_INET ? 4 : 6);
		relay_open(&r, fam[k][0], fam[k][1], true);
		do_splice(r.a, r.b, 0, 0);
		for (size_t i = 0; i < n; i++)
			send_dgram(r.c, seed + 16 * k + i, sizes[i]);
		for (size_t i = 0; i < n; i++)
			recv_dgram(r.s, seed + 16 * k + i, sizes[i], "mixed-family datagram");
		wait_moved(r.a, sum, "every datagram at the drain's peer");
		do_unsplice(r.a);
		expect_info_ended(r.a, sum, "after unsplice");
		expect_eagain(r.s, MSG_DONTWAIT, "the drain's peer after the last datagram");
		relay_close(&r);
	}
	finish(&before, &(struct want){.total = 2,
				       .bytes = 2 * (long long)sum,
				       .dgrams = 2 * (long long)n,
				       .unsplice = 2});
}

/* ==== many relays at once ==== */

#define MANY	 64
#define MANY_LEN (256 << 10)

/* x sends stream seed_xy to y while y sends seed_yx to x, both non-blocking, checked. */
struct pump {
	int fd[2];
	uint64_t seed[2]; /* [k]: what fd[k] sends */
};

static void *pump_main(void *arg)
{
	struct pump *p = arg;
	uint64_t sent[2] = {0, 0}, got[2] = {0, 0}; /* got[k]: of what fd[k] sends */
	char *buf = malloc(16384);
	struct ts_rng g;

	ts_rng_init(&g, p->seed[0]);
	for (int k = 0; k < 2; k++)
		ts_set_nonblock(p->fd[k], true);
	while (got[0] < MANY_LEN || got[1] < MANY_LEN) {
		struct pollfd pf[2];
		int rc;

		for (int k = 0; k < 2; k++) {
			pf[k].fd = p->fd[k];
			pf[k].events = (sent[k] < MANY_LEN ? POLLOUT : 0) |
				       (got[1 - k] < MANY_LEN ? POLLIN : 0);
		}
		rc = poll(pf, 2, 20000);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			ts_fail("relay stalled 20 s: sent %llu/%llu, received %llu/%llu",
				ULL(sent[0]), ULL(sent[1]), ULL(got[0]), ULL(got[1]));
		for (int k = 0; k < 2; k++) {
			ssize_t n;

			if ((pf[k].revents & POLLOUT) && sent[k] < MANY_LEN) {
				size_t want = ts_rand_range(&g, 1, 16384);

				if (want > MANY_LEN - sent[k])
					want = MANY_LEN - sent[k];
				ts_fill(p->seed[k], sent[k], buf, want);
				n = send(p->fd[k], buf, want, MSG_NOSIGNAL);
				if (n < 0 && errno != EAGAIN)
					ts_fail("send: %m");
				if (n > 0)
					sent[k] += n;
			}
			if ((pf[k].revents & (POLLIN | POLLERR | POLLHUP)) &&
			    got[1 - k] < MANY_LEN) {
				uint64_t *gk = &got[1 - k];

				n = recv(p->fd[k], buf, 16384, 0);
				if (n < 0 && errno == EAGAIN)
					continue;
				if (n <= 0)
					ts_fail("recv after %llu bytes: %s", ULL(*gk),
						res(n, errno));
				if (*gk + n > MANY_LEN)
					ts_fail("%llu bytes received, %d sent", ULL(*gk + n),
						MANY_LEN);
				if (ts_check(p->seed[1 - k], *gk, buf, n) >= 0)
					ts_fail("stream corrupt at byte %llu (another relay's?)",
						ULL(*gk + ts_check(p->seed[1 - k], *gk, buf, n)));
				*gk += n;
			}
		}
	}
	free(buf);
	return NULL;
}

/* 64 bidirectional relays at once, each with its own streams; then all closed. */
static void t_many(void)
{
	static struct relay r[MANY];
	static struct pump p[MANY];
	unsigned long t[MANY];
	struct ts_counters before;
	uint64_t seed = ts_seed();

	begin(&before);
	ts_phase("%d relays", MANY);
	for (int i = 0; i < MANY; i++) {
		relay_open(&r[i], AF_INET, AF_INET, false);
		do_splice(r[i].a, r[i].b, 0, 0);
		do_splice(r[i].b, r[i].a, 0, 0);
	}
	TS_ASSERT(gauge_delta(&before, "relay_active") == 2 * MANY,
		  "relay_active %+lld with %d splices", gauge_delta(&before, "relay_active"),
		  2 * MANY);
	ts_phase("streams both ways on every relay");
	for (int i = 0; i < MANY; i++) {
		p[i] = (struct pump){{r[i].c, r[i].s}, {seed + 2 * i, seed + 2 * i + 1}};
		t[i] = ts_spawn(pump_main, &p[i]);
	}
	for (int i = 0; i < MANY; i++)
		ts_join(t[i]);
	for (int i = 0; i < MANY; i++) {
		wait_moved(r[i].a, MANY_LEN, "a -> b of a relay");
		wait_moved(r[i].b, MANY_LEN, "b -> a of a relay");
		TS_ASSERT(is_active(r[i].a) && is_active(r[i].b), "relay %d ended by itself", i);
	}
	ts_phase("closing");
	/* Closing a ends both splices (a's, and the one a is the drain of): no error on b. */
	for (int i = 0; i < MANY; i++) {
		close(r[i].a);
		r[i].a = -1;
	}
	TS_ASSERT(ts_counter_wait("relay_active", ts_counter(&before, "relay_active", NULL),
				  10000) == ts_counter(&before, "relay_active", NULL),
		  "relay_active not back 10 s after one socket of every relay was closed");
	for (int i = 0; i < MANY; i++) {
		int e;

		TS_ASSERT(!(ts_poll1(r[i].b, 0, 0) & POLLERR),
			  "POLLERR on b after its drain a was closed");
		e = so_error(r[i].b);
		TS_ASSERT(e == 0, "SO_ERROR %s on b after its drain a was closed", ename(e));
		TS_ASSERT(!is_active(r[i].b), "b -> a still active after a was closed");
		close(r[i].b);
		r[i].b = -1;
	}
	for (int i = 0; i < MANY; i++) {
		expect_conn_end(r[i].c, "the client of a closed relay");
		expect_conn_end(r[i].s, "the server of a closed relay");
		relay_close(&r[i]);
	}
	finish(&before, &(struct want){.total = 2 * MANY,
				       .bytes = 2LL * MANY * MANY_LEN,
				       .close = 2 * MANY});
}

/* ==== the example relays of examples/relay, against the module ==== */

#define EXAMPLES_DIR "build/examples"

struct example {
	pid_t pid;
	FILE *out; /* its stdout: one line per connection */
};

static void example_stop(struct example *x)
{
	if (x->pid > 0) {
		kill(x->pid, SIGTERM);
		waitpid(x->pid, NULL, 0);
		x->pid = -1;
	}
	if (x->out)
		fclose(x->out);
	x->out = NULL;
}

static struct example example_x;

static void example_cleanup(void)
{
	example_stop(&example_x);
}

/* Starts build/examples/PROG with argv, its stdout on a pipe; stopped at the test's end. */
static void example_start(struct example *x, char *const argv[])
{
	char path[256];
	int p[2];

	snprintf(path, sizeof(path), "%s/%s", EXAMPLES_DIR, argv[0]);
	if (access(path, X_OK) < 0)
		ts_fail("%s: %m (build it: make examples)", path);
	TS_SYS(pipe2(p, O_CLOEXEC));
	x->pid = TS_SYS(fork());
	if (!x->pid) {
		dup2(p[1], STDOUT_FILENO);
		execv(path, argv);
		_exit(127);
	}
	close(p[1]);
	x->out = fdopen(p[0], "r");
	if (!x->out)
		ts_fail("fdopen: %m");
	ts_cleanup(example_cleanup);
}

/* The next line the example printed, within ms. */
static void example_line(struct example *x, char *buf, size_t len, int ms)
{
	if (!(ts_poll1(fileno(x->out), POLLIN, ms) & POLLIN))
		ts_fail("%s: no line on its output within %d ms", "the example relay", ms);
	if (!fgets(buf, (int)len, x->out))
		ts_fail("the example relay ended without a line");
	buf[strcspn(buf, "\n")] = 0;
	ts_log("example relay: %s", buf);
}

/* Connects to the relay's port on the loopback, retrying while it starts. */
static int connect_retry(int family, int port)
{
	int64_t end = ts_now_us() + 10000000;

	for (;;) {
		char pb[16];
		int fd;

		snprintf(pb, sizeof(pb), "%d", port);
		fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			ts_fail("socket: %m");
		if (family == AF_INET) {
			struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

			a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			if (!connect(fd, (struct sockaddr *)&a, sizeof(a)))
				return fd;
		}
		close(fd);
		if (ts_now_us() > end)
			ts_fail("the example relay does not accept on port %d within 10 s", port);
		ts_sleep_ms(50);
	}
}

/*
 * tcp-relay between a client and a server: streams both ways, checked, with
 * both halves closed in turn; the module moved every byte (relay counters)
 * and the relay's log line gives both byte counts and the end.
 */
static void t_example_tcp(void)
{
	const uint64_t up = 6 << 20, down = 4 << 20;
	struct ts_counters before;
	uint64_t seed = ts_seed();
	int l, c, s, lport = relay_port(4), uport = relay_port(5);
	char la[32], ua[32], line[512], want[128];

	begin(&before);
	l = ts_listen_at("127.0.0.1", uport, 16, 0);
	snprintf(la, sizeof(la), "127.0.0.1:%d", lport);
	snprintf(ua, sizeof(ua), "127.0.0.1:%d", uport);
	example_start(&example_x, (char *const[]){"tcp-relay", la, ua, NULL});
	c = connect_retry(AF_INET, lport);
	s = ts_accept(l, 10000);
	ts_set_timeo(c, SO_RCVTIMEO, 30000);
	ts_set_timeo(s, SO_RCVTIMEO, 30000);
	ts_phase("client to server through tcp-relay");
	ts_transfer(c, s, seed, 0, up);
	ts_phase("server to client through tcp-relay");
	ts_transfer(s, c, seed ^ 1, 0, down);
	TS_SYS(shutdown(c, SHUT_WR));
	expect_eof(s, "the server after the client's shutdown");
	TS_SYS(shutdown(s, SHUT_WR));
	expect_eof(c, "the client after the server's shutdown");
	example_line(&example_x, line, sizeof(line), 20000);
	snprintf(want, sizeof(want), "spliced, %llu bytes up, %llu bytes down, end: closed by both",
		 ULL(up), ULL(down));
	TS_ASSERT(strstr(line, want), "tcp-relay printed \"%s\", want \"... %s ...\"", line, want);
	close(c);
	close(s);
	close(l);
	example_stop(&example_x);
	finish(&before, &(struct want){.total = 2, .bytes = (long long)(up + down), .eof = 2});
}

/*
 * udp-relay: datagrams of every size both ways keep their boundaries and
 * contents; the module moved them (relay_datagrams), and --idle ends it.
 */
static void t_example_udp(void)
{
	static const size_t sizes[] = {1, 0, 1472, 9000, 65000, 17};
	const size_t n = sizeof(sizes) / sizeof(sizes[0]);
	struct ts_counters before;
	struct sockaddr_in rel = {.sin_family = AF_INET};
	struct sockaddr_storage us;
	socklen_t ulen;
	uint64_t seed = ts_seed();
	long long bytes = 0;
	int cl, up, lport = relay_port(6);
	char la[32], ua[32], line[512];

	begin(&before);
	up = udp_bound(AF_INET, &us, &ulen);
	snprintf(la, sizeof(la), "127.0.0.1:%d", lport);
	snprintf(ua, sizeof(ua), "127.0.0.1:%d", ntohs(((struct sockaddr_in *)&us)->sin_port));
	example_start(&example_x, (char *const[]){"udp-relay", "--idle", "1", la, ua, NULL});
	cl = udp_bound(AF_INET, &(struct sockaddr_storage){0}, &(socklen_t){0});
	rel.sin_port = htons(lport);
	rel.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ts_sleep_ms(300); /* its socket is bound before it reads: a datagram waits there */
	TS_SYS(connect(cl, (struct sockaddr *)&rel, sizeof(rel)));
	ts_set_timeo(up, SO_RCVTIMEO, 10000);
	ts_set_timeo(cl, SO_RCVTIMEO, 10000);
	for (size_t i = 0; i < n; i++) {
		send_dgram(cl, seed + i, sizes[i]);
		if (!i) {
			/* The upstream learns the relay's address from the first one. */
			char b[2];
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			ssize_t r =
				recvfrom(up, b, sizeof(b), MSG_PEEK, (struct sockaddr *)&from, &fl);

			TS_ASSERT(r >= 0, "no first datagram at the upstream: %m");
			TS_SYS(connect(up, (struct sockaddr *)&from, fl));
		}
		recv_dgram(up, seed + i, sizes[i], "client to upstream through udp-relay");
		send_dgram(up, seed + 100 + i, sizes[n - 1 - i]);
		recv_dgram(cl, seed + 100 + i, sizes[n - 1 - i], "upstream to client");
		bytes += 2 * (long long)sizes[i];
	}
	example_line(&example_x, line, sizeof(line), 20000);
	TS_ASSERT(strstr(line, "idle"), "udp-relay printed \"%s\", want an idle end", line);
	close(cl);
	close(up);
	example_stop(&example_x);
	/* How many splices the idle end took depends on timing (one way may be spliced again). */
	TS_ASSERT(ts_counter_wait("relay_active", ts_counter(&before, "relay_active", &(bool){0}),
				  10000) == ts_counter(&before, "relay_active", &(bool){0}),
		  "relay_active did not come back after udp-relay ended");
	{
		struct ts_counters after;
		const char *bad;
		char spec[256];

		snprintf(spec, sizeof(spec),
			 "relay_datagrams=%lld relay_bytes=%lld relay_total>=2 relay_end_idle>=1 "
			 "relay_end_error=0 relay_end_drain=0 relay_end_max=0",
			 2 * (long long)n, bytes);
		ts_counters_read(&after);
		bad = ts_counters_check(&before, &after, spec);
		TS_ASSERT(!bad, "relay counters after udp-relay: %s", bad);
	}
}

/* ==== what a socket taken by a splice may no longer do ==== */

static void expect_sockopt(int want, int rc, const char *what)
{
	int e = rc < 0 ? errno : 0;

	if (e != want)
		ts_fail("%s: %s, want %s", what, ename(e), ename(want));
}

/*
 * Options that would replace or bypass the socket's protocol (kTLS, repair,
 * IPV6_ADDRFORM, a zero-copy receive), shift or stall the splice's reads
 * (SO_PEEK_OFF, SO_RCVLOWAT), or make a listener whose children inherit it
 * (listen after a disconnect) are refused; a loop (source and drain the two
 * ends of one connection) too.  Each of these crashed or corrupted a kernel
 * before it was refused.
 */
static void t_taken_socket(void)
{
	struct ts_counters before;
	struct relay r;
	int v = 0, x, y, e;
	char zc[256] = {0};
	socklen_t zl = sizeof(zc);

	begin(&before);
	relay_open(&r, AF_INET, AF_INET, false);
	do_splice(r.a, r.b, 0, 0);

	ts_phase("options of a spliced source");
	expect_sockopt(EBUSY, setsockopt(r.a, SOL_TCP, TCP_ULP, "tls", 3), "TCP_ULP tls on a");
	expect_sockopt(EBUSY, setsockopt(r.b, SOL_TCP, TCP_ULP, "tls", 3), "TCP_ULP tls on b");
	v = 1;
	expect_sockopt(EBUSY, setsockopt(r.a, SOL_TCP, TCP_REPAIR, &v, sizeof(v)),
		       "TCP_REPAIR on a");
	v = 0;
	expect_sockopt(EBUSY, setsockopt(r.a, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v)),
		       "SO_PEEK_OFF on a spliced source");
	v = 100;
	expect_sockopt(EBUSY, setsockopt(r.a, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)),
		       "SO_RCVLOWAT on a spliced source");
	expect_sockopt(EBUSY, getsockopt(r.a, SOL_TCP, TCP_ZEROCOPY_RECEIVE, zc, &zl),
		       "TCP_ZEROCOPY_RECEIVE on a spliced source");
	ping(&r, ts_seed(), 0);

	ts_phase("listen after a disconnect");
	do_unsplice(r.a);
	TS_SYS(shutdown(r.c, SHUT_WR));
	TS_ASSERT(connect(r.a, (struct sockaddr *)&(struct sockaddr){.sa_family = AF_UNSPEC},
			  sizeof(struct sockaddr)) == 0,
		  "connect(AF_UNSPEC) of a: %m");
	expect_sockopt(EADDRINUSE, listen(r.a, 4), "listen on a taken, disconnected socket");

	ts_phase("splice refused");
	relay_close(&r);
	relay_open(&r, AF_INET, AF_INET, false);
	v = 100;
	TS_SYS(setsockopt(r.a, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)));
	expect_err(EINVAL, r.a, r.b, 0, 0, "a source with SO_RCVLOWAT 100");
	v = 1;
	TS_SYS(setsockopt(r.a, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)));
	v = 0;
	TS_SYS(setsockopt(r.a, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v)));
	expect_err(EINVAL, r.a, r.b, 0, 0, "a source with SO_PEEK_OFF");
	expect_err(ELOOP, r.b, r.s, 0, 0, "the two ends of one connection (b -> s)");
	relay_close(&r);

	ts_phase("IPV6_ADDRFORM");
	x = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (x >= 0) {
		struct sockaddr_in6 m = {.sin6_family = AF_INET6};
		struct sockaddr_storage ss;
		socklen_t sl;

		close(x);
		x = udp_bound(AF_INET, &ss, &sl);
		y = TS_SYS(socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
		m.sin6_port = ((struct sockaddr_in *)&ss)->sin_port;
		inet_pton(AF_INET6, "::ffff:127.0.0.1", &m.sin6_addr);
		TS_SYS(connect(y, (struct sockaddr *)&m, sizeof(m)));
		udp_pair(AF_INET, &r.c, &r.a);
		do_splice(r.a, y, 0, 0);
		v = AF_INET;
		e = setsockopt(y, SOL_IPV6, IPV6_ADDRFORM, &v, sizeof(v));
		expect_sockopt(EBUSY, e,
			       "IPV6_ADDRFORM on a v6 drain connected to a v4-mapped peer");
		close(r.c);
		close(r.a);
		close(x);
		close(y);
	}
	finish(&before,
	       &(struct want){.total = 2, .bytes = 100, .dgrams = 0, .unsplice = 1, .close = 1});
}

static const struct ts_test tests[] = {
	{"api-errors", t_api_errors, 0},
	{"tcp-stream", t_tcp_stream, 240},
	{"tcp-stream-copy", t_tcp_stream_copy, 120},
	{"queued-first", t_queued_first, 0},
	{"bidirectional", t_bidirectional, 120},
	{"max", t_max, 0},
	{"max-exact", t_max_exact, 0},
	{"idle-timeout", t_idle_timeout, 0},
	{"eof", t_eof, 0},
	{"eof-queued", t_eof_queued, 0},
	{"eof-same-segment", t_eof_same_segment, 0},
	{"source-reset", t_source_reset, 0},
	{"drain-peer-closed", t_drain_peer_closed, 0},
	{"drain-shutdown", t_drain_shutdown, 0},
	{"back-pressure", t_back_pressure, 180},
	{"nonblocking", t_nonblocking, 120},
	{"unsplice-midstream", t_unsplice_midstream, 120},
	{"blocked-read-max", t_blocked_read_max, 0},
	{"blocked-read-unsplice", t_blocked_read_unsplice, 0},
	{"blocked-read-eof", t_blocked_read_eof, 0},
	{"close-source", t_close_source, 0},
	{"close-drain", t_close_drain, 0},
	{"udp-datagrams", t_udp_datagrams, 0},
	{"udp-max", t_udp_max, 0},
	{"udp-idle-timeout", t_udp_idle_timeout, 0},
	{"mix-tcp", t_mix_tcp, 120},
	{"mix-udp", t_mix_udp, 0},
	{"many", t_many, 180},
	{"taken-socket", t_taken_socket, 0},
	{"example-tcp", t_example_tcp, 120},
	{"example-udp", t_example_udp, 60},
};

int main(int argc, char **argv)
{
	return ts_main(argc, argv, 1600, tests, sizeof(tests) / sizeof(tests[0]));
}
