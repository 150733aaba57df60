// SPDX-License-Identifier: GPL-2.0
/*
 * ts-scale: 1000 spliced connections open at once, each carrying its own
 * bytes both ways; then 5000 short connections (connect, token, echo, close)
 * from several threads with no error at all.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tsutil.h"

static void raise_nofile(rlim_t want)
{
	struct rlimit rl;

	TS_SYS(getrlimit(RLIMIT_NOFILE, &rl));
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want;
	if (rl.rlim_max < want)
		rl.rlim_max = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		ts_skip("cannot raise RLIMIT_NOFILE to %llu: %m", (unsigned long long)want);
}

/* ---- 1000 at once ---- */

#define CONNS 1000
#define BYTES 1000

static void scen_concurrent(struct ts_run *r)
{
	static int cli[CONNS], srv[CONNS];
	int lfd = ts_listen_at(ts_loopback(r->family), r->port, 1024, 0);
	char buf[BYTES];
	struct ts_counters mid;

	raise_nofile(4 * CONNS + 64);
	ts_phase("connecting %d", CONNS);
	for (int i = 0; i < CONNS; i++) {
		cli[i] = ts_connect(r->family, r->port);
		srv[i] = ts_accept(lfd, 5000);
		ts_warm_up(cli[i], srv[i]);
	}
	close(lfd);
	ts_phase("client writes");
	for (int i = 0; i < CONNS; i++) {
		ts_fill(r->seed + i, 0, buf, BYTES);
		ts_write_all(cli[i], buf, BYTES);
	}
	ts_phase("server reads and echoes");
	for (int i = 0; i < CONNS; i++) {
		ts_read_full(srv[i], buf, BYTES);
		if (ts_check(r->seed + i, 0, buf, BYTES) >= 0)
			ts_fail("connection %d: bytes of another stream or corrupt", i);
		ts_write_all(srv[i], buf, BYTES);
	}
	ts_phase("clients read");
	for (int i = 0; i < CONNS; i++) {
		ts_read_full(cli[i], buf, BYTES);
		if (ts_check(r->seed + i, 0, buf, BYTES) >= 0)
			ts_fail("connection %d: echo corrupt", i);
	}
	/* Every one of them spliced while all are open. */
	int paired = ts_conns_count("paired", r->port);

	if (r->splice) {
		TS_ASSERT(paired == 2 * CONNS, "%d of %d sockets listed as paired", paired,
			  2 * CONNS);
		TS_ASSERT(ts_counters_read(&mid), "no counters");
		long long active = ts_counter(&mid, "pairs_active", NULL);

		TS_ASSERT(active >= CONNS, "pairs_active %lld with %d pairs open", active, CONNS);
	} else {
		TS_ASSERT(paired <= 0, "%d plain-port sockets listed as paired", paired);
	}
	ts_phase("closing");
	for (int i = 0; i < CONNS; i++) {
		close(cli[i]);
		close(srv[i]);
	}
	ts_note("%d concurrent connections verified", CONNS);
}

static void t_concurrent_1000(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_concurrent,
		.want = "pairs_total>=1000 handoffs>=1000 ring_bytes_tx>=2000000",
	});
}

/* ---- churn ---- */

#define CHURN	       5000
#define CLIENT_THREADS 8
#define SERVER_THREADS 4

struct churn {
	struct ts_run *r;
	int lfd;
	atomic_int next, served;
};

static void *churn_server(void *arg)
{
	struct churn *k = arg;
	char tok[16], b;

	while (atomic_load(&k->served) < CHURN) {
		int s = ts_accept(k->lfd, 20000);

		ts_read_full(s, tok, sizeof(tok));
		ts_write_all(s, tok, sizeof(tok));
		ssize_t n = recv(s, &b, 1, 0);

		if (n != 0)
			ts_fail("server: expected EOF after the token, got %zd (%m)", n);
		close(s);
		atomic_fetch_add(&k->served, 1);
	}
	return NULL;
}

static void *churn_client(void *arg)
{
	struct churn *k = arg;
	char tok[16], back[16];
	int i;

	while ((i = atomic_fetch_add(&k->next, 1)) < CHURN) {
		int c = ts_connect(k->r->family, k->r->port);

		ts_fill(k->r->seed, (uint64_t)i * sizeof(tok), tok, sizeof(tok));
		ts_write_all(c, tok, sizeof(tok));
		ts_read_full(c, back, sizeof(back));
		if (memcmp(tok, back, sizeof(tok)))
			ts_fail("connection %d: echoed token differs", i);
		close(c);
	}
	return NULL;
}

static void scen_churn(struct ts_run *r)
{
	struct churn k = {.r = r};
	unsigned long ts[SERVER_THREADS], tc[CLIENT_THREADS];

	raise_nofile(1024);
	k.lfd = ts_listen_at(ts_loopback(r->family), r->port, 1024, 0);
	ts_phase("churn");
	for (int i = 0; i < SERVER_THREADS; i++)
		ts[i] = ts_spawn(churn_server, &k);
	for (int i = 0; i < CLIENT_THREADS; i++)
		tc[i] = ts_spawn(churn_client, &k);
	for (int i = 0; i < CLIENT_THREADS; i++)
		ts_join(tc[i]);
	/* Servers wait in poll() for connections that will not come: cancel them there. */
	while (atomic_load(&k.served) < CHURN)
		ts_sleep_ms(10);
	for (int i = 0; i < SERVER_THREADS; i++)
		pthread_cancel((pthread_t)ts[i]);
	for (int i = 0; i < SERVER_THREADS; i++)
		ts_join(ts[i]);
	close(k.lfd);
	ts_note("%d connections, no error", CHURN);
}

static void t_churn_5000(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_churn,
		.want = "pairs_total>=5000 handoffs>=1 ring_bytes_tx>0",
	});
}

static const struct ts_test tests[] = {
	{"concurrent-1000", t_concurrent_1000, 0},
	{"churn-5000", t_churn_5000, 0},
};

int main(int argc, char **argv)
{
	return ts_main(argc, argv, 1200, tests, sizeof(tests) / sizeof(tests[0]));
}
