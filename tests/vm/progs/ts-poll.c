// SPDX-License-Identifier: GPL-2.0
/*
 * ts-poll: readiness of spliced sockets through poll, select and epoll (level
 * and edge triggered) equals plain TCP: EPOLLIN for ring bytes, EPOLLOUT only
 * with room in the peer's ring, EPOLLRDHUP/EPOLLHUP/EPOLLERR on teardown.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tsutil.h"

#define ALL_EVENTS (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM | POLLRDHUP | POLLPRI)

static const char *mask_str(unsigned int m)
{
	static const struct {
		unsigned int bit;
		const char *name;
	} bits[] = {
		{EPOLLIN, "IN"},	 {EPOLLPRI, "PRI"},	  {EPOLLOUT, "OUT"},
		{EPOLLERR, "ERR"},	 {EPOLLHUP, "HUP"},	  {EPOLLRDNORM, "RDNORM"},
		{EPOLLRDBAND, "RDBAND"}, {EPOLLWRNORM, "WRNORM"}, {EPOLLWRBAND, "WRBAND"},
		{EPOLLRDHUP, "RDHUP"},
	};
	static __thread char buf[128];
	size_t k = 0;

	buf[0] = 0;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (m & bits[i].bit)
			k += snprintf(buf + k, sizeof(buf) - k, "%s%s", k ? "|" : "", bits[i].name);
	if (m & ~(unsigned int)(EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDNORM |
				EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND | EPOLLRDHUP))
		snprintf(buf + k, sizeof(buf) - k, "%s%#x", k ? "|" : "", m);
	return k || m ? buf : "none";
}

/* The poll mask after things settled. */
static const char *settled_mask(int fd)
{
	ts_sleep_ms(100);
	return mask_str((unsigned short)ts_poll1(fd, ALL_EVENTS, 0));
}

static void send_at(int fd, uint64_t seed, uint64_t off, size_t len)
{
	char *buf = malloc(len);

	ts_fill(seed, off, buf, len);
	ts_write_all(fd, buf, len);
	free(buf);
}

/* Pair whose client->server direction already moved to the ring. */
static void ring_pair(struct ts_run *r, int *c, int *s)
{
	char b[16];

	ts_pair(c, s);
	send_at(*c, r->seed, 0, sizeof(b));
	send_at(*s, r->seed, 0, sizeof(b));
	ts_read_full(*s, b, sizeof(b));
	ts_read_full(*c, b, sizeof(b));
}

struct delayed {
	int fd, ms;
	uint64_t seed, off;
	size_t len;
};

static void *delayed_send(void *arg)
{
	struct delayed *d = arg;

	ts_sleep_ms(d->ms);
	send_at(d->fd, d->seed, d->off, d->len);
	return NULL;
}

static int epoll_add(int fd, unsigned int events)
{
	int ep = TS_SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event ev = {.events = events, .data.fd = fd};

	TS_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	return ep;
}

/* Events of one epoll_wait (0 on timeout). */
static unsigned int epoll_once(int ep, int ms)
{
	struct epoll_event ev;
	int n;

	do
		n = epoll_wait(ep, &ev, 1, ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		ts_fail("epoll_wait: %m");
	return n ? ev.events : 0;
}

static void drain(int fd, uint64_t seed, uint64_t off, uint64_t len)
{
	struct ts_rng g = {seed};

	ts_recv_stream(fd, seed, off, len, 65536, &g);
}

/* ---- readable ---- */

static void scen_poll_in(struct ts_run *r)
{
	bool use_select = *(bool *)r->arg;
	struct delayed d;
	unsigned long t;
	int c, s;

	ring_pair(r, &c, &s);
	d = (struct delayed){c, 200, r->seed, 16, 1000};
	t = ts_spawn(delayed_send, &d);
	if (use_select) {
		fd_set rd;
		struct timeval tv = {5, 0};
		int n;

		FD_ZERO(&rd);
		FD_SET(s, &rd);
		n = select(s + 1, &rd, NULL, NULL, &tv);
		ts_note("select for reading: %d, readable %d", n, n > 0 && FD_ISSET(s, &rd));
	} else {
		ts_note("poll for POLLIN: %s", mask_str((unsigned short)ts_poll1(s, POLLIN, 5000)));
	}
	ts_join(t);
	ts_note("settled: %s", settled_mask(s));
	drain(s, r->seed, 16, 1000);
	ts_note("drained: %s", settled_mask(s));
	close(c);
	close(s);
}

static void t_poll_in(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_poll_in, .arg = &(bool){false}});
}

static void t_select_in(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_poll_in, .arg = &(bool){true}});
}

static void scen_epoll_in(struct ts_run *r)
{
	bool et = *(bool *)r->arg;
	char buf[600];
	int c, s, ep;

	ring_pair(r, &c, &s);
	ep = epoll_add(s, EPOLLIN | EPOLLRDHUP | (et ? EPOLLET : 0));
	ts_note("idle: %s", mask_str(epoll_once(ep, 100)));
	send_at(c, r->seed, 16, 1000);
	ts_note("1000 written: %s", mask_str(epoll_once(ep, 5000)));
	ts_read_full(s, buf, 500);
	ts_note("after reading 500: %s", mask_str(epoll_once(ep, 200)));
	send_at(c, r->seed, 1016, 10);
	ts_note("10 more written: %s", mask_str(epoll_once(ep, 5000)));
	ts_read_full(s, buf, 510);
	ts_note("drained: %s", mask_str(epoll_once(ep, 200)));
	shutdown(c, SHUT_WR);
	ts_note("peer shut down: %s", mask_str(epoll_once(ep, 5000)));
	close(ep);
	close(c);
	close(s);
}

static void t_epoll_lt_in(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_epoll_in, .arg = &(bool){false}});
}

static void t_epoll_et_in(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_epoll_in, .arg = &(bool){true}});
}

/* An edge-triggered reader that reads in small pieces until EAGAIN never loses an edge. */
struct stream_arg {
	int fd;
	uint64_t seed, len;
};

static void *random_writer(void *arg)
{
	struct stream_arg *a = arg;
	struct ts_rng g = {a->seed ^ 99};

	ts_send_stream(a->fd, a->seed, 0, a->len, 20000, &g);
	return NULL;
}

static void scen_et_partial(struct ts_run *r)
{
	struct stream_arg a;
	char buf[100];
	uint64_t got = 0;
	unsigned long t;
	int c, s, ep;

	ring_pair(r, &c, &s);
	ts_set_nonblock(s, true);
	ep = epoll_add(s, EPOLLIN | EPOLLET);
	a = (struct stream_arg){c, r->seed ^ 5, 400000};
	t = ts_spawn(random_writer, &a);
	while (got < a.len) {
		unsigned int ev = epoll_once(ep, 10000);

		if (!ev)
			ts_fail("edge-triggered reader: no EPOLLIN for 10 s with %llu of %llu "
				"bytes "
				"read, FIONREAD %d",
				(unsigned long long)got, (unsigned long long)a.len, ts_inq(s));
		for (;;) {
			ssize_t n = recv(s, buf, sizeof(buf), 0);

			if (n < 0 && errno == EAGAIN)
				break;
			if (n <= 0)
				ts_fail("recv: %zd %m", n);
			if (ts_check(a.seed, got, buf, n) >= 0)
				ts_fail("byte %llu corrupt", (unsigned long long)got);
			got += n;
		}
	}
	ts_join(t);
	ts_note("edge-triggered reader got %llu bytes", (unsigned long long)got);
	close(ep);
	close(c);
	close(s);
}

static void t_epoll_et_partial(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_et_partial});
}

/* ---- writable ---- */

static uint64_t fill_path(int fd, uint64_t seed)
{
	uint64_t n = ts_fill_until_eagain(fd, seed, 0);

	ts_sleep_ms(150);
	return n + ts_fill_until_eagain(fd, seed, n);
}

static void scen_poll_out(struct ts_run *r)
{
	uint64_t filled;
	int c, s;

	ring_pair(r, &c, &s);
	ts_note("idle: %s", mask_str((unsigned short)ts_poll1(c, POLLOUT, 1000)));
	filled = fill_path(c, r->seed);
	ts_note("full: %s", mask_str((unsigned short)ts_poll1(c, POLLOUT, 300)));
	drain(s, r->seed, 0, filled);
	ts_note("drained: %s", mask_str((unsigned short)ts_poll1(c, POLLOUT, 5000)));
	close(c);
	close(s);
}

static void t_poll_out(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_poll_out});
}

/*
 * A level-triggered EPOLLOUT waiter on a full path: every wake-up after which
 * a send still gets EAGAIN is spurious (a busy loop in real servers).
 */
static void scen_lt_out_wakeups(struct ts_run *r)
{
	int c, s, ep, spurious = 0, real = 0;
	uint64_t filled;
	int64_t end;
	char b = 0;

	ring_pair(r, &c, &s);
	filled = fill_path(c, r->seed);
	ep = epoll_add(c, EPOLLOUT);
	end = ts_now_us() + 500000;
	while (ts_now_us() < end) {
		int left = (int)((end - ts_now_us()) / 1000);
		unsigned int ev = epoll_once(ep, left > 0 ? left : 0);

		if (!ev)
			continue;
		ts_fill(r->seed, filled, &b, 1);
		if (send(c, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) {
			real++;
			filled++;
			filled += ts_fill_until_eagain(c, r->seed, filled);
		} else if (errno == EAGAIN) {
			spurious++;
			if (spurious > 1000)
				break;
		} else {
			ts_fail("send: %m");
		}
	}
	ts_log("%d wake-ups with room, %d spurious", real, spurious);
	ts_note("spurious EPOLLOUT wake-ups while full: %d", spurious);
	TS_ASSERT(spurious == 0,
		  "%d level-triggered EPOLLOUT wake-ups in 0.5 s while the path "
		  "stayed full (send: EAGAIN)",
		  spurious);
	drain(s, r->seed, 0, filled);
	ts_note("drained: %s", mask_str(epoll_once(ep, 5000)));
	close(ep);
	close(c);
	close(s);
}

static void t_epoll_lt_out_full(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_lt_out_wakeups});
}

/*
 * A writer that sends only when poll says POLLOUT, small messages, and a
 * reader that does not read: TCP lets it queue megabytes (its send buffer
 * grows), so the ring must grow too rather than report "full" at 3/4 of its
 * first 4 KiB (found by ts-stress: both ends of a connection waited for good).
 */
#define UNREAD_TARGET (3u << 19) /* 1.5 MiB: more than a 1 MiB ring */

static void scen_poll_out_unread(struct ts_run *r)
{
	uint64_t queued = 0;
	char buf[256];
	int c, s, eagain = 0;

	ring_pair(r, &c, &s);
	while (queued < UNREAD_TARGET) {
		ssize_t n;

		if (!(ts_poll1(c, POLLOUT, 2000) & POLLOUT))
			break;
		ts_fill(r->seed, queued, buf, sizeof(buf));
		n = send(c, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			queued += (uint64_t)n;
		else if (n < 0 && errno == EAGAIN)
			eagain++;
		else
			ts_fail("send: %m");
	}
	ts_log("queued %" PRIu64 " bytes unread (%d EAGAIN after POLLOUT)", queued, eagain);
	ts_note("POLLOUT-driven writer queued %s1.5 MiB with nothing read",
		queued >= UNREAD_TARGET ? "" : "less than ");
	TS_ASSERT(queued >= UNREAD_TARGET,
		  "poll reported no POLLOUT for 2 s after %" PRIu64 " bytes queued", queued);
	drain(s, r->seed, 0, queued);
	close(c);
	close(s);
}

static void t_poll_out_unread(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_poll_out_unread});
}

/* A non-blocking writer driven by level-triggered EPOLLOUT, with a slow reader. */
struct slow_reader {
	int fd;
	uint64_t seed, len;
};

static void *slow_read(void *arg)
{
	struct slow_reader *a = arg;
	char *buf = malloc(8192);
	uint64_t got = 0;

	while (got < a->len) {
		ssize_t n = recv(a->fd, buf, 8192, 0);

		if (n <= 0)
			ts_fail("slow reader: recv %zd at %llu: %m", n, (unsigned long long)got);
		if (ts_check(a->seed, got, buf, n) >= 0)
			ts_fail("slow reader: byte %llu corrupt", (unsigned long long)got);
		got += n;
		if (got % 65536 < 8192)
			ts_sleep_ms(5);
	}
	free(buf);
	return NULL;
}

static void scen_lt_out_writer(struct ts_run *r)
{
	struct slow_reader rd;
	char *buf = malloc(65536);
	uint64_t off = 0;
	int c, s, ep, spurious = 0;
	unsigned long t;

	ts_pair(&c, &s);
	ts_set_nonblock(c, true);
	ep = epoll_add(c, EPOLLOUT);
	rd = (struct slow_reader){s, r->seed, 2u << 20};
	t = ts_spawn(slow_read, &rd);
	while (off < rd.len) {
		size_t n = rd.len - off < 65536 ? rd.len - off : 65536;
		ssize_t k;

		if (!(epoll_once(ep, 10000) & EPOLLOUT))
			ts_fail("no EPOLLOUT for 10 s at %llu bytes", (unsigned long long)off);
		ts_fill(r->seed, off, buf, n);
		k = send(c, buf, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EAGAIN) {
			spurious++;
			continue;
		}
		if (k <= 0)
			ts_fail("send: %m");
		off += k;
	}
	ts_join(t);
	ts_note("writer done, EPOLLOUT then EAGAIN: %d", spurious);
	TS_ASSERT(spurious == 0, "%d EPOLLOUT reports followed by EAGAIN", spurious);
	free(buf);
	close(ep);
	close(c);
	close(s);
}

static void t_epoll_lt_out_writer(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_lt_out_writer});
}

static void scen_et_out(struct ts_run *r)
{
	uint64_t filled;
	int c, s, ep;

	ring_pair(r, &c, &s);
	ep = epoll_add(c, EPOLLOUT | EPOLLET);
	ts_note("initial: %s", mask_str(epoll_once(ep, 1000)));
	filled = fill_path(c, r->seed);
	ts_note("full: %s", mask_str(epoll_once(ep, 300)));
	drain(s, r->seed, 0, filled);
	ts_note("drained: %s", mask_str(epoll_once(ep, 5000)));
	close(ep);
	close(c);
	close(s);
}

static void t_epoll_et_out(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_et_out});
}

/* ---- wake-ups ---- */

#define RR_ROUNDS 400

/* Voluntary context switches of the calling thread: one per sleep. */
static long thread_sleeps(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru))
		ts_fail("getrusage: %m");
	return ru.ru_nvcsw;
}

static void *echo_rounds(void *arg)
{
	int fd = *(int *)arg;
	long before = thread_sleeps();
	char b;

	for (int i = 0; i < RR_ROUNDS; i++) {
		ts_read_full(fd, &b, 1);
		if (ts_write_all(fd, &b, 1) != 1)
			ts_fail("echo write: %m");
	}
	return (void *)(thread_sleeps() - before);
}

/*
 * Request/response: each end blocks once per round trip, waiting for the
 * other.  A reader must not be woken by its own send's progress on the peer
 * (a write-space wake-up nobody asked for): that would double the sleeps.
 */
static void scen_rr_wakeups(struct ts_run *r)
{
	long cli, srv, before;
	unsigned long t;
	int c, s;
	char b = 'x';

	ts_pair(&c, &s);
	t = ts_spawn(echo_rounds, &s);
	before = thread_sleeps();
	for (int i = 0; i < RR_ROUNDS; i++) {
		if (ts_write_all(c, &b, 1) != 1)
			ts_fail("request write: %m");
		ts_read_full(c, &b, 1);
	}
	cli = thread_sleeps() - before;
	srv = (long)ts_join(t);
	ts_log("%s: sleeps per round trip: client %.2f, server %.2f", r->label,
	       (double)cli / RR_ROUNDS, (double)srv / RR_ROUNDS);
	/* A quarter over one allows for preemption and timer noise. */
	ts_note("client sleeps at most ~once per round trip: %s",
		cli <= RR_ROUNDS * 5 / 4 ? "yes" : "no");
	ts_note("server sleeps at most ~once per round trip: %s",
		srv <= RR_ROUNDS * 5 / 4 ? "yes" : "no");
	close(c);
	close(s);
}

static void t_rr_wakeups(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_rr_wakeups});
}

/* ---- hang-up and errors ---- */

static void scen_rdhup(struct ts_run *r)
{
	char buf[16];
	int c, s, ep;

	ring_pair(r, &c, &s);
	ep = epoll_add(s, EPOLLIN | EPOLLRDHUP | EPOLLET);
	send_at(c, r->seed, 16, 3000);
	ts_note("data: %s", mask_str(epoll_once(ep, 5000)));
	shutdown(c, SHUT_WR);
	ts_note("peer SHUT_WR: %s", mask_str(epoll_once(ep, 5000)));
	ts_note("mask: %s", settled_mask(s));
	drain(s, r->seed, 16, 3000);
	ts_note("drained: %s, recv %zd", settled_mask(s), recv(s, buf, sizeof(buf), 0));
	send_at(s, r->seed, 16, 100);
	drain(c, r->seed, 16, 100);
	ts_note("other direction still works");
	shutdown(s, SHUT_WR);
	ts_note("both shut down: %s", settled_mask(s));
	ts_note("peer: %s", settled_mask(c));
	close(ep);
	close(c);
	close(s);
}

static void t_rdhup(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_rdhup});
}

static void scen_hup(struct ts_run *r)
{
	int c, s, ep;

	ring_pair(r, &c, &s);
	ep = epoll_add(s, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
	send_at(c, r->seed, 16, 3000); /* fits the smallest ring */
	close(c);
	ts_note("peer wrote and closed: %s", settled_mask(s));
	ts_note("epoll: %s", mask_str(epoll_once(ep, 1000)));
	drain(s, r->seed, 16, 3000);
	ts_note("drained: %s", settled_mask(s));
	shutdown(s, SHUT_WR);
	ts_note("own SHUT_WR: %s", settled_mask(s));
	close(ep);
	close(s);
}

static void t_hup(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_hup});
}

static void scen_err(struct ts_run *r)
{
	struct linger lg = {1, 0};
	int c, s, ep, e = 0;
	socklen_t el = sizeof(e);

	ring_pair(r, &c, &s);
	ep = epoll_add(s, EPOLLIN | EPOLLRDHUP);
	TS_SYS(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	close(c);
	ts_note("peer reset: %s", mask_str(epoll_once(ep, 5000)));
	ts_note("mask: %s", settled_mask(s));
	TS_SYS(getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el));
	ts_note("SO_ERROR %s", strerrorname_np(e) ? strerrorname_np(e) : "0");
	ts_note("after SO_ERROR: %s", settled_mask(s));
	close(ep);
	close(s);
}

static void t_err(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_err});
}

static const struct ts_test tests[] = {
	{"poll-in", t_poll_in, 0},
	{"select-in", t_select_in, 0},
	{"epoll-lt-in", t_epoll_lt_in, 0},
	{"epoll-et-in", t_epoll_et_in, 0},
	{"epoll-et-partial", t_epoll_et_partial, 0},
	{"poll-out", t_poll_out, 0},
	{"epoll-lt-out-full", t_epoll_lt_out_full, 0},
	{"poll-out-unread", t_poll_out_unread, 0},
	{"epoll-lt-out-writer", t_epoll_lt_out_writer, 0},
	{"epoll-et-out", t_epoll_et_out, 0},
	{"rr-wakeups", t_rr_wakeups, 0},
	{"rdhup", t_rdhup, 0},
	{"hup", t_hup, 0},
	{"err", t_err, 0},
};

int main(int argc, char **argv)
{
	return ts_main(argc, argv, 400, tests, sizeof(tests) / sizeof(tests[0]));
}
