// SPDX-License-Identifier: GPL-2.0
/*
 * ts-teardown: EOF, half-close, resets and close sequencing of spliced
 * connections equal plain TCP: EOF only after the peer's FIN and every byte,
 * no TIME_WAIT on the passive closer, ECONNRESET where TCP resets, process
 * exit and kill -9 with bytes pending, concurrent close of both ends.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsutil.h"

static const char *res(ssize_t n, int e)
{
	static __thread char buf[64];

	if (n >= 0)
		snprintf(buf, sizeof(buf), "n=%zd", n);
	else
		snprintf(buf, sizeof(buf), "-1 %s", strerrorname_np(e) ? strerrorname_np(e) : "E?");
	return buf;
}

static void send_at(int fd, uint64_t seed, uint64_t off, size_t len)
{
	char *buf = malloc(len);

	ts_fill(seed, off, buf, len);
	ts_write_all(fd, buf, len);
	free(buf);
}

/* Reads len bytes of the stream in pieces, sleeping pause_ms every `every` bytes. */
static void slow_recv(int fd, uint64_t seed, uint64_t off, uint64_t len, int pause_ms,
		      uint64_t every)
{
	char *buf = malloc(8192);
	uint64_t got = 0, next = every;

	while (got < len) {
		size_t want = len - got < 8192 ? len - got : 8192;
		ssize_t n = recv(fd, buf, want, 0);

		if (n < 0)
			ts_fail("recv after %llu of %llu bytes: %m", (unsigned long long)got,
				(unsigned long long)len);
		if (n == 0)
			ts_fail("EOF after %llu of %llu bytes", (unsigned long long)got,
				(unsigned long long)len);
		if (ts_check(seed, off + got, buf, n) >= 0)
			ts_fail("byte %llu corrupt",
				(unsigned long long)(off + got +
						     ts_check(seed, off + got, buf, n)));
		got += n;
		if (got >= next) {
			ts_sleep_ms(pause_ms);
			next += every;
		}
	}
	free(buf);
}

/* After all bytes: the next recv gives EOF (0), also a second time. */
static void expect_eof(int fd)
{
	char b;
	ssize_t n = recv(fd, &b, 1, 0);
	int e = errno;

	ts_note("at the end: %s", res(n, e));
	TS_ASSERT(n == 0, "expected EOF after every byte, got %s", res(n, e));
	n = recv(fd, &b, 1, MSG_DONTWAIT);
	ts_note("again: %s", res(n, errno));
}

struct writer {
	int fd;
	uint64_t seed, off, len;
	int close_after; /* 1: close, 2: shutdown(SHUT_WR) */
	ssize_t ret;
	int err;
};

static void *writer_thread(void *arg)
{
	struct writer *w = arg;
	char *buf = malloc(w->len);

	ts_fill(w->seed, w->off, buf, w->len);
	w->ret = send(w->fd, buf, w->len, MSG_NOSIGNAL);
	w->err = errno;
	if (w->ret != (ssize_t)w->len)
		ts_fail("send(%llu): %s", (unsigned long long)w->len, res(w->ret, w->err));
	if (w->close_after == 1)
		close(w->fd);
	else if (w->close_after == 2)
		shutdown(w->fd, SHUT_WR);
	free(buf);
	return NULL;
}

/* ---- EOF after all bytes ---- */

static void scen_eof_after_data(struct ts_run *r)
{
	struct writer w;
	unsigned long t;
	int c, s;

	ts_pair(&c, &s);
	w = (struct writer){c, r->seed, 0, 8 * ts_ring_max() + 777, 1, 0, 0};
	t = ts_spawn(writer_thread, &w);
	ts_sleep_ms(100);
	slow_recv(s, r->seed, 0, w.len, 2, 65536);
	ts_join(t);
	ts_note("%llu bytes read", (unsigned long long)w.len);
	expect_eof(s);
	close(s);
}

static void t_eof_after_data(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_eof_after_data});
}

/* Bytes still in the ring when the writer closes: the reader gets them all, then EOF. */
static void scen_close_with_ring_data(struct ts_run *r)
{
	size_t len = ts_ring_max() / 2;
	int c, s;

	ts_pair(&c, &s);
	send_at(c, r->seed, 0, len);
	close(c);
	ts_sleep_ms(300);
	slow_recv(s, r->seed, 0, len, 1, 4096);
	ts_note("%zu bytes read after the writer closed", len);
	expect_eof(s);
	close(s);
}

static void t_close_with_ring_data(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_close_with_ring_data});
}

/* ---- half-close ---- */

static void scen_shutwr(struct ts_run *r)
{
	struct writer w;
	unsigned long t;
	int c, s;

	ts_pair(&c, &s);
	w = (struct writer){c, r->seed, 0, 300000, 2, 0, 0};
	t = ts_spawn(writer_thread, &w);
	slow_recv(s, r->seed, 0, w.len, 1, 32768);
	ts_join(t);
	expect_eof(s);
	/* The other direction still works after the half-close. */
	w = (struct writer){s, r->seed ^ 1, 0, 200000, 2, 0, 0};
	t = ts_spawn(writer_thread, &w);
	slow_recv(c, r->seed ^ 1, 0, w.len, 1, 32768);
	ts_join(t);
	expect_eof(c);
	close(c);
	close(s);
}

static void t_shutwr(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_shutwr});
}

/*
 * The request/half-close/response pattern: the client shuts down writing
 * (FIN_WAIT2), the server answers and closes at once (the client goes to
 * TIME_WAIT while the response is still unread), the client reads slowly.
 */
static void scen_shutwr_response(struct ts_run *r)
{
	size_t len = *(size_t *)r->arg ? 6 * ts_ring_max() : ts_ring_max() / 2;
	struct writer w;
	char req[100];
	unsigned long t;
	int c, s;

	ts_pair(&c, &s);
	send_at(c, r->seed, 0, sizeof(req));
	shutdown(c, SHUT_WR);
	ts_read_full(s, req, sizeof(req));
	TS_ASSERT(recv(s, req, 1, 0) == 0, "server: no EOF after the request");
	w = (struct writer){s, r->seed ^ 1, 0, len, 1, 0, 0};
	t = ts_spawn(writer_thread, &w);
	ts_sleep_ms(300);
	slow_recv(c, r->seed ^ 1, 0, len, 20, 32768);
	ts_join(t);
	ts_note("response of %zu bytes read", len);
	expect_eof(c);
	close(c);
}

static void t_shutwr_response_small(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_shutwr_response, .arg = &(size_t){0}});
}

static void t_shutwr_response_large(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_shutwr_response, .arg = &(size_t){1}});
}

static void scen_shutrd(struct ts_run *r)
{
	char buf[100];
	ssize_t n;
	int c, s;

	ts_pair(&c, &s);
	send_at(c, r->seed, 0, 100);
	ts_sleep_ms(50);
	shutdown(s, SHUT_RD);
	n = recv(s, buf, sizeof(buf), 0);
	ts_note("recv after SHUT_RD with 100 queued: %s", res(n, errno));
	n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
	ts_note("again: %s", res(n, errno));
	n = send(c, buf, 100, MSG_NOSIGNAL);
	ts_note("peer sends: %s", res(n, errno));
	send_at(s, r->seed, 0, 100);
	ts_read_full(c, buf, 100);
	ts_note("the other direction works");
	close(c);
	close(s);
}

static void t_shutrd(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_shutrd});
}

/* ---- close sequencing: TIME_WAIT lands on the active closer only ---- */

/* TIME_WAIT sockets in /proc/net/tcp{,6} with local (or remote) port `port`. */
static int count_time_wait(int port, bool local)
{
	static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	int n = 0;

	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");
		char line[512], la[64], ra[64];
		unsigned int st;

		if (!f)
			continue;
		if (!fgets(line, sizeof(line), f)) {
			fclose(f);
			continue;
		}
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%*d: %63s %63s %x", la, ra, &st) != 3 || st != 6)
				continue;
			char *p = strrchr(local ? la : ra, ':');

			if (p && (int)strtol(p + 1, NULL, 16) == port)
				n++;
		}
		fclose(f);
	}
	return n;
}

static void scen_time_wait(struct ts_run *r)
{
	const int conns = 200;
	int lfd = ts_listen(r->family, r->port);

	for (int i = 0; i < conns; i++) {
		char buf[10];
		int c = ts_connect(r->family, r->port), s = ts_accept(lfd, 5000);

		if (i == 0) {
			ts_expect_spliced(c);
			ts_expect_spliced(s);
		}
		ts_warm_up(c, s);
		send_at(c, r->seed, 0, sizeof(buf));
		close(c); /* the client closes first */
		ts_read_full(s, buf, sizeof(buf));
		TS_ASSERT(recv(s, buf, 1, 0) == 0, "connection %d: no EOF", i);
		close(s); /* the server closes after reading EOF */
	}
	close(lfd);
	ts_sleep_ms(500);
	/* Client-side ones of an earlier run on this port may still be there. */
	int srv = count_time_wait(r->port, true), cli = count_time_wait(r->port, false);

	ts_log("TIME_WAIT: server side %d, client side %d", srv, cli);
	ts_note("TIME_WAIT after %d connections: server side %d, client side all: %d", conns, srv,
		cli >= conns);
	TS_ASSERT(srv == 0, "%d server-side sockets in TIME_WAIT (passive closer)", srv);
	TS_ASSERT(cli >= conns, "%d client-side sockets in TIME_WAIT (active closer), want %d", cli,
		  conns);
}

static void t_time_wait(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_time_wait,
					  .want = "pairs_total>=200 handoffs>=1 ring_bytes_tx>0"});
}

/* ---- resets ---- */

static void linger0_close(int fd)
{
	struct linger lg = {1, 0};

	TS_SYS(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	close(fd);
}

static void after_reset(const char *what, int fd)
{
	char buf[4096];
	ssize_t n;

	ts_sleep_ms(100);
	n = recv(fd, buf, sizeof(buf), 0);
	ts_note("%s: recv %s", what, res(n, errno));
	n = recv(fd, buf, sizeof(buf), 0);
	ts_note("%s: recv again %s", what, res(n, errno));
	n = send(fd, buf, 10, MSG_NOSIGNAL);
	ts_note("%s: send %s", what, res(n, errno));
}

static void scen_linger0(struct ts_run *r)
{
	int c, s;

	/* Nothing pending. */
	ts_pair(&c, &s);
	send_at(c, r->seed, 0, 100);
	ts_read_full(s, (char[100]){0}, 100);
	linger0_close(s);
	after_reset("idle", c);
	close(c);

	/* Bytes the reset side had not read. */
	ts_pair(&c, &s);
	send_at(c, r->seed, 0, 1000);
	ts_sleep_ms(50);
	linger0_close(s);
	after_reset("unread by the closer", c);
	close(c);

	/* Bytes the other side had not read yet. */
	ts_pair(&c, &s);
	send_at(s, r->seed, 0, 1000);
	ts_sleep_ms(50);
	linger0_close(s);
	after_reset("unread by the peer", c);
	close(c);
}

static void t_linger0(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_linger0,
					  .want = "pairs_total>=3 handoffs>=1 ring_bytes_tx>0"});
}

struct blocked {
	int fd;
	bool is_send;
	ssize_t ret;
	int err;
};

static void *blocked_call(void *arg)
{
	struct blocked *b = arg;
	char *buf = calloc(1, 65536);

	if (b->is_send)
		b->ret = send(b->fd, buf, 65536, MSG_NOSIGNAL);
	else
		b->ret = recv(b->fd, buf, 65536, 0);
	b->err = errno;
	free(buf);
	return NULL;
}

/* A reset wakes a reader blocked on an empty ring and a writer blocked on a full one. */
static void scen_reset_wakes(struct ts_run *r)
{
	struct blocked b;
	unsigned long t;
	int c, s;

	ts_pair(&c, &s);
	send_at(c, r->seed, 0, 100);
	ts_read_full(s, (char[100]){0}, 100);
	b = (struct blocked){.fd = s};
	t = ts_spawn(blocked_call, &b);
	ts_sleep_ms(200);
	linger0_close(c);
	ts_join(t);
	ts_note("blocked reader: %s", res(b.ret, b.err));
	close(s);

	ts_pair(&c, &s);
	ts_fill_until_eagain(c, r->seed, 0);
	ts_sleep_ms(150);
	ts_fill_until_eagain(c, r->seed, 0);
	b = (struct blocked){.fd = c, .is_send = true};
	t = ts_spawn(blocked_call, &b);
	ts_sleep_ms(200);
	close(s); /* unread bytes: a reset */
	ts_join(t);
	if (b.ret > 0 && b.ret < 65536)
		ts_note("blocked writer: partial");
	else
		ts_note("blocked writer: %s", res(b.ret, b.err));
	close(c);
}

static void t_reset_wakes(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_reset_wakes,
					  .want = "pairs_total>=2 handoffs>=1 ring_bytes_tx>0"});
}

/* close() with unread bytes resets, as in TCP. */
static void scen_close_unread(struct ts_run *r)
{
	int c, s;

	ts_pair(&c, &s);
	send_at(c, r->seed, 0, 1000);
	ts_sleep_ms(50);
	close(s);
	after_reset("closed with 1000 unread", c);
	close(c);
}

static void t_close_unread(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_close_unread});
}

/* connect(AF_UNSPEC) disconnects a live pair; the socket can connect again. */
static void scen_disconnect(struct ts_run *r)
{
	struct sockaddr sa = {.sa_family = AF_UNSPEC};
	int c, s, lfd, s2;
	char buf[100];
	int rc;

	ts_pair(&c, &s);
	send_at(c, r->seed, 0, 100);
	ts_read_full(s, buf, 100);
	send_at(s, r->seed, 0, 50);
	ts_sleep_ms(50);
	rc = connect(c, &sa, sizeof(sa));
	ts_note("connect(AF_UNSPEC): %s", res(rc, errno));
	after_reset("peer of the disconnected socket", s);
	close(s);
	lfd = ts_listen(r->family, r->port + 1);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	TS_SYS(getsockname(lfd, (struct sockaddr *)&ss, &sl));
	rc = connect(c, (struct sockaddr *)&ss, sl);
	ts_note("reconnect: %s", res(rc, errno));
	if (rc == 0) {
		struct ts_conn ci;

		s2 = ts_accept(lfd, 5000);
		/* Whether a reconnected socket is spliced again is the module's choice. */
		ts_log("reconnected socket: %s",
		       ts_conn_of_fd(c, &ci) > 0 ? ci.state : "not tracked");
		ts_warm_up(c, s2);
		send_at(c, r->seed, 100, 1000);
		ts_recv_stream(s2, r->seed, 100, 1000, 1000, &(struct ts_rng){1});
		ts_note("the reconnected socket carries data");
		close(s2);
	}
	close(lfd);
	close(c);
}

static void t_disconnect(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_disconnect,
					  .want = "pairs_total>=1 handoffs>=1 ring_bytes_tx>0"});
}

/* A listener closed with spliced children never accepted. */
static void scen_listener_close(struct ts_run *r)
{
	int lfd = ts_listen(r->family, r->port), c[5];

	for (int i = 0; i < 5; i++) {
		c[i] = ts_connect(r->family, r->port);
		send_at(c[i], r->seed, 0, 1000);
	}
	ts_sleep_ms(100);
	close(lfd);
	for (int i = 0; i < 5; i++) {
		char buf[16];
		ssize_t n;

		ts_sleep_ms(20);
		n = recv(c[i], buf, sizeof(buf), 0);
		ts_note("client %d after the listener closed: %s", i, res(n, errno));
		close(c[i]);
	}
}

static void t_listener_close(void)
{
	/* No child is ever read from, so nothing is handed over to a ring. */
	ts_differential(&(struct ts_diff){.fn = scen_listener_close, .want = "pairs_total>=5"});
}

/* ---- process exit and kill -9 ---- */

static void scen_exit_pending(struct ts_run *r)
{
	size_t len = ts_ring_max() / 2 + 100;
	pid_t pid;
	int c, s, st;

	ts_pair(&c, &s);
	pid = fork();
	if (pid == 0) {
		send_at(c, r->seed, 0, len);
		_exit(0); /* the last reference: exit closes the socket */
	}
	close(c);
	TS_SYS(waitpid(pid, &st, 0));
	TS_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer process failed");
	ts_sleep_ms(200);
	slow_recv(s, r->seed, 0, len, 1, 8192);
	ts_note("%zu bytes written before exit read", len);
	expect_eof(s);
	close(s);
}

static void t_exit_pending(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_exit_pending});
}

/* The writer is killed while blocked on a full path: the reader gets a prefix, then EOF. */
static void scen_kill_writer(struct ts_run *r)
{
	char *buf = malloc(65536);
	uint64_t got = 0;
	pid_t pid;
	int c, s;

	ts_pair(&c, &s);
	pid = fork();
	if (pid == 0) {
		ts_send_stream(c, r->seed, 0, 64u << 20, 65536, &(struct ts_rng){1});
		_exit(0);
	}
	close(c);
	ts_sleep_ms(300);
	kill(pid, SIGKILL);
	TS_SYS(waitpid(pid, NULL, 0));
	for (;;) {
		ssize_t n = recv(s, buf, 65536, 0);

		if (n <= 0) {
			ts_note("after the killed writer's bytes: %s", res(n, errno));
			break;
		}
		if (ts_check(r->seed, got, buf, n) >= 0)
			ts_fail("byte %llu corrupt",
				(unsigned long long)(got + ts_check(r->seed, got, buf, n)));
		got += n;
	}
	ts_log("%llu bytes before the kill", (unsigned long long)got);
	TS_ASSERT(got > 0 && got < (64u << 20), "%llu bytes received", (unsigned long long)got);
	ts_note("an intact prefix");
	free(buf);
	close(s);
}

static void t_kill_writer(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_kill_writer});
}

/* The reader is killed with bytes unread: the writer, blocked on a full path, wakes. */
static void scen_kill_reader(struct ts_run *r)
{
	struct blocked b;
	unsigned long t;
	pid_t pid;
	int c, s;

	ts_pair(&c, &s);
	pid = fork();
	if (pid == 0) {
		for (;;)
			pause();
	}
	close(s);
	ts_fill_until_eagain(c, r->seed, 0);
	ts_sleep_ms(150);
	ts_fill_until_eagain(c, r->seed, 0);
	b = (struct blocked){.fd = c, .is_send = true};
	t = ts_spawn(blocked_call, &b);
	ts_sleep_ms(200);
	kill(pid, SIGKILL);
	TS_SYS(waitpid(pid, NULL, 0));
	ts_join(t);
	if (b.ret > 0 && b.ret < 65536)
		ts_note("blocked writer: partial");
	else
		ts_note("blocked writer: %s", res(b.ret, b.err));
	after_reset("after the reader was killed", c);
	close(c);
}

static void t_kill_reader(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_kill_reader});
}

/* ---- both ends closed at the same moment ---- */

struct closer {
	int fd;
	pthread_barrier_t *bar;
};

static void *close_thread(void *arg)
{
	struct closer *k = arg;

	pthread_barrier_wait(k->bar);
	close(k->fd);
	return NULL;
}

static void scen_concurrent_close(struct ts_run *r)
{
	const int rounds = 100;
	int lfd = ts_listen(r->family, r->port);
	pthread_barrier_t bar;

	pthread_barrier_init(&bar, NULL, 2);
	for (int i = 0; i < rounds; i++) {
		int c = ts_connect(r->family, r->port), s = ts_accept(lfd, 5000);
		struct closer k[2] = {{c, &bar}, {s, &bar}};
		unsigned long t;

		if (i == 0) {
			ts_expect_spliced(c);
			ts_expect_spliced(s);
		}
		ts_warm_up(c, s);
		/* Bytes in both rings (within the smallest ring), some read, some not. */
		send_at(c, r->seed, 0, 3000);
		send_at(s, r->seed, 0, 2000);
		if (i % 2)
			ts_read_full(s, (char[3000]){0}, 3000);
		t = ts_spawn(close_thread, &k[0]);
		close_thread(&k[1]);
		ts_join(t);
	}
	close(lfd);
	pthread_barrier_destroy(&bar);
	ts_note("%d rounds of concurrent close", rounds);
}

static void t_concurrent_close(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_concurrent_close,
					  .want = "pairs_total>=100 handoffs>=1 ring_bytes_tx>0"});
}

static const struct ts_test tests[] = {
	{"eof-after-data", t_eof_after_data, 0},
	{"close-with-ring-data", t_close_with_ring_data, 0},
	{"shutwr", t_shutwr, 0},
	{"shutwr-response-small", t_shutwr_response_small, 0},
	{"shutwr-response-large", t_shutwr_response_large, 0},
	{"shutrd", t_shutrd, 0},
	{"time-wait", t_time_wait, 0},
	{"linger0", t_linger0, 0},
	{"reset-wakes", t_reset_wakes, 0},
	{"close-unread", t_close_unread, 0},
	{"disconnect", t_disconnect, 0},
	{"listener-close", t_listener_close, 0},
	{"exit-pending", t_exit_pending, 0},
	{"kill-writer", t_kill_writer, 0},
	{"kill-reader", t_kill_reader, 0},
	{"concurrent-close", t_concurrent_close, 0},
};

int main(int argc, char **argv)
{
	return ts_main(argc, argv, 600, tests, sizeof(tests) / sizeof(tests[0]));
}
