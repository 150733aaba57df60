// SPDX-License-Identifier: GPL-2.0
/*
 * ts-mass: many spliced connections.
 *
 *   ts-mass hold N [PORT]            N connections open at once, each carrying
 *                                    its own bytes both ways, all listed as
 *                                    paired while open; then all closed
 *   ts-mass churn N THREADS [PORT]   N short connections (connect, bytes and
 *                                    echo twice, the second time through
 *                                    rings, close) from THREADS threads
 *   ts-mass memcg N CGROUP [MARGIN_KB]  run inside the cgroup v2 directory
 *                                    CGROUP: N connections made first, then
 *                                    memory.max set to memory.current + MARGIN,
 *                                    then bytes both ways on each: the rings'
 *                                    allocations hit the limit and must fail
 *                                    (counted, the connection stays TCP) with
 *                                    no error and no OOM kill
 *
 * Every byte is checked against its connection's own stream.  Afterwards the
 * module's counters must show N new pairs and the live gauges must drain to
 * zero.  Prints the figures; exit status 0 only if all held.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tsutil.h"

#define BYTES 512

static long long cval(const struct ts_counters *c, const char *name)
{
	bool f;
	long long v = ts_counter(c, name, &f);

	return f ? v : 0;
}

static void raise_nofile(rlim_t want)
{
	struct rlimit rl = {want, want};

	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		ts_fail("cannot raise RLIMIT_NOFILE to %llu: %m", (unsigned long long)want);
}

/* Checks that the gauges drain to 0 within 30 s; returns false otherwise. */
static bool drained(void)
{
	static const char *const g[] = {"pairs_active", "parked", "global_chan_live",
					"global_ring_live", "global_ring_bytes"};

	for (int i = 0; i < 300; i++) {
		struct ts_counters c;
		bool busy = false;

		if (!ts_counters_read(&c))
			return true;
		for (size_t k = 0; k < sizeof(g) / sizeof(g[0]); k++)
			if (cval(&c, g[k]))
				busy = true;
		if (!busy)
			return true;
		if (i == 299) {
			printf("FAIL gauges not back to 0 30 s after the last close:");
			for (size_t k = 0; k < sizeof(g) / sizeof(g[0]); k++)
				printf(" %s=%lld", g[k], cval(&c, g[k]));
			printf("\n");
		}
		ts_sleep_ms(100);
	}
	return false;
}

static void exchange(int c, int s, uint64_t seed)
{
	char buf[BYTES];

	ts_fill(seed, 0, buf, BYTES);
	ts_write_all(c, buf, BYTES);
	ts_read_full(s, buf, BYTES);
	if (ts_check(seed, 0, buf, BYTES) >= 0)
		ts_fail("connection of seed %llu: bytes of another stream or corrupt",
			(unsigned long long)seed);
	ts_fill(~seed, 0, buf, BYTES);
	ts_write_all(s, buf, BYTES);
	ts_read_full(c, buf, BYTES);
	if (ts_check(~seed, 0, buf, BYTES) >= 0)
		ts_fail("connection of seed %llu: reply corrupt", (unsigned long long)seed);
}

static int hold(long n, int port)
{
	int *cli = calloc(n, sizeof(int)), *srv = calloc(n, sizeof(int));
	struct ts_counters before, mid, after;
	int64_t t0 = ts_now_us();
	int lfd, paired;
	long long pairs, active;
	bool ok = true;

	if (!cli || !srv)
		ts_fail("calloc");
	raise_nofile(2 * n + 256);
	ts_counters_read(&before);
	lfd = ts_listen_at("127.0.0.1", port, 4096, 0);
	for (long i = 0; i < n; i++) {
		cli[i] = ts_connect(AF_INET, port);
		srv[i] = ts_accept(lfd, 30000);
		/* Bytes both ways: each direction hands over to its ring. */
		exchange(cli[i], srv[i], 1000003ULL * i);
	}
	close(lfd);
	/* Once more on all of them at once, through the rings. */
	for (long i = 0; i < n; i++)
		exchange(cli[i], srv[i], 7000001ULL * i + 1);
	paired = ts_conns_count("paired", port);
	ts_counters_read(&mid);
	active = cval(&mid, "pairs_active") - cval(&before, "pairs_active");
	printf("hold: %ld connections open, %d sockets listed as paired, pairs_active +%lld, "
	       "ring_bytes_tx +%lld, %.1f s\n",
	       n, paired, active, cval(&mid, "ring_bytes_tx") - cval(&before, "ring_bytes_tx"),
	       (ts_now_us() - t0) / 1e6);
	if (mid.present && (paired != 2 * n || active != n)) {
		printf("FAIL hold: %d of %ld sockets paired, pairs_active +%lld of %ld\n", paired,
		       2 * n, active, n);
		ok = false;
	}
	if (mid.present &&
	    cval(&mid, "ring_bytes_tx") - cval(&before, "ring_bytes_tx") < (long long)n * BYTES) {
		printf("FAIL hold: ring_bytes_tx +%lld, less than the %ld bytes of the second "
		       "exchange\n",
		       cval(&mid, "ring_bytes_tx") - cval(&before, "ring_bytes_tx"),
		       (long)n * BYTES);
		ok = false;
	}
	for (long i = 0; i < n; i++) {
		close(cli[i]);
		close(srv[i]);
	}
	if (!drained())
		ok = false;
	ts_counters_read(&after);
	pairs = cval(&after, "pairs_total") - cval(&before, "pairs_total");
	printf("hold: pairs_total +%lld, bytes %ld, closed and drained: %s\n", pairs,
	       4L * n * BYTES, ok ? "yes" : "no");
	return ok ? 0 : 1;
}

struct churn {
	int port;
	long n;
	uint64_t seed;
	pthread_t t;
};

static atomic_long churned;

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	int lfd = ts_listen_at("127.0.0.1", c->port, 128, 0);

	for (long i = 0; i < c->n; i++) {
		int cl = ts_connect(AF_INET, c->port), sv = ts_accept(lfd, 30000);

		/* The second exchange goes through rings: each one made and freed. */
		exchange(cl, sv, c->seed + (uint64_t)i);
		exchange(cl, sv, ~(c->seed + (uint64_t)i));
		/* Alternate who closes first: TIME_WAIT on either side. */
		if (i & 1) {
			close(cl);
			close(sv);
		} else {
			close(sv);
			close(cl);
		}
		atomic_fetch_add(&churned, 1);
	}
	close(lfd);
	return NULL;
}

static int churn(long n, int threads, int port)
{
	struct churn *cs = calloc(threads, sizeof(*cs));
	struct ts_counters before, after;
	int64_t t0 = ts_now_us();
	long long pairs;
	bool ok;

	if (!cs)
		ts_fail("calloc");
	ts_counters_read(&before);
	for (int t = 0; t < threads; t++) {
		cs[t].port = port + t;
		cs[t].n = n / threads + (t < n % threads);
		cs[t].seed = (uint64_t)t << 40;
		pthread_create(&cs[t].t, NULL, churn_thread, &cs[t]);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(cs[t].t, NULL);
	ok = drained();
	ts_counters_read(&after);
	pairs = cval(&after, "pairs_total") - cval(&before, "pairs_total");
	printf("churn: %ld connections from %d threads in %.1f s, pairs_total +%lld, "
	       "ring_bytes_tx +%lld, bytes %ld\n",
	       atomic_load(&churned), threads, (ts_now_us() - t0) / 1e6, pairs,
	       cval(&after, "ring_bytes_tx") - cval(&before, "ring_bytes_tx"), 4L * n * BYTES);
	if (after.present && pairs != n) {
		printf("FAIL churn: %lld pairs for %ld connections\n", pairs, n);
		ok = false;
	}
	if (after.present &&
	    cval(&after, "ring_bytes_tx") - cval(&before, "ring_bytes_tx") < (long long)n * BYTES) {
		printf("FAIL churn: ring_bytes_tx +%lld, less than one exchange per connection\n",
		       cval(&after, "ring_bytes_tx") - cval(&before, "ring_bytes_tx"));
		ok = false;
	}
	return ok ? 0 : 1;
}

static long long read_ll(const char *dir, const char *file)
{
	char path[512];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	if (!f)
		ts_fail("%s: %m", path);
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static void write_str(const char *dir, const char *file, const char *v)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "w");
	if (!f || fputs(v, f) < 0 || fclose(f) != 0)
		ts_fail("writing '%s' to %s: %m", v, path);
}

static int memcg(long n, const char *cg, long margin_kb)
{
	int *cli = calloc(n, sizeof(int)), *srv = calloc(n, sizeof(int));
	struct ts_counters before, after;
	long long cur, fails, ring;
	char v[64];
	int lfd;
	bool ok = true;

	if (!cli || !srv)
		ts_fail("calloc");
	raise_nofile(2 * n + 256);
	/* Everything this process needs exists before the limit: sockets, memory. */
	lfd = ts_listen_at("127.0.0.1", TS_PORT_SPLICED + 9200, 4096, 0);
	for (long i = 0; i < n; i++) {
		cli[i] = ts_connect(AF_INET, TS_PORT_SPLICED + 9200);
		srv[i] = ts_accept(lfd, 30000);
	}
	close(lfd);
	/* One exchange over TCP first: after it, the next sends ask for rings. */
	for (long i = 0; i < n; i++)
		exchange(cli[i], srv[i], 3000017ULL * i + 2);
	ts_counters_read(&before);
	/*
	 * No page fault after the limit (text, stack, heap): those would be
	 * the process's own allocations, and the memcg may OOM-kill for them.
	 */
	{
		volatile char stack[256 * 1024];

		for (size_t i = 0; i < sizeof(stack); i += 4096)
			stack[i] = 1;
	}
	if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
		ts_fail("mlockall: %m");
	cur = read_ll(cg, "memory.current");
	snprintf(v, sizeof(v), "%lld", cur + margin_kb * 1024);
	write_str(cg, "memory.max", v);
	printf("memcg: %ld connections made, memory.current %lld, memory.max set to %s\n", n, cur,
	       v);
	/* At the limit: the rings are refused, TCP carries the bytes. */
	for (long i = 0; i < n; i++)
		exchange(cli[i], srv[i], 1000003ULL * i);
	for (long i = 0; i < n; i++)
		exchange(cli[i], srv[i], 7000001ULL * i + 1);
	ts_counters_read(&after);
	write_str(cg, "memory.max", "max");
	fails = cval(&after, "ring_alloc_fail") - cval(&before, "ring_alloc_fail");
	ring = cval(&after, "ring_bytes_tx") - cval(&before, "ring_bytes_tx");
	printf("memcg: all bytes intact; ring_alloc_fail +%lld, ring_bytes_tx +%lld, "
	       "memory.current %lld\n",
	       fails, ring, read_ll(cg, "memory.current"));
	if (after.present && fails <= 0) {
		printf("FAIL memcg: no ring allocation failed: the limit was not reached\n");
		ok = false;
	}
	for (long i = 0; i < n; i++) {
		close(cli[i]);
		close(srv[i]);
	}
	if (!drained())
		ok = false;
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "hold")) {
		long n = atol(argv[2]);
		int port = argc > 3 ? atoi(argv[3]) : TS_PORT_SPLICED + 9000;

		if (n > 0)
			return hold(n, port);
	} else if (argc >= 4 && !strcmp(argv[1], "churn")) {
		long n = atol(argv[2]);
		int threads = atoi(argv[3]);
		int port = argc > 4 ? atoi(argv[4]) : TS_PORT_SPLICED + 9100;

		if (n > 0 && threads > 0 && threads <= 64)
			return churn(n, threads, port);
	} else if (argc >= 4 && !strcmp(argv[1], "memcg")) {
		long n = atol(argv[2]);
		long margin = argc > 4 ? atol(argv[4]) : 64;

		if (n > 0 && margin >= 0)
			return memcg(n, argv[3], margin);
	}
	fprintf(stderr, "usage: ts-mass hold N [PORT] | ts-mass churn N THREADS [PORT] | "
			"ts-mass memcg N CGROUP [MARGIN_KB]\n");
	return 2;
}
