/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-splice VM tests: the small library every test program shares.
 *
 * A program is a table of tests run by ts_main(), each in its own process
 * with an alarm, so that a hang or a crash fails one test only.  Semantic
 * tests are differential: ts_differential() runs one scenario over a plain
 * port (20000-29999) and then over a spliced one (10000-19999); what each run
 * observed (ts_note) must be identical, and the module's counters must have
 * moved in the spliced run only.  TS_EXPECT_PLAIN=1 expects plain TCP on both.
 */
#ifndef TS_UTIL_H
#define TS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TS_PORT_SPLICED 10000
#define TS_PORT_PLAIN	20000

/* Counter expectations, "name OP value" separated by spaces (OP: = > >= < <=). */
#define TS_WANT_RING "pairs_total>=1 handoffs>=1 ring_bytes_tx>0"
#define TS_WANT_NONE "pairs_total=0 handoffs=0 ring_bytes_tx=0 startup_bytes=0"

/* ---- test table and reporting ---- */

struct ts_test {
	const char *name;
	void (*fn)(void);
	int timeout; /* seconds, 0: the default (60) */
};

int ts_main(int argc, char **argv, int port_base, const struct ts_test *tests, size_t n);

/* Fail the running test: records the first reason and ends its process. */
void ts_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void ts_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Called once when the test's own process ends, passing or failing (not on a timeout). */
void ts_cleanup(void (*fn)(void));
/* What the test is doing now: reported if it times out. */
void ts_phase(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Diagnostics on stderr ("# ..."), never parsed. */
void ts_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TS_ASSERT(cond, ...)                                                                       \
	do {                                                                                       \
		if (!(cond))                                                                       \
			ts_fail(__VA_ARGS__);                                                      \
	} while (0)

/* A system call that must succeed. */
#define TS_SYS(call)                                                                               \
	({                                                                                         \
		long ts_sys_rc_ = (long)(call);                                                    \
		if (ts_sys_rc_ < 0)                                                                \
			ts_fail("%s:%d: %s: %m", __FILE__, __LINE__, #call);                       \
		ts_sys_rc_;                                                                        \
	})

/* Port slot of the running test: ts_port(r, k) below for differential runs. */
int ts_test_port(bool spliced, int k);
bool ts_expect_plain(void);

/* ---- seeded PRNG, stream contents, checksum ---- */

struct ts_rng {
	uint64_t s;
};

uint64_t ts_seed(void); /* of the running test, derived from the printed program seed */
void ts_rng_init(struct ts_rng *r, uint64_t seed);
uint64_t ts_rand(struct ts_rng *r);
/* Uniform in [lo, hi]. */
uint64_t ts_rand_range(struct ts_rng *r, uint64_t lo, uint64_t hi);
uint64_t ts_mix64(uint64_t x);

/* Byte i of stream `seed` is a function of (seed, i): any slice can be checked. */
void ts_fill(uint64_t seed, uint64_t off, void *buf, size_t len);
/* Index of the first byte differing from the stream, or -1. */
long ts_check(uint64_t seed, uint64_t off, const void *buf, size_t len);

/* 64-bit FNV-1a; chain calls with the previous value, start with TS_SUM_INIT. */
#define TS_SUM_INIT 0xcbf29ce484222325ULL
uint64_t ts_sum64(uint64_t h, const void *buf, size_t len);

/* ---- time ---- */

int64_t ts_now_us(void);
void ts_sleep_ms(int ms);

/* ---- counters (/proc/net/tcp_splice) and listing (/proc/net/tcp_splice_conns) ---- */

#define TS_MAX_COUNTERS 64

struct ts_counters {
	bool present;
	int n;
	struct {
		char name[40];
		long long v;
	} e[TS_MAX_COUNTERS];
};

/* Reads the counters of the caller's network namespace; false if the file is absent. */
bool ts_counters_read(struct ts_counters *c);
/* Value of one counter, or -1 with *found false. */
long long ts_counter(const struct ts_counters *c, const char *name, bool *found);
/*
 * Checks after - before against a spec (TS_WANT_*); returns NULL if it holds,
 * else a static description of what did not.
 */
const char *ts_counters_check(const struct ts_counters *before, const struct ts_counters *after,
			      const char *spec);
/* Polls until `name` equals `value` (a gauge draining), up to ms; returns the last value. */
long long ts_counter_wait(const char *name, long long value, int ms);

struct ts_conn {
	char state[16];
	char local[64];
	char remote[64];
	unsigned long long inode;
	unsigned long long ring_tx, ring_rx, rx_fill, rx_size;
};

/* The listing entry of a socket: 1 found, 0 not tracked, -1 no listing. */
int ts_conn_of_fd(int fd, struct ts_conn *out);
/* Number of listed sockets in `state` whose local or remote port is `port`. */
int ts_conns_count(const char *state, int port);

/* ---- sockets ---- */

/* Listening socket on the loopback address of `family`, SO_REUSEADDR. */
int ts_listen(int family, int port);
int ts_listen_at(const char *addr, int port, int backlog, int defer_accept_s);
int ts_connect(int family, int port);
/* Connects to addr:port, bound first to bind_addr:bind_port if bind_addr is set. */
int ts_connect_at(const char *addr, int port, const char *bind_addr, int bind_port);
/* Accepts within ms or fails. */
int ts_accept(int lfd, int ms);
const char *ts_loopback(int family);

ssize_t ts_write_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes or fails (EOF or error). */
void ts_read_full(int fd, void *buf, size_t len);
/* Reads until EOF; returns the byte count, checking the contents against stream seed. */
uint64_t ts_read_stream_to_eof(int fd, uint64_t seed, size_t chunk);
/* Sends len bytes of stream seed starting at off, in random write sizes up to max_chunk. */
void ts_send_stream(int fd, uint64_t seed, uint64_t off, uint64_t len, size_t max_chunk,
		    struct ts_rng *rng);
/* Receives exactly len bytes of stream seed from off, random read sizes. */
void ts_recv_stream(int fd, uint64_t seed, uint64_t off, uint64_t len, size_t max_chunk,
		    struct ts_rng *rng);
/*
 * Sends len bytes of stream seed from off on wfd (in a thread) while reading
 * and checking them on rfd: never relies on buffer or ring capacity.
 */
void ts_transfer(int wfd, int rfd, uint64_t seed, uint64_t off, uint64_t len);
/* Fills the path towards the peer until a non-blocking send gets EAGAIN; returns bytes. */
uint64_t ts_fill_until_eagain(int fd, uint64_t seed, uint64_t off);
/* Writes the module parameter NAME (sysfs); fails the test if it cannot. */
void ts_param_set(const char *name, const char *v);
/* Largest ring of the module in bytes (parameter ring_max_kb; 64 KiB if unknown). */
size_t ts_ring_max(void);
/* Readable byte count (FIONREAD). */
int ts_inq(int fd);
/* Waits for poll events on fd; returns revents (0 on timeout). */
short ts_poll1(int fd, short events, int ms);
void ts_set_nonblock(int fd, bool on);
void ts_set_int(int fd, int level, int opt, int v);
void ts_set_timeo(int fd, int opt, int ms);

/* ---- threads ---- */

typedef void *(*ts_thread_fn)(void *);
unsigned long ts_spawn(ts_thread_fn fn, void *arg);
void *ts_join(unsigned long t);

/* ---- differential runs ---- */

struct ts_run {
	const char *label; /* "plain" or "spliced" */
	int family;
	int port;      /* server port of this run; port + 1 .. + 7 are free too */
	bool splice;   /* this run is expected to be spliced */
	uint64_t seed; /* equal in both runs */
	void *arg;
};

typedef void (*ts_scenario_fn)(struct ts_run *r);

struct ts_diff {
	ts_scenario_fn fn;
	void *arg;
	int family;	   /* AF_INET if 0 */
	const char *want;  /* spliced run's counters, TS_WANT_RING if NULL */
	const char *plain; /* plain run's counters, TS_WANT_NONE if NULL */
	bool no_compare;   /* the runs legitimately differ: notes are not compared */
};

void ts_differential(const struct ts_diff *d);
/* The run in progress (for helpers and threads). */
struct ts_run *ts_run_cur(void);
/* Records an observation; both runs' notes must be equal. Thread-safe. */
void ts_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * For a socket of the run: spliced runs wait (up to 3 s) until the module
 * lists it as paired, plain runs check the module does not track it.
 */
void ts_expect_spliced(int fd);
/*
 * One byte each way, each read by the other end.  The module hands a
 * direction over to the ring only once its receiver has entered recvmsg, so
 * after this every later send of either end goes through the ring.
 */
void ts_warm_up(int c, int s);
/*
 * Connected pair on the run's port (listener closed), checked with
 * ts_expect_spliced, warmed up.
 */
void ts_pair(int *cli, int *srv);
/* Same, with the run's family overridden. */
void ts_pair_family(int family, int *cli, int *srv);
/* Not warmed up: both directions still in their start-up window. */
void ts_pair_cold(int *cli, int *srv);

#endif /* TS_UTIL_H */
