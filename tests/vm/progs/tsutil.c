// SPDX-License-Identifier: GPL-2.0
/* tcp-splice VM tests: shared library (see tsutil.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tsutil.h"

#define TS_DEFAULT_TIMEOUT 60
#define TS_NOTES_MAX	   (64 * 1024)

/* Written by the test process, read by ts_main in the parent. */
struct ts_shared {
	int failed;
	char reason[1024];
	char phase[256];
	char notes[2][TS_NOTES_MAX];
	size_t notes_len[2];
};

static struct ts_shared *ts_sh;
static const struct ts_test *ts_cur_test;
static int ts_cur_index;
static int ts_port_base;
static uint64_t ts_prog_seed;
static struct ts_run *ts_cur_run;
static int ts_cur_slot; /* index of the run in ts_sh->notes */
static pthread_mutex_t ts_lock = PTHREAD_MUTEX_INITIALIZER;
static void (*ts_cleanup_fn)(void);
static pid_t ts_test_pid;

static void ts_run_cleanup(void)
{
	void (*fn)(void) = ts_cleanup_fn;

	if (fn && getpid() == ts_test_pid) {
		ts_cleanup_fn = NULL;
		fn();
	}
}

void ts_cleanup(void (*fn)(void))
{
	ts_cleanup_fn = fn;
}

/* ---- reporting ---- */

static void ts_vset(char *dst, size_t n, const char *prefix, const char *fmt, va_list ap)
{
	int k = snprintf(dst, n, "%s", prefix);

	if (k < 0 || (size_t)k >= n)
		k = 0;
	vsnprintf(dst + k, n - k, fmt, ap);
	for (char *p = dst; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

void ts_fail(const char *fmt, ...)
{
	char prefix[64] = "";
	va_list ap;

	pthread_mutex_lock(&ts_lock);
	if (ts_cur_run)
		snprintf(prefix, sizeof(prefix), "%s: ", ts_cur_run->label);
	if (ts_sh && !ts_sh->failed) {
		va_start(ap, fmt);
		ts_vset(ts_sh->reason, sizeof(ts_sh->reason), prefix, fmt, ap);
		va_end(ap);
		ts_sh->failed = 1;
	}
	if (ts_sh) {
		fprintf(stderr, "# fail: %s\n", ts_sh->reason);
	} else { /* a helper outside ts_main */
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fflush(NULL);
	ts_run_cleanup();
	_exit(1);
}

void ts_skip(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&ts_lock);
	va_start(ap, fmt);
	ts_vset(ts_sh->reason, sizeof(ts_sh->reason), "", fmt, ap);
	va_end(ap);
	fflush(NULL);
	ts_run_cleanup();
	_exit(2);
}

void ts_phase(const char *fmt, ...)
{
	char prefix[64] = "";
	va_list ap;

	if (ts_cur_run)
		snprintf(prefix, sizeof(prefix), "%s: ", ts_cur_run->label);
	va_start(ap, fmt);
	ts_vset(ts_sh->phase, sizeof(ts_sh->phase), prefix, fmt, ap);
	va_end(ap);
}

void ts_log(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "# %s%s%s\n", ts_cur_run ? ts_cur_run->label : "", ts_cur_run ? ": " : "",
		buf);
}

bool ts_expect_plain(void)
{
	const char *e = getenv("TS_EXPECT_PLAIN");

	return e && *e && strcmp(e, "0") != 0;
}

int ts_test_port(bool spliced, int k)
{
	return (spliced ? TS_PORT_SPLICED : TS_PORT_PLAIN) + ts_port_base + ts_cur_index * 8 + k;
}

/* ---- PRNG, streams, checksum ---- */

uint64_t ts_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

void ts_rng_init(struct ts_rng *r, uint64_t seed)
{
	r->s = seed;
}

uint64_t ts_rand(struct ts_rng *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return ts_mix64(r->s);
}

uint64_t ts_rand_range(struct ts_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + ts_rand(r) % (hi - lo + 1);
}

uint64_t ts_seed(void)
{
	uint64_t h = ts_prog_seed;

	for (const char *p = ts_cur_test ? ts_cur_test->name : ""; *p; p++)
		h = ts_mix64(h ^ (unsigned char)*p);
	return h;
}

static uint64_t ts_word(uint64_t seed, uint64_t idx)
{
	return ts_mix64(seed ^ (idx * 0x9e3779b97f4a7c15ULL));
}

void ts_fill(uint64_t seed, uint64_t off, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		uint64_t w = ts_word(seed, off >> 3);

		for (unsigned int i = off & 7; i < 8 && len; i++, len--, off++)
			*p++ = (unsigned char)(w >> (8 * i));
	}
}

long ts_check(uint64_t seed, uint64_t off, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t k = 0;

	while (k < len) {
		uint64_t w = ts_word(seed, off >> 3);

		for (unsigned int i = off & 7; i < 8 && k < len; i++, k++, off++)
			if (p[k] != (unsigned char)(w >> (8 * i)))
				return (long)k;
	}
	return -1;
}

uint64_t ts_sum64(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* ---- time ---- */

int64_t ts_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void ts_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- counters and listing ---- */

bool ts_counters_read(struct ts_counters *c)
{
	char line[256];
	FILE *f;

	memset(c, 0, sizeof(*c));
	/* thread-self: a thread that entered another namespace sees that one. */
	f = fopen("/proc/thread-self/net/tcp_splice", "r");
	if (!f)
		return false;
	c->present = true;
	while (fgets(line, sizeof(line), f) && c->n < TS_MAX_COUNTERS) {
		char name[40];
		long long v;

		if (sscanf(line, "%39s %lld", name, &v) != 2)
			continue;
		strcpy(c->e[c->n].name, name);
		c->e[c->n].v = v;
		c->n++;
	}
	fclose(f);
	return true;
}

long long ts_counter(const struct ts_counters *c, const char *name, bool *found)
{
	for (int i = 0; i < c->n; i++) {
		if (strcmp(c->e[i].name, name) == 0) {
			if (found)
				*found = true;
			return c->e[i].v;
		}
	}
	if (found)
		*found = false;
	return -1;
}

static bool ts_cmp(long long d, const char *op, long long v)
{
	if (!strcmp(op, "="))
		return d == v;
	if (!strcmp(op, ">"))
		return d > v;
	if (!strcmp(op, ">="))
		return d >= v;
	if (!strcmp(op, "<"))
		return d < v;
	if (!strcmp(op, "<="))
		return d <= v;
	return false;
}

const char *ts_counters_check(const struct ts_counters *before, const struct ts_counters *after,
			      const char *spec)
{
	static char out[1024];
	char buf[512], *save = NULL;
	size_t k = 0;

	out[0] = 0;
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		size_t nl = strcspn(tok, "<>=");
		char name[40], op[3] = "";
		long long want, d;
		bool f1, f2;

		if (nl == 0 || nl >= sizeof(name) || !tok[nl])
			ts_fail("bad counter spec '%s'", tok);
		memcpy(name, tok, nl);
		name[nl] = 0;
		op[0] = tok[nl];
		if (tok[nl + 1] == '=')
			op[1] = '=';
		want = atoll(tok + nl + strlen(op));
		if (!after->present) {
			/* No module: nothing can have moved. */
			if (ts_cmp(0, op, want))
				continue;
			return "no /proc/net/tcp_splice (module not loaded?)";
		}
		d = ts_counter(after, name, &f2) - ts_counter(before, name, &f1);
		if (!f1 || !f2) {
			k += snprintf(out + k, sizeof(out) - k, "%scounter %s missing",
				      k ? ", " : "", name);
		} else if (!ts_cmp(d, op, want)) {
			k += snprintf(out + k, sizeof(out) - k, "%s%s %+lld (want %s%lld)",
				      k ? ", " : "", name, d, op, want);
		}
		if (k >= sizeof(out) - 64)
			break;
	}
	return k ? out : NULL;
}

long long ts_counter_wait(const char *name, long long value, int ms)
{
	int64_t end = ts_now_us() + (int64_t)ms * 1000;
	struct ts_counters c;
	long long v = -1;

	for (;;) {
		if (ts_counters_read(&c))
			v = ts_counter(&c, name, NULL);
		if (v == value || ts_now_us() > end)
			return v;
		ts_sleep_ms(20);
	}
}

static int ts_conns_scan(unsigned long long inode, const char *state, int port, struct ts_conn *out)
{
	char line[512], pstr[16];
	struct ts_conn c;
	int count = 0;
	FILE *f;

	f = fopen("/proc/thread-self/net/tcp_splice_conns", "r");
	if (!f)
		return -1;
	snprintf(pstr, sizeof(pstr), ":%d", port);
	if (!fgets(line, sizeof(line), f)) { /* header */
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		memset(&c, 0, sizeof(c));
		if (sscanf(line, "%15s %63s %63s %llu %llu %llu %llu %llu", c.state, c.local,
			   c.remote, &c.inode, &c.ring_tx, &c.ring_rx, &c.rx_fill, &c.rx_size) < 4)
			continue;
		if (inode) {
			/*
			 * A socket that reconnected can be listed twice: its
			 * old, closed channel and a new one.  Prefer the live one.
			 */
			if (c.inode == inode && (!count || strcmp(c.state, "closed"))) {
				if (out)
					*out = c;
				count = 1;
			}
			continue;
		}
		if (state && strcmp(state, c.state))
			continue;
		size_t pl = strlen(pstr), ll = strlen(c.local), rl = strlen(c.remote);

		if ((ll > pl && !strcmp(c.local + ll - pl, pstr)) ||
		    (rl > pl && !strcmp(c.remote + rl - pl, pstr)))
			count++;
	}
	fclose(f);
	return count;
}

int ts_conn_of_fd(int fd, struct ts_conn *out)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		ts_fail("fstat: %m");
	return ts_conns_scan((unsigned long long)st.st_ino, NULL, 0, out);
}

int ts_conns_count(const char *state, int port)
{
	return ts_conns_scan(0, state, port, NULL);
}

/* ---- sockets ---- */

const char *ts_loopback(int family)
{
	return family == AF_INET6 ? "::1" : "127.0.0.1";
}

static socklen_t ts_sockaddr(const char *addr, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			ts_fail("bad address %s", addr);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
		ts_fail("bad address %s", addr);
	return sizeof(*s4);
}

int ts_listen_at(const char *addr, int port, int backlog, int defer_accept_s)
{
	struct sockaddr_storage ss;
	socklen_t len = ts_sockaddr(addr, port, &ss);
	int fd, one = 1;

	fd = TS_SYS(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
	TS_SYS(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	if (ss.ss_family == AF_INET6)
		TS_SYS(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)));
	if (defer_accept_s)
		ts_set_int(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, defer_accept_s);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		ts_fail("bind %s port %d: %m", addr, port);
	TS_SYS(listen(fd, backlog));
	return fd;
}

int ts_listen(int family, int port)
{
	return ts_listen_at(ts_loopback(family), port, 128, 0);
}

int ts_connect_at(const char *addr, int port, const char *bind_addr, int bind_port)
{
	struct sockaddr_storage ss, bs;
	socklen_t len = ts_sockaddr(addr, port, &ss);
	int fd, one = 1;

	fd = TS_SYS(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (bind_addr) {
		socklen_t bl = ts_sockaddr(bind_addr, bind_port, &bs);

		TS_SYS(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
		if (bind(fd, (struct sockaddr *)&bs, bl) < 0)
			ts_fail("bind %s port %d: %m", bind_addr, bind_port);
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0)
		ts_fail("connect %s port %d: %m", addr, port);
	return fd;
}

int ts_connect(int family, int port)
{
	return ts_connect_at(ts_loopback(family), port, NULL, 0);
}

int ts_accept(int lfd, int ms)
{
	int fd;

	if (!(ts_poll1(lfd, POLLIN, ms) & POLLIN))
		ts_fail("accept: no connection within %d ms", ms);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		ts_fail("accept: %m");
	return fd;
}

ssize_t ts_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ts_fail("send of %zu bytes (at %zu): %m", len, done);
		done += n;
	}
	return (ssize_t)done;
}

void ts_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = recv(fd, p + done, len - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ts_fail("recv (%zu of %zu bytes read): %m", done, len);
		if (n == 0)
			ts_fail("early EOF: %zu of %zu bytes read", done, len);
		done += n;
	}
}

uint64_t ts_read_stream_to_eof(int fd, uint64_t seed, size_t chunk)
{
	char *buf = malloc(chunk);
	uint64_t off = 0;

	if (!buf)
		ts_fail("malloc");
	for (;;) {
		ssize_t n = recv(fd, buf, chunk, 0);
		long bad;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ts_fail("recv after %llu bytes: %m", (unsigned long long)off);
		if (n == 0)
			break;
		bad = ts_check(seed, off, buf, n);
		if (bad >= 0)
			ts_fail("stream corrupt at byte %llu", (unsigned long long)(off + bad));
		off += n;
	}
	free(buf);
	return off;
}

void ts_send_stream(int fd, uint64_t seed, uint64_t off, uint64_t len, size_t max_chunk,
		    struct ts_rng *rng)
{
	char *buf = malloc(max_chunk);
	uint64_t end = off + len;

	if (!buf)
		ts_fail("malloc");
	while (off < end) {
		size_t n = ts_rand_range(rng, 1, max_chunk);

		if (n > end - off)
			n = end - off;
		ts_fill(seed, off, buf, n);
		ts_write_all(fd, buf, n);
		off += n;
	}
	free(buf);
}

void ts_recv_stream(int fd, uint64_t seed, uint64_t off, uint64_t len, size_t max_chunk,
		    struct ts_rng *rng)
{
	char *buf = malloc(max_chunk);
	uint64_t end = off + len;

	if (!buf)
		ts_fail("malloc");
	while (off < end) {
		size_t want = ts_rand_range(rng, 1, max_chunk);
		ssize_t n;
		long bad;

		if (want > end - off)
			want = end - off;
		n = recv(fd, buf, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ts_fail("recv at stream offset %llu: %m", (unsigned long long)off);
		if (n == 0)
			ts_fail("early EOF at stream offset %llu of %llu", (unsigned long long)off,
				(unsigned long long)end);
		bad = ts_check(seed, off, buf, n);
		if (bad >= 0)
			ts_fail("stream corrupt at byte %llu (read of %zd at %llu)",
				(unsigned long long)(off + bad), n, (unsigned long long)off);
		off += n;
	}
	free(buf);
}

struct ts_xfer {
	int fd;
	uint64_t seed, off, len;
};

static void *ts_xfer_send(void *arg)
{
	struct ts_xfer *x = arg;
	struct ts_rng g = {x->seed ^ x->off};

	ts_send_stream(x->fd, x->seed, x->off, x->len, 65536, &g);
	return NULL;
}

void ts_transfer(int wfd, int rfd, uint64_t seed, uint64_t off, uint64_t len)
{
	struct ts_xfer x = {wfd, seed, off, len};
	struct ts_rng g = {seed ^ len};
	unsigned long t = ts_spawn(ts_xfer_send, &x);

	ts_recv_stream(rfd, seed, off, len, 65536, &g);
	ts_join(t);
}

uint64_t ts_fill_until_eagain(int fd, uint64_t seed, uint64_t off)
{
	static __thread char buf[65536];
	uint64_t start = off;

	for (;;) {
		ssize_t n;

		ts_fill(seed, off, buf, sizeof(buf));
		n = send(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return off - start;
		if (n <= 0)
			ts_fail("non-blocking send after %llu bytes: %m",
				(unsigned long long)(off - start));
		off += n;
		if (off - start > (1ULL << 30))
			ts_fail("1 GiB sent without EAGAIN: no backpressure");
	}
}

void ts_param_set(const char *name, const char *v)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/tcp_splice/parameters/%s", name);
	f = fopen(path, "w");
	if (!f || fputs(v, f) == EOF || fclose(f))
		ts_fail("setting %s to %s: %m", path, v);
}

size_t ts_ring_max(void)
{
	FILE *f = fopen("/sys/module/tcp_splice/parameters/ring_max_kb", "r");
	unsigned long kb = 64;

	if (f) {
		if (fscanf(f, "%lu", &kb) != 1 || kb == 0)
			kb = 64;
		fclose(f);
	}
	return kb * 1024;
}

int ts_inq(int fd)
{
	int n = -1;

	TS_SYS(ioctl(fd, FIONREAD, &n));
	return n;
}

short ts_poll1(int fd, short events, int ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t end = ts_now_us() + (int64_t)ms * 1000;

	for (;;) {
		int left = (int)((end - ts_now_us()) / 1000);
		int rc = poll(&p, 1, left < 0 ? 0 : left);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			ts_fail("poll: %m");
		return rc ? p.revents : 0;
	}
}

void ts_set_nonblock(int fd, bool on)
{
	int fl = TS_SYS(fcntl(fd, F_GETFL));

	TS_SYS(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK));
}

void ts_set_int(int fd, int level, int opt, int v)
{
	if (setsockopt(fd, level, opt, &v, sizeof(v)) < 0)
		ts_fail("setsockopt(%d, %d, %d): %m", level, opt, v);
}

void ts_set_timeo(int fd, int opt, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	TS_SYS(setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)));
}

/* ---- threads ---- */

unsigned long ts_spawn(ts_thread_fn fn, void *arg)
{
	pthread_t t;
	int rc = pthread_create(&t, NULL, fn, arg);

	if (rc)
		ts_fail("pthread_create: %s", strerror(rc));
	return (unsigned long)t;
}

void *ts_join(unsigned long t)
{
	void *ret = NULL;

	pthread_join((pthread_t)t, &ret);
	return ret;
}

/* ---- differential runs ---- */

struct ts_run *ts_run_cur(void)
{
	return ts_cur_run;
}

void ts_note(const char *fmt, ...)
{
	char line[512];
	size_t *len, n;
	va_list ap;

	if (!ts_cur_run)
		ts_fail("ts_note outside a differential run");
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	ts_log("note: %s", line);
	n = strlen(line);
	line[n++] = '\n';
	pthread_mutex_lock(&ts_lock);
	len = &ts_sh->notes_len[ts_cur_slot];
	if (*len + n < TS_NOTES_MAX) {
		memcpy(ts_sh->notes[ts_cur_slot] + *len, line, n);
		*len += n;
	}
	pthread_mutex_unlock(&ts_lock);
}

void ts_expect_spliced(int fd)
{
	struct ts_run *r = ts_cur_run;
	int64_t end = ts_now_us() + 3000000;
	struct ts_conn c;
	int rc;

	if (!r)
		ts_fail("ts_expect_spliced outside a differential run");
	for (;;) {
		rc = ts_conn_of_fd(fd, &c);
		if (!r->splice) {
			if (rc > 0)
				ts_fail("plain-port socket %s -> %s tracked by the module (%s)",
					c.local, c.remote, c.state);
			return;
		}
		if (rc < 0)
			ts_fail("no /proc/net/tcp_splice_conns (module not loaded?)");
		if (rc > 0 && !strcmp(c.state, "paired"))
			return;
		if (ts_now_us() > end)
			break;
		ts_sleep_ms(10);
	}
	if (rc == 0)
		ts_fail("socket on port %d not tracked by the module after 3 s (policy not "
			"attached?)",
			r->port);
	ts_fail("socket %s -> %s is '%s', not paired, after 3 s", c.local, c.remote, c.state);
}

void ts_warm_up(int c, int s)
{
	char b = 'w';

	ts_write_all(c, &b, 1);
	ts_read_full(s, &b, 1);
	ts_write_all(s, &b, 1);
	ts_read_full(c, &b, 1);
}

void ts_pair_cold(int *cli, int *srv)
{
	struct ts_run *r = ts_cur_run;
	int lfd = ts_listen(r->family, r->port);

	*cli = ts_connect(r->family, r->port);
	*srv = ts_accept(lfd, 5000);
	close(lfd);
	ts_expect_spliced(*cli);
	ts_expect_spliced(*srv);
}

void ts_pair_family(int family, int *cli, int *srv)
{
	struct ts_run *r = ts_cur_run;
	int lfd = ts_listen(family, r->port);

	*cli = ts_connect(family, r->port);
	*srv = ts_accept(lfd, 5000);
	close(lfd);
	ts_expect_spliced(*cli);
	ts_expect_spliced(*srv);
	ts_warm_up(*cli, *srv);
}

void ts_pair(int *cli, int *srv)
{
	ts_pair_family(ts_cur_run->family, cli, srv);
}

static int ts_count_lines(const char *s, size_t len)
{
	int n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

static const char *ts_line(const char *s, size_t len, int k, char *out, size_t outn)
{
	size_t i = 0;

	while (k-- > 0) {
		while (i < len && s[i] != '\n')
			i++;
		i++;
	}
	if (i >= len)
		return "<nothing>";
	size_t e = i;

	while (e < len && s[e] != '\n')
		e++;
	snprintf(out, outn, "%.*s", (int)(e - i), s + i);
	return out;
}

void ts_differential(const struct ts_diff *d)
{
	static const char *const labels[2] = {"plain", "spliced"};
	bool plain_only = ts_expect_plain();

	for (int k = 0; k < 2; k++) {
		struct ts_run run = {
			.label = labels[k],
			.family = d->family ? d->family : AF_INET,
			.port = ts_test_port(k == 1, 0),
			.splice = k == 1 && !plain_only,
			.seed = ts_seed(),
			.arg = d->arg,
		};
		const char *want = run.splice ? (d->want ? d->want : TS_WANT_RING)
					      : (d->plain ? d->plain : TS_WANT_NONE);
		struct ts_counters before, after;
		const char *bad;
		int64_t t0 = ts_now_us();

		ts_counters_read(&before);
		ts_cur_run = &run;
		ts_cur_slot = k;
		ts_phase("scenario");
		d->fn(&run);
		ts_phase("counters");
		ts_counters_read(&after);
		bad = ts_counters_check(&before, &after, want);
		if (bad)
			ts_fail("counters: %s", bad);
		/* Every socket of the scenario is closed: no pair or parked end may remain. */
		for (int g = 0; before.present && g < 2; g++) {
			const char *gauge = g ? "parked" : "pairs_active";
			long long b = ts_counter(&before, gauge, NULL);
			long long v = ts_counter_wait(gauge, b, 5000);

			if (v != b)
				ts_fail("%s is %lld 5 s after every socket closed, was %lld before",
					gauge, v, b);
		}
		ts_log("done in %.2f s", (ts_now_us() - t0) / 1e6);
		ts_cur_run = NULL;
	}
	if (d->no_compare)
		return;
	const char *a = ts_sh->notes[0], *b = ts_sh->notes[1];
	size_t la = ts_sh->notes_len[0], lb = ts_sh->notes_len[1];

	if (la == lb && !memcmp(a, b, la))
		return;
	int n = ts_count_lines(a, la) > ts_count_lines(b, lb) ? ts_count_lines(a, la)
							      : ts_count_lines(b, lb);
	for (int i = 0; i < n; i++) {
		char x[512], y[512];
		const char *pa = ts_line(a, la, i, x, sizeof(x));
		const char *pb = ts_line(b, lb, i, y, sizeof(y));

		if (strcmp(pa, pb))
			ts_fail("differs from plain TCP at observation %d: plain '%s', spliced "
				"'%s'",
				i + 1, pa, pb);
	}
	ts_fail("differs from plain TCP (notes)");
}

/* ---- main ---- */

static void ts_usage(const char *prog, const struct ts_test *t, size_t n)
{
	fprintf(stderr,
		"usage: %s [-l] [TEST...]\n  TS_SEED=N repeats a run, TS_EXPECT_PLAIN=1 "
		"expects no splicing, TS_TIMEOUT_SCALE=F scales time limits\ntests:",
		prog);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %s", t[i].name);
	fprintf(stderr, "\n");
}

static bool ts_selected(int argc, char **argv, const char *name)
{
	if (argc <= 1)
		return true;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

static int ts_run_one(int index, const struct ts_test *t, int timeout)
{
	int64_t t0 = ts_now_us(), deadline;
	int status = 0;
	pid_t pid, w;

	memset(ts_sh, 0, sizeof(*ts_sh));
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		printf("FAIL %s: fork: %s\n", t->name, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		ts_cur_test = t;
		ts_cur_index = index;
		ts_test_pid = getpid();
		signal(SIGPIPE, SIG_IGN);
		alarm(timeout);
		t->fn();
		fflush(NULL);
		ts_run_cleanup();
		_exit(0);
	}
	setpgid(pid, pid);
	/* A task stuck in the kernel may ignore even SIGKILL: never wait for ever. */
	deadline = t0 + (int64_t)(timeout + 15) * 1000000;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && ts_now_us() < deadline)
		ts_sleep_ms(20);
	kill(-pid, SIGKILL); /* leftovers of the test: children, helpers */
	double secs = (ts_now_us() - t0) / 1e6;

	fprintf(stderr, "# %s: %.2f s\n", t->name, secs);
	if (w == 0) {
		printf("FAIL %s: hung for %d s and could not be killed (phase: %s)\n", t->name,
		       timeout + 15, ts_sh->phase);
		return 1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !ts_sh->failed) {
		printf("PASS %s\n", t->name);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
		printf("SKIP %s: %s\n", t->name, ts_sh->reason);
		return 0;
	}
	if (ts_sh->failed)
		printf("FAIL %s: %s\n", t->name, ts_sh->reason);
	else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		printf("FAIL %s: timeout after %d s (phase: %s)\n", t->name, timeout, ts_sh->phase);
	else if (WIFSIGNALED(status))
		printf("FAIL %s: killed by signal %d (%s) (phase: %s)\n", t->name, WTERMSIG(status),
		       strsignal(WTERMSIG(status)), ts_sh->phase);
	else
		printf("FAIL %s: exit status %d (phase: %s)\n", t->name, WEXITSTATUS(status),
		       ts_sh->phase);
	return 1;
}

int ts_main(int argc, char **argv, int port_base, const struct ts_test *tests, size_t n)
{
	const char *e = getenv("TS_SEED");
	const char *sc = getenv("TS_TIMEOUT_SCALE");
	double scale = sc ? atof(sc) : 1.0;
	int failed = 0;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		ts_usage(argv[0], tests, n);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "-l")) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", tests[i].name);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		size_t k = 0;

		while (k < n && strcmp(tests[k].name, argv[i]))
			k++;
		if (k == n) {
			fprintf(stderr, "%s: no test '%s'\n", argv[0], argv[i]);
			ts_usage(argv[0], tests, n);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	ts_port_base = port_base;
	ts_prog_seed = e ? strtoull(e, NULL, 0) : ts_mix64((uint64_t)ts_now_us() ^ getpid());
	fprintf(stderr, "# %s: seed %#llx (TS_SEED=%#llx repeats it)%s\n", argv[0],
		(unsigned long long)ts_prog_seed, (unsigned long long)ts_prog_seed,
		ts_expect_plain() ? ", expecting plain TCP" : "");
	ts_sh = mmap(NULL, sizeof(*ts_sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		     0);
	if (ts_sh == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	if (scale <= 0)
		scale = 1.0;
	for (size_t i = 0; i < n; i++) {
		if (!ts_selected(argc, argv, tests[i].name))
			continue;
		int timeout =
			(int)((tests[i].timeout ? tests[i].timeout : TS_DEFAULT_TIMEOUT) * scale);
		failed += ts_run_one((int)i, &tests[i], timeout);
	}
	return failed ? 1 : 0;
}
