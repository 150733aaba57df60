// SPDX-License-Identifier: GPL-2.0
/*
 * ts-semantics: flags, socket options, ioctls, signals and the zero-copy-ish
 * system calls behave on a spliced socket exactly as over plain TCP.  Each
 * test is differential: the same scenario over a plain port first.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tsutil.h"

static const char *err_name(int e)
{
	switch (e) {
	case 0:
		return "ok";
	case EAGAIN:
		return "EAGAIN";
	case EINTR:
		return "EINTR";
	case EFAULT:
		return "EFAULT";
	case EPIPE:
		return "EPIPE";
	case ECONNRESET:
		return "ECONNRESET";
	case EINVAL:
		return "EINVAL";
	case ENOTCONN:
		return "ENOTCONN";
	case EOPNOTSUPP:
		return "EOPNOTSUPP";
	default:
		return strerrorname_np(e) ? strerrorname_np(e) : "E?";
	}
}

/* "n=123" or "-1 EAGAIN" */
static const char *res(ssize_t n, int e)
{
	static __thread char buf[64];

	if (n >= 0)
		snprintf(buf, sizeof(buf), "n=%zd", n);
	else
		snprintf(buf, sizeof(buf), "-1 %s", err_name(e));
	return buf;
}

static void send_stream_at(int fd, uint64_t seed, uint64_t off, size_t len)
{
	char *buf = malloc(len);

	ts_fill(seed, off, buf, len);
	ts_write_all(fd, buf, len);
	free(buf);
}

/* Waits until `n` bytes are readable (startup TCP and ring alike), then lets things settle. */
static void wait_inq(int fd, int n)
{
	int64_t end = ts_now_us() + 5000000;

	while (ts_inq(fd) < n) {
		if (ts_now_us() > end)
			ts_fail("FIONREAD stays at %d, %d bytes were sent", ts_inq(fd), n);
		ts_sleep_ms(5);
	}
}

/* Waits until the socket polls readable, up to 5 s. */
static void wait_readable(int fd)
{
	if (!(ts_poll1(fd, POLLIN, 5000) & POLLIN))
		ts_fail("socket not readable 5 s after the peer wrote");
	ts_sleep_ms(50);
}

/* ---- a call run in a thread, to be interrupted or to block ---- */

struct call {
	int fd;
	bool is_send;
	int flags;
	size_t len;
	uint64_t seed, off;
	char *buf;
	ssize_t ret;
	int err;
	int64_t us;
	atomic_bool done;
};

static void *call_thread(void *arg)
{
	struct call *c = arg;
	int64_t t0 = ts_now_us();

	if (c->is_send) {
		ts_fill(c->seed, c->off, c->buf, c->len);
		c->ret = send(c->fd, c->buf, c->len, c->flags | MSG_NOSIGNAL);
	} else {
		c->ret = recv(c->fd, c->buf, c->len, c->flags);
	}
	c->err = c->ret < 0 ? errno : 0;
	c->us = ts_now_us() - t0;
	atomic_store(&c->done, true);
	return NULL;
}

static unsigned long start_call(struct call *c)
{
	c->buf = malloc(c->len ? c->len : 1);
	atomic_store(&c->done, false);
	return ts_spawn(call_thread, c);
}

static atomic_int sig_count;

static void on_sig(int sig)
{
	(void)sig;
	atomic_fetch_add(&sig_count, 1);
}

static void set_handler(int sig, bool restart)
{
	struct sigaction sa = {.sa_handler = on_sig, .sa_flags = restart ? SA_RESTART : 0};

	sigemptyset(&sa.sa_mask);
	TS_SYS(sigaction(sig, &sa, NULL));
	atomic_store(&sig_count, 0);
}

/* Fills the path from fd to its peer, twice with a pause, so late acks are absorbed. */
static uint64_t fill_path(int fd, uint64_t seed)
{
	uint64_t n = ts_fill_until_eagain(fd, seed, 0);

	ts_sleep_ms(150);
	return n + ts_fill_until_eagain(fd, seed, n);
}

/* ---- MSG_PEEK ---- */

static void scen_peek(struct ts_run *r)
{
	char buf[4096], buf2[4096];
	ssize_t n;
	int c, s;

	ts_pair(&c, &s);
	errno = 0;
	n = recv(s, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	ts_note("peek nonblocking, empty: %s", res(n, errno));
	send_stream_at(c, r->seed, 0, 1000);
	wait_readable(s);
	n = recv(s, buf, 500, MSG_PEEK | MSG_DONTWAIT);
	ts_note("peek nonblocking 500: %s", res(n, errno));
	TS_ASSERT(n == 500 && ts_check(r->seed, 0, buf, 500) < 0, "peek returned wrong bytes");
	ts_set_timeo(s, SO_RCVTIMEO, 3000);
	n = recv(s, buf, sizeof(buf), MSG_PEEK);
	ts_note("peek blocking: %s", res(n, errno));
	TS_ASSERT(n > 0 && ts_check(r->seed, 0, buf, n) < 0, "peek returned wrong bytes");
	n = recv(s, buf2, sizeof(buf2), 0);
	ts_note("recv after peek: %s", res(n, errno));
	TS_ASSERT(n == 1000 && ts_check(r->seed, 0, buf2, n) < 0, "recv after peek: wrong bytes");
	n = recv(s, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	ts_note("peek nonblocking, drained: %s", res(n, errno));
	close(c);
	close(s);
}

static void t_peek(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_peek});
}

/* A blocking peek already waiting when the bytes arrive. */
static void scen_peek_wait(struct ts_run *r)
{
	struct call k;
	unsigned long t;
	int c, s;

	ts_pair(&c, &s);
	send_stream_at(c, r->seed, 0, 10); /* hand the direction over to the ring */
	wait_inq(s, 10);
	ts_read_full(s, (char[10]){0}, 10);
	ts_set_timeo(s, SO_RCVTIMEO, 5000);
	k = (struct call){.fd = s, .flags = MSG_PEEK, .len = 4096};
	t = start_call(&k);
	ts_sleep_ms(200);
	send_stream_at(c, r->seed, 10, 1000);
	ts_join(t);
	ts_note("blocking peek woken by data: %s", res(k.ret, k.err));
	TS_ASSERT(k.ret > 0 && ts_check(r->seed, 10, k.buf, k.ret) < 0, "peek: wrong bytes");
	free(k.buf);
	close(c);
	close(s);
}

static void t_peek_wait(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_peek_wait});
}

/* SO_PEEK_OFF: successive peeks walk the stream, reads move the offset back. */
static long locate(uint64_t seed, const char *buf, ssize_t n)
{
	for (long off = 0; off < 100000; off++)
		if (ts_check(seed, off, buf, n) < 0)
			return off;
	return -1;
}

static void scen_peek_off(struct ts_run *r)
{
	char buf[100];
	ssize_t n;
	int c, s;

	ts_pair(&c, &s);
	send_stream_at(c, r->seed, 0, 3000);
	wait_inq(s, 3000);
	if (setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &(int){0}, sizeof(int)) < 0) {
		ts_note("SO_PEEK_OFF: %s", err_name(errno));
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		n = recv(s, buf, sizeof(buf), MSG_PEEK);
		ts_note("peek %d: %s at stream offset %ld", i, res(n, errno),
			n > 0 ? locate(r->seed, buf, n) : -1);
	}
	n = recv(s, buf, 50, 0);
	ts_note("read: %s at stream offset %ld", res(n, errno),
		n > 0 ? locate(r->seed, buf, n) : -1);
	n = recv(s, buf, sizeof(buf), MSG_PEEK);
	ts_note("peek after read: %s at stream offset %ld", res(n, errno),
		n > 0 ? locate(r->seed, buf, n) : -1);
out:
	close(c);
	close(s);
}

static void t_peek_off(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_peek_off});
}

/* SO_PEEK_OFF past every byte, the peer shut down: EOF, as over TCP. */
static void scen_peek_off_eof(struct ts_run *r)
{
	char buf[200];
	ssize_t n;
	int c, s;

	ts_pair(&c, &s);
	send_stream_at(c, r->seed, 0, 100);
	shutdown(c, SHUT_WR);
	TS_SYS(setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &(int){0}, sizeof(int)));
	n = recv(s, buf, 100, MSG_PEEK | MSG_WAITALL);
	ts_note("peek: %s", res(n, errno));
	n = recv(s, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	ts_note("peek past the data, peer shut down: %s", res(n, errno));
	n = recv(s, buf, sizeof(buf), MSG_PEEK);
	ts_note("blocking peek past the data: %s", res(n, errno));
	n = recv(s, buf, sizeof(buf), MSG_WAITALL);
	ts_note("read: %s", res(n, errno));
	close(c);
	close(s);
}

static void t_peek_off_eof(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_peek_off_eof});
}

struct peek_wait {
	int fd;
	ssize_t n;
	double cpu_s, wall_s;
};

static double thread_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void *peek_waiter(void *arg)
{
	struct peek_wait *w = arg;
	double cpu0 = thread_cpu_s();
	int64_t t0 = ts_now_us();
	char buf[200];

	w->n = recv(w->fd, buf, sizeof(buf), MSG_PEEK);
	w->cpu_s = thread_cpu_s() - cpu0;
	w->wall_s = (double)(ts_now_us() - t0) / 1e6;
	return NULL;
}

/*
 * A blocking peek whose SO_PEEK_OFF is past every byte there sleeps until
 * new bytes come; the ones before its offset must not wake it over and over.
 */
static void scen_peek_off_wait(struct ts_run *r)
{
	struct peek_wait w = {0};
	char buf[100];
	unsigned long t;
	int c, s;

	ts_pair(&c, &s);
	send_stream_at(c, r->seed, 0, 100);
	TS_SYS(setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &(int){0}, sizeof(int)));
	ts_note("peek: %s", res(recv(s, buf, 100, MSG_PEEK | MSG_WAITALL), errno));
	w.fd = s;
	t = ts_spawn(peek_waiter, &w);
	ts_sleep_ms(500);
	send_stream_at(c, r->seed, 100, 50);
	ts_join(t);
	ts_log("%s: the peek waited %.2f s using %.2f s of CPU", r->label, w.wall_s, w.cpu_s);
	ts_note("peek past the data, then 50 more bytes: n=%zd", w.n);
	ts_note("it slept while it waited: %s", w.cpu_s < w.wall_s / 2 ? "yes" : "no");
	close(c);
	close(s);
}

static void t_peek_off_wait(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_peek_off_wait});
}

/*
 * Bytes queued on both sides of the handoff: 1000 over TCP (start-up), 2000
 * in the ring.  A peek and a read of 4096 see all 3000 at once, as over TCP
 * where both are just queued segments.
 */
static void scen_boundary(struct ts_run *r)
{
	int lfd = ts_listen_at(ts_loopback(r->family), r->port, 16, 5);
	int c = ts_connect(r->family, r->port), s;
	char buf[4096];
	ssize_t n;

	send_stream_at(c, r->seed, 0, 1000);
	s = ts_accept(lfd, 10000);
	close(lfd);
	ts_expect_spliced(c);
	ts_expect_spliced(s);
	wait_inq(s, 1000);
	TS_ASSERT(recv(s, buf, 1, MSG_PEEK) == 1, "peek: %m");
	send_stream_at(c, r->seed, 1000, 2000);
	wait_inq(s, 3000);
	n = recv(s, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	ts_note("peek 4096 over 1000 TCP + 2000 ring bytes: %s", res(n, errno));
	TS_ASSERT(n > 0 && ts_check(r->seed, 0, buf, n) < 0, "peek: wrong bytes");
	n = recv(s, buf, sizeof(buf), 0);
	ts_note("recv 4096: %s", res(n, errno));
	TS_ASSERT(n > 0 && ts_check(r->seed, 0, buf, n) < 0, "recv: wrong bytes");
	close(c);
	close(s);
}

static void t_boundary(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_boundary});
}

/* ---- MSG_WAITALL over bytes that arrive in pieces ---- */

struct trickle {
	int fd;
	uint64_t seed;
	int pieces, size, gap_ms;
};

static void *trickle_writer(void *arg)
{
	struct trickle *t = arg;

	for (int i = 0; i < t->pieces; i++) {
		ts_sleep_ms(t->gap_ms);
		send_stream_at(t->fd, t->seed, (uint64_t)i * t->size, t->size);
	}
	return NULL;
}

static void scen_waitall(struct ts_run *r)
{
	struct trickle tr;
	char buf[10000];
	unsigned long t;
	ssize_t n;
	int c, s;

	ts_pair(&c, &s);
	tr = (struct trickle){c, r->seed, 10, 1000, 30};
	t = ts_spawn(trickle_writer, &tr);
	n = recv(s, buf, sizeof(buf), MSG_WAITALL);
	ts_note("waitall 10000 over 10 pieces: %s", res(n, errno));
	TS_ASSERT(n == 10000 && ts_check(r->seed, 0, buf, n) < 0, "MSG_WAITALL: %s", res(n, errno));
	ts_join(t);
	close(c);
	close(s);
}

static void t_waitall(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_waitall});
}

/* ---- timeouts ---- */

static void scen_rcvtimeo(struct ts_run *r)
{
	char buf[100];
	int64_t t0;
	ssize_t n;
	int c, s;

	ts_pair(&c, &s);
	send_stream_at(c, r->seed, 0, 10);
	wait_inq(s, 10);
	ts_read_full(s, buf, 10);
	ts_set_timeo(s, SO_RCVTIMEO, 200);
	t0 = ts_now_us();
	n = recv(s, buf, sizeof(buf), 0);
	ts_note("recv with SO_RCVTIMEO, no data: %s, waited >= 150 ms: %d", res(n, errno),
		ts_now_us() - t0 >= 150000);
	send_stream_at(c, r->seed, 10, 50);
	n = recv(s, buf, sizeof(buf), MSG_WAITALL);
	ts_note("recv with SO_RCVTIMEO, data: %s", res(n, errno));
	close(c);
	close(s);
}

static void t_rcvtimeo(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_rcvtimeo});
}

static void scen_sndtimeo(struct ts_run *r)
{
	char *buf = malloc(65536);
	uint64_t filled;
	int64_t t0;
	ssize_t n;
	int c, s;

	ts_pair(&c, &s);
	filled = fill_path(c, r->seed);
	ts_set_timeo(c, SO_SNDTIMEO, 200);
	ts_fill(r->seed, filled, buf, 65536);
	t0 = ts_now_us();
	n = send(c, buf, 65536, MSG_NOSIGNAL);
	ts_note("send with SO_SNDTIMEO, path full: %s, waited >= 150 ms: %d", res(n, errno),
		ts_now_us() - t0 >= 150000);
	if (n > 0)
		filled += n;
	ts_recv_stream(s, r->seed, 0, filled, 65536, &(struct ts_rng){1});
	free(buf);
	close(c);
	close(s);
}

static void t_sndtimeo(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_sndtimeo});
}

/* ---- signals: EINTR without SA_RESTART, restart with it ---- */

static void scen_signal_recv(struct ts_run *r)
{
	bool restart = *(bool *)r->arg;
	struct call k;
	unsigned long t;
	int c, s;

	set_handler(SIGUSR1, restart);
	ts_pair(&c, &s);
	send_stream_at(c, r->seed, 0, 10);
	wait_inq(s, 10);
	ts_read_full(s, (char[10]){0}, 10);
	k = (struct call){.fd = s, .len = 4096};
	t = start_call(&k);
	ts_sleep_ms(200);
	pthread_kill((pthread_t)t, SIGUSR1);
	ts_sleep_ms(200);
	ts_note("after the signal: returned %d, signals handled %d", atomic_load(&k.done),
		atomic_load(&sig_count));
	if (!atomic_load(&k.done))
		send_stream_at(c, r->seed, 10, 1000);
	ts_join(t);
	ts_note("blocking recv: %s", res(k.ret, k.err));
	free(k.buf);
	close(c);
	close(s);
}

static void t_eintr_recv(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_signal_recv, .arg = &(bool){false}});
}

static void t_restart_recv(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_signal_recv, .arg = &(bool){true}});
}

static void scen_signal_send(struct ts_run *r)
{
	bool restart = *(bool *)r->arg;
	uint64_t filled;
	struct call k;
	unsigned long t;
	int c, s;

	set_handler(SIGUSR1, restart);
	ts_pair(&c, &s);
	filled = fill_path(c, r->seed);
	k = (struct call){.fd = c, .is_send = true, .len = 1000, .seed = r->seed, .off = filled};
	t = start_call(&k);
	ts_sleep_ms(200);
	ts_note("blocked with the path full: %d", !atomic_load(&k.done));
	pthread_kill((pthread_t)t, SIGUSR1);
	ts_sleep_ms(200);
	ts_note("after the signal: returned %d, signals handled %d", atomic_load(&k.done),
		atomic_load(&sig_count));
	/* Drain: a restarted send completes once there is room. */
	struct ts_rng g = {r->seed};

	ts_recv_stream(s, r->seed, 0, filled, 65536, &g);
	ts_join(t);
	/* Interrupted before copying anything: EINTR; after a part: that count. */
	if (k.ret > 0 && k.ret < (ssize_t)k.len)
		ts_note("blocking send: interrupted after part");
	else
		ts_note("blocking send: %s", res(k.ret, k.err));
	if (k.ret > 0)
		ts_recv_stream(s, r->seed, filled, k.ret, 65536, &g);
	free(k.buf);
	close(c);
	close(s);
}

static void t_eintr_send(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_signal_send, .arg = &(bool){false}});
}

static void t_restart_send(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_signal_send, .arg = &(bool){true}});
}

/* ---- SO_RCVLOWAT: neither poll nor recv report fewer bytes ---- */

static void scen_rcvlowat(struct ts_run *r)
{
	struct call k;
	unsigned long t;
	int c, s;

	ts_pair(&c, &s);
	ts_set_int(s, SOL_SOCKET, SO_RCVLOWAT, 1000);
	send_stream_at(c, r->seed, 0, 500);
	wait_inq(s, 500);
	ts_note("poll with 500 of lowat 1000: %#x", ts_poll1(s, POLLIN, 300));
	send_stream_at(c, r->seed, 500, 600);
	wait_inq(s, 1100);
	ts_note("poll with 1100 of lowat 1000: %#x", ts_poll1(s, POLLIN, 3000));
	k = (struct call){.fd = s, .len = 4096};
	t = start_call(&k);
	ts_join(t);
	ts_note("recv: %s", res(k.ret, k.err));
	free(k.buf);
	/*
	 * A blocking recv waits until the low-water mark is reached.  (TCP
	 * compares new data alone with the mark once the reader holds some
	 * bytes, so the second write alone must exceed it.)
	 */
	send_stream_at(c, r->seed, 1100, 400);
	wait_inq(s, 400);
	k = (struct call){.fd = s, .len = 4096};
	t = start_call(&k);
	ts_sleep_ms(300);
	ts_note("recv with 400 of lowat 1000 returned: %d", atomic_load(&k.done));
	send_stream_at(c, r->seed, 1500, 2000);
	ts_join(t);
	ts_note("recv after 2400: %s", res(k.ret, k.err));
	TS_ASSERT(k.ret > 0 && ts_check(r->seed, 1100, k.buf, k.ret) < 0, "recv: wrong bytes");
	free(k.buf);
	close(c);
	close(s);
}

static void t_rcvlowat(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_rcvlowat});
}

/* ---- queue ioctls ---- */

static void scen_fionread(struct ts_run *r)
{
	int lfd = ts_listen_at(ts_loopback(r->family), r->port, 16, 5);
	int c = ts_connect(r->family, r->port), s, v;
	char buf[1000];

	/*
	 * 1000 start-up bytes (TCP_DEFER_ACCEPT: before the pair exists), then,
	 * once the server entered recvmsg (a peek), 2000 ring bytes.
	 */
	send_stream_at(c, r->seed, 0, 1000);
	s = ts_accept(lfd, 10000);
	close(lfd);
	ts_expect_spliced(c);
	ts_expect_spliced(s);
	wait_inq(s, 1000);
	TS_ASSERT(recv(s, buf, 1, MSG_PEEK) == 1, "peek: %m");
	send_stream_at(c, r->seed, 1000, 2000);
	wait_inq(s, 3000);
	ts_sleep_ms(50);
	ts_note("FIONREAD %d", ts_inq(s));
	TS_SYS(ioctl(s, SIOCINQ, &v));
	ts_note("SIOCINQ %d", v);
	ts_read_full(s, buf, 1000);
	ts_note("after reading 1000: FIONREAD %d", ts_inq(s));
	ts_read_full(s, buf, 1000);
	ts_read_full(s, buf, 1000);
	ts_note("drained: FIONREAD %d", ts_inq(s));
	close(c);
	close(s);
}

static void t_fionread(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_fionread});
}

/*
 * SIOCOUTQ counts the bytes the peer has not read yet.  Over plain TCP on
 * loopback they are acknowledged at once, so it reads 0 there: the decided
 * spliced semantics differ, and this test is not differential.
 */
static void scen_outq(struct ts_run *r)
{
	char buf[3000];
	int c, s, v;

	ts_pair(&c, &s);
	send_stream_at(c, r->seed, 0, 3000);
	wait_inq(s, 3000);
	ts_sleep_ms(100);
	TS_SYS(ioctl(c, SIOCOUTQ, &v));
	if (r->splice)
		TS_ASSERT(v == 3000, "SIOCOUTQ %d with 3000 bytes unread by the peer", v);
	else
		TS_ASSERT(v == 0, "plain TCP: SIOCOUTQ %d after the peer acknowledged", v);
	ts_read_full(s, buf, sizeof(buf));
	ts_sleep_ms(50);
	TS_SYS(ioctl(c, SIOCOUTQ, &v));
	TS_ASSERT(v == 0, "SIOCOUTQ %d after the peer read everything", v);
	close(c);
	close(s);
}

static void t_siocoutq(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_outq, .no_compare = true});
}

/* TCP_INQ: recvmsg reports the bytes still queued. */
static void scen_tcp_inq(struct ts_run *r)
{
	char buf[1000], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;
	ssize_t n;
	int c, s, inq = -1;

	ts_pair(&c, &s);
	ts_set_int(s, IPPROTO_TCP, TCP_INQ, 1);
	send_stream_at(c, r->seed, 0, 3000);
	wait_inq(s, 3000);
	m.msg_control = cbuf;
	m.msg_controllen = sizeof(cbuf);
	n = recvmsg(s, &m, 0);
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == IPPROTO_TCP && cm->cmsg_type == TCP_CM_INQ)
			memcpy(&inq, CMSG_DATA(cm), sizeof(inq));
	ts_note("recvmsg: %s, TCP_CM_INQ %d", res(n, errno), inq);
	close(c);
	close(s);
}

static void t_tcp_inq(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_tcp_inq});
}

/* ---- vectored I/O ---- */

struct vec_arg {
	int fd;
	uint64_t seed, len;
};

static void *writev_thread(void *arg)
{
	struct vec_arg *a = arg;
	struct ts_rng g = {a->seed};
	char *buf = malloc(a->len);
	uint64_t off = 0;

	ts_fill(a->seed, 0, buf, a->len);
	while (off < a->len) {
		struct iovec iov[64];
		int cnt = 0;
		uint64_t o = off;

		while (cnt < 64 && o < a->len) {
			size_t n = ts_rand_range(&g, 0, 3000);

			if (n > a->len - o)
				n = a->len - o;
			iov[cnt].iov_base = buf + o;
			iov[cnt++].iov_len = n;
			o += n;
		}
		ssize_t k = writev(a->fd, iov, cnt);

		if (k <= 0)
			ts_fail("writev: %m");
		off += k;
	}
	free(buf);
	return NULL;
}

static void scen_readv_writev(struct ts_run *r)
{
	struct vec_arg a;
	struct ts_rng g = {r->seed ^ 3};
	char *buf;
	uint64_t off = 0;
	unsigned long t;
	int c, s;

	ts_pair(&c, &s);
	a = (struct vec_arg){c, r->seed, 600000};
	buf = malloc(a.len);
	t = ts_spawn(writev_thread, &a);
	while (off < a.len) {
		struct iovec iov[37];
		uint64_t o = off;
		int cnt = 0;
		ssize_t k;

		while (cnt < 37 && o < a.len) {
			size_t n = ts_rand_range(&g, 0, 5000);

			if (n > a.len - o)
				n = a.len - o;
			iov[cnt].iov_base = buf + o;
			iov[cnt++].iov_len = n;
			o += n;
		}
		k = readv(s, iov, cnt);
		if (k <= 0)
			ts_fail("readv at %llu: %s", (unsigned long long)off, res(k, errno));
		off += k;
	}
	ts_join(t);
	TS_ASSERT(ts_check(r->seed, 0, buf, a.len) < 0, "readv/writev: bytes corrupt at %ld",
		  ts_check(r->seed, 0, buf, a.len));
	ts_note("readv/writev %llu bytes", (unsigned long long)a.len);
	free(buf);
	close(c);
	close(s);
}

static void t_readv_writev(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_readv_writev});
}

/* ---- sendfile and splice, into and out of the socket ---- */

static int stream_file(uint64_t seed, size_t len)
{
	char tmpl[] = "/tmp/ts-semantics.XXXXXX";
	int fd = TS_SYS(mkstemp(tmpl));
	char *buf = malloc(len);

	unlink(tmpl);
	ts_fill(seed, 0, buf, len);
	TS_ASSERT(write(fd, buf, len) == (ssize_t)len, "write file: %m");
	free(buf);
	return fd;
}

static void check_file(int fd, uint64_t seed, size_t len)
{
	char *buf = malloc(len);

	TS_ASSERT(pread(fd, buf, len, 0) == (ssize_t)len, "pread: %m");
	TS_ASSERT(ts_check(seed, 0, buf, len) < 0, "file contents corrupt at %ld",
		  ts_check(seed, 0, buf, len));
	free(buf);
}

static void *sendfile_thread(void *arg)
{
	struct vec_arg *a = arg;
	int f = stream_file(a->seed, a->len);
	off_t off = 0;

	while ((uint64_t)off < a->len) {
		ssize_t k = sendfile(a->fd, f, &off, a->len - off);

		if (k <= 0)
			ts_fail("sendfile into the socket: %s", res(k, errno));
	}
	close(f);
	return NULL;
}

static void scen_sendfile_in(struct ts_run *r)
{
	struct vec_arg a;
	unsigned long t;
	int c, s;

	ts_pair(&c, &s);
	a = (struct vec_arg){c, r->seed, 1 << 20};
	t = ts_spawn(sendfile_thread, &a);
	ts_recv_stream(s, r->seed, 0, a.len, 100000, &(struct ts_rng){r->seed});
	ts_join(t);
	ts_note("sendfile %llu bytes into the socket", (unsigned long long)a.len);
	close(c);
	close(s);
}

static void t_sendfile_in(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_sendfile_in});
}

static void *stream_thread(void *arg)
{
	struct vec_arg *a = arg;

	ts_send_stream(a->fd, a->seed, 0, a->len, 100000, &(struct ts_rng){a->seed});
	return NULL;
}

/* sendfile() with the socket as its source. */
static void scen_sendfile_out(struct ts_run *r)
{
	char tmpl[] = "/tmp/ts-semantics.XXXXXX";
	int f = TS_SYS(mkstemp(tmpl));
	struct vec_arg a;
	uint64_t got = 0;
	unsigned long t;
	int c, s;

	unlink(tmpl);
	ts_pair(&c, &s);
	a = (struct vec_arg){c, r->seed, 1 << 20};
	t = ts_spawn(stream_thread, &a);
	while (got < a.len) {
		ssize_t k = sendfile(f, s, NULL, a.len - got);

		if (k <= 0) {
			ts_note("sendfile out of the socket: %s", res(k, errno));
			break;
		}
		got += k;
	}
	if (got == a.len) {
		check_file(f, r->seed, a.len);
		ts_note("sendfile %llu bytes out of the socket", (unsigned long long)got);
	} else {
		/* Unsupported: take the rest with recv so that the writer ends. */
		ts_recv_stream(s, r->seed, got, a.len - got, 100000, &(struct ts_rng){1});
	}
	ts_join(t);
	close(f);
	close(c);
	close(s);
}

static void t_sendfile_out(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_sendfile_out});
}

static void scen_splice_out(struct ts_run *r)
{
	char tmpl[] = "/tmp/ts-semantics.XXXXXX";
	int f = TS_SYS(mkstemp(tmpl)), p[2];
	struct vec_arg a;
	uint64_t got = 0;
	loff_t foff = 0;
	unsigned long t;
	int c, s;

	unlink(tmpl);
	TS_SYS(pipe(p));
	ts_pair(&c, &s);
	a = (struct vec_arg){c, r->seed, 1 << 20};
	t = ts_spawn(stream_thread, &a);
	ts_phase("splice socket -> pipe -> file");
	while (got < a.len) {
		ssize_t k = splice(s, NULL, p[1], NULL, a.len - got, SPLICE_F_MOVE);

		if (k <= 0)
			ts_fail("splice out of the socket at %llu: %s", (unsigned long long)got,
				res(k, errno));
		for (ssize_t m = k; m > 0;) {
			ssize_t w = splice(p[0], NULL, f, &foff, m, SPLICE_F_MOVE);

			if (w <= 0)
				ts_fail("splice pipe -> file: %s", res(w, errno));
			m -= w;
		}
		got += k;
	}
	ts_join(t);
	check_file(f, r->seed, a.len);
	ts_note("splice %llu bytes out of the socket", (unsigned long long)got);
	close(p[0]);
	close(p[1]);
	close(f);
	close(c);
	close(s);
}

static void t_splice_out(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_splice_out});
}

static void *splice_in_thread(void *arg)
{
	struct vec_arg *a = arg;
	int f = stream_file(a->seed, a->len), p[2];
	loff_t foff = 0;

	TS_SYS(pipe(p));
	while ((uint64_t)foff < a->len) {
		ssize_t k = splice(f, &foff, p[1], NULL, a->len - foff, SPLICE_F_MOVE);

		if (k <= 0)
			ts_fail("splice file -> pipe: %s", res(k, errno));
		for (ssize_t m = k; m > 0;) {
			ssize_t w = splice(p[0], NULL, a->fd, NULL, m, SPLICE_F_MOVE);

			if (w <= 0)
				ts_fail("splice pipe -> socket: %s", res(w, errno));
			m -= w;
		}
	}
	close(p[0]);
	close(p[1]);
	close(f);
	return NULL;
}

static void scen_splice_in(struct ts_run *r)
{
	struct vec_arg a;
	unsigned long t;
	int c, s;

	ts_pair(&c, &s);
	a = (struct vec_arg){c, r->seed, 1 << 20};
	t = ts_spawn(splice_in_thread, &a);
	ts_recv_stream(s, r->seed, 0, a.len, 100000, &(struct ts_rng){r->seed});
	ts_join(t);
	ts_note("splice %llu bytes into the socket", (unsigned long long)a.len);
	close(c);
	close(s);
}

static void t_splice_in(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_splice_in});
}

/* ---- MSG_TRUNC discards; bad buffers give EFAULT without losing bytes ---- */

static void scen_trunc(struct ts_run *r)
{
	char buf[200];
	ssize_t n;
	int c, s;

	ts_pair(&c, &s);
	send_stream_at(c, r->seed, 0, 1000);
	wait_inq(s, 1000);
	n = recv(s, NULL, 300, MSG_TRUNC);
	ts_note("recv(NULL, 300, MSG_TRUNC): %s", res(n, errno));
	n = recv(s, buf, sizeof(buf), 0);
	ts_note("next recv: %s at stream offset %ld", res(n, errno),
		n > 0 ? locate(r->seed, buf, n) : -1);
	close(c);
	close(s);
}

static void t_msg_trunc(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_trunc});
}

/*
 * A watchdog signal breaks a call spinning in the kernel, so that a spin is
 * reported as a wrong result rather than as the test's timeout.
 */
struct watchdog {
	pthread_t target;
	atomic_bool stop;
};

static void *watchdog_thread(void *arg)
{
	struct watchdog *w = arg;

	for (int i = 0; !atomic_load(&w->stop); i++) {
		if (i >= 300 && i % 50 == 0)
			pthread_kill(w->target, SIGUSR1);
		ts_sleep_ms(10);
	}
	return NULL;
}

static void scen_efault(struct ts_run *r)
{
	bool sending = *(bool *)r->arg;
	struct watchdog w = {.target = pthread_self()};
	unsigned long t;
	char buf[100];
	ssize_t n;
	int c, s;

	set_handler(SIGUSR1, false);
	ts_pair(&c, &s);
	send_stream_at(c, r->seed, 0, 100);
	wait_inq(s, 100);
	ts_phase("bad buffer");
	t = ts_spawn(watchdog_thread, &w);
	n = sending ? send(c, (void *)8, 100, MSG_NOSIGNAL) : recv(s, (void *)8, 100, 0);
	ts_note("%s with a bad buffer: %s", sending ? "send" : "recv", res(n, errno));
	atomic_store(&w.stop, true);
	ts_join(t);
	n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
	ts_note("then recv: %s at stream offset %ld", res(n, errno),
		n > 0 ? locate(r->seed, buf, n) : -1);
	close(c);
	close(s);
}

static void t_efault_recv(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_efault, .arg = &(bool){false}});
}

static void t_efault_send(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_efault, .arg = &(bool){true}});
}

/* ---- SIGPIPE and EPIPE after the peer closed ---- */

static void scen_sigpipe(struct ts_run *r)
{
	char buf[100] = {0};
	int c, s;

	set_handler(SIGPIPE, false);
	ts_pair(&c, &s);
	send_stream_at(c, r->seed, 0, 100);
	wait_inq(s, 100);
	ts_read_full(s, buf, 100);
	close(s);
	ts_sleep_ms(100);
	for (int i = 0; i < 4; i++) {
		ssize_t n = send(c, buf, sizeof(buf), 0);

		ts_note("send %d after the peer closed: %s, SIGPIPE %d", i, res(n, errno),
			atomic_load(&sig_count));
		ts_sleep_ms(100);
	}
	signal(SIGPIPE, SIG_IGN);
	close(c);
}

static void t_sigpipe(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_sigpipe});
}

/* ---- non-blocking mode ---- */

static void scen_nonblock(struct ts_run *r)
{
	char buf[100];
	ssize_t n;
	int c, s;

	ts_pair(&c, &s);
	send_stream_at(c, r->seed, 0, 10);
	wait_inq(s, 10);
	ts_read_full(s, buf, 10);
	ts_set_nonblock(s, true);
	n = recv(s, buf, sizeof(buf), 0);
	ts_note("O_NONBLOCK recv, empty: %s", res(n, errno));
	ts_set_nonblock(s, false);
	n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
	ts_note("MSG_DONTWAIT recv, empty: %s", res(n, errno));
	send_stream_at(c, r->seed, 10, 50);
	wait_inq(s, 50);
	n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
	ts_note("MSG_DONTWAIT recv, 50 queued: %s", res(n, errno));
	close(c);
	close(s);
}

static void t_nonblock(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_nonblock});
}

static const struct ts_test tests[] = {
	{"peek", t_peek, 0},
	{"peek-wait", t_peek_wait, 0},
	{"peek-off", t_peek_off, 0},
	{"peek-off-eof", t_peek_off_eof, 0},
	{"peek-off-wait", t_peek_off_wait, 0},
	{"boundary", t_boundary, 0},
	{"waitall", t_waitall, 0},
	{"rcvtimeo", t_rcvtimeo, 0},
	{"sndtimeo", t_sndtimeo, 0},
	{"eintr-recv", t_eintr_recv, 0},
	{"restart-recv", t_restart_recv, 0},
	{"eintr-send", t_eintr_send, 0},
	{"restart-send", t_restart_send, 0},
	{"rcvlowat", t_rcvlowat, 0},
	{"fionread", t_fionread, 0},
	{"siocoutq", t_siocoutq, 0},
	{"tcp-inq", t_tcp_inq, 0},
	{"readv-writev", t_readv_writev, 0},
	{"sendfile-in", t_sendfile_in, 0},
	{"sendfile-out", t_sendfile_out, 0},
	{"splice-out", t_splice_out, 0},
	{"splice-in", t_splice_in, 0},
	{"msg-trunc", t_msg_trunc, 0},
	{"efault-recv", t_efault_recv, 0},
	{"efault-send", t_efault_send, 0},
	{"sigpipe", t_sigpipe, 0},
	{"nonblock", t_nonblock, 0},
};

int main(int argc, char **argv)
{
	return ts_main(argc, argv, 200, tests, sizeof(tests) / sizeof(tests[0]));
}
