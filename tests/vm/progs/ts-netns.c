// SPDX-License-Identifier: GPL-2.0
/*
 * ts-netns: network namespaces.  Two namespaces joined by veth and a bridge
 * (the container case) are spliced across the namespaces, over IPv4 and IPv6;
 * two topologies with identical addresses and ports, used at the same time,
 * never pair with each other (each stream's checksum, per-namespace counters).
 * Topologies are built with ip(8); namespaces are named tsn-*.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsutil.h"

#define XFER (1u << 20)

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		ts_fail("'%s' failed (status %d)", cmd, rc);
}

static void delete_namespaces(void)
{
	if (system("for n in $(ip netns list 2>/dev/null | awk '/^tsn-/ { print $1 }'); do "
		   "ip netns delete $n; done") != 0)
		fprintf(stderr, "# deleting the tsn-* namespaces failed\n");
}

static void enter(const char *ns)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		ts_fail("open %s: %m", path);
	if (setns(fd, CLONE_NEWNET) < 0)
		ts_fail("setns %s: %m", ns);
	close(fd);
}

/* Shared between the test and the processes it runs in the namespaces. */
struct shm {
	atomic_int ready; /* servers listening */
	atomic_int go;	  /* clients may connect */
	struct ts_counters ctr[1];
};

static struct shm *shm;

static void counters_of(const char *ns, struct ts_counters *out)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		enter(ns);
		ts_counters_read(&shm->ctr[0]);
		_exit(0);
	}
	TS_SYS(waitpid(pid, &st, 0));
	TS_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reading the counters of %s failed", ns);
	*out = shm->ctr[0];
}

/* One end of a test connection, run in a namespace by a child process. */
struct end {
	const char *ns;
	const char *addr; /* server: listen address; client: server's address */
	const char *bind; /* client: local address to bind, with bind_port */
	int port, bind_port;
	uint64_t seed;
};

static void server(const struct end *e)
{
	int lfd, s;

	enter(e->ns);
	lfd = ts_listen_at(e->addr, e->port, 16, 0);
	atomic_fetch_add(&shm->ready, 1);
	s = ts_accept(lfd, 20000);
	close(lfd);
	ts_expect_spliced(s);
	/* The counterpart of ts_warm_up() in the client. */
	char w;

	ts_read_full(s, &w, 1);
	ts_write_all(s, &w, 1);
	/* Client->server stream, then the server's own stream back. */
	ts_recv_stream(s, e->seed, 0, XFER, 65536, &(struct ts_rng){e->seed});
	ts_send_stream(s, e->seed ^ 1, 0, XFER, 65536, &(struct ts_rng){e->seed});
	char b;

	TS_ASSERT(recv(s, &b, 1, 0) == 0, "server in %s: no EOF", e->ns);
	close(s);
}

static void client(const struct end *e)
{
	int64_t end = ts_now_us() + 10000000;
	int c;

	enter(e->ns);
	while (!atomic_load(&shm->go)) {
		if (ts_now_us() > end)
			ts_fail("client in %s: never started", e->ns);
		ts_sleep_ms(1);
	}
	c = ts_connect_at(e->addr, e->port, e->bind, e->bind_port);
	ts_expect_spliced(c);
	char w = 'w';

	ts_write_all(c, &w, 1);
	ts_read_full(c, &w, 1);
	ts_send_stream(c, e->seed, 0, XFER, 65536, &(struct ts_rng){e->seed});
	ts_recv_stream(c, e->seed ^ 1, 0, XFER, 65536, &(struct ts_rng){e->seed});
	close(c);
}

static pid_t spawn_end(void (*fn)(const struct end *), const struct end *e)
{
	pid_t pid = fork();

	if (pid < 0)
		ts_fail("fork: %m");
	if (pid == 0) {
		fn(e);
		_exit(0);
	}
	return pid;
}

/*
 * Runs n connections at the same time, conn i from ends[2i] (server) to
 * ends[2i+1] (client); each checks its own streams.
 */
static void run_connections(const struct end *ends, int n)
{
	pid_t pid[16];
	int64_t end = ts_now_us() + 10000000;

	atomic_store(&shm->ready, 0);
	atomic_store(&shm->go, 0);
	for (int i = 0; i < n; i++) {
		pid[2 * i] = spawn_end(server, &ends[2 * i]);
		pid[2 * i + 1] = spawn_end(client, &ends[2 * i + 1]);
	}
	while (atomic_load(&shm->ready) < n) {
		if (ts_now_us() > end)
			ts_fail("servers not listening after 10 s");
		ts_sleep_ms(5);
	}
	atomic_store(&shm->go, 1);
	for (int i = 0; i < 2 * n; i++) {
		int st;

		TS_SYS(waitpid(pid[i], &st, 0));
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			ts_fail("%s in %s failed (status %#x)", i % 2 ? "client" : "server",
				ends[i].ns, st);
	}
}

/*
 * Counters of the namespaces in `ns` (NULL-terminated) between two
 * snapshots: each group of namespaces (a connection's two ends) must show a
 * pair and ring bytes when spliced, nothing otherwise.
 */
static void check_group(struct ts_run *r, const struct ts_counters *before,
			const struct ts_counters *after, const char *const *ns, int n)
{
	long long pairs = 0, ring = 0, handoffs = 0;

	for (int i = 0; i < n; i++) {
		if (!after[i].present) {
			TS_ASSERT(!r->splice, "no /proc/net/tcp_splice in %s", ns[i]);
			continue;
		}
		pairs += ts_counter(&after[i], "pairs_total", NULL) -
			 ts_counter(&before[i], "pairs_total", NULL);
		ring += ts_counter(&after[i], "ring_bytes_tx", NULL) -
			ts_counter(&before[i], "ring_bytes_tx", NULL);
		handoffs += ts_counter(&after[i], "handoffs", NULL) -
			    ts_counter(&before[i], "handoffs", NULL);
	}
	if (r->splice)
		TS_ASSERT(pairs >= 1 && ring >= 2 * XFER && handoffs >= 2,
			  "counters of %s+%s: pairs_total %+lld, ring_bytes_tx %+lld, handoffs "
			  "%+lld",
			  ns[0], ns[1], pairs, ring, handoffs);
	else
		TS_ASSERT(pairs == 0 && ring == 0 && handoffs == 0,
			  "plain port, yet counters of %s+%s moved: pairs_total %+lld, "
			  "ring_bytes_tx %+lld",
			  ns[0], ns[1], pairs, ring);
}

/* ---- topologies ---- */

/* Namespaces tsn-<tag>a and tsn-<tag>b joined through a bridge in tsn-<tag>br. */
static void bridged(const char *tag, const char *a4, const char *b4, const char *a6, const char *b6)
{
	sh("ip netns add tsn-%sa && ip netns add tsn-%sb && ip netns add tsn-%sbr", tag, tag, tag);
	sh("ip -n tsn-%sbr link add br0 type bridge && ip -n tsn-%sbr link set br0 up", tag, tag);
	for (int i = 0; i < 2; i++) {
		const char *side = i ? "b" : "a";

		sh("ip link add eth0 netns tsn-%s%s type veth peer name p%s netns tsn-%sbr", tag,
		   side, side, tag);
		sh("ip -n tsn-%sbr link set p%s master br0 && ip -n tsn-%sbr link set p%s up", tag,
		   side, tag, side);
		sh("ip -n tsn-%s%s addr add %s/24 dev eth0 && ip -n tsn-%s%s -6 addr add %s/64 "
		   "dev eth0 nodad",
		   tag, side, i ? b4 : a4, tag, side, i ? b6 : a6);
		sh("ip -n tsn-%s%s link set eth0 up && ip -n tsn-%s%s link set lo up", tag, side,
		   tag, side);
	}
}

static void topology_cleanup(void)
{
	delete_namespaces();
}

static void setup(void)
{
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		ts_fail("mmap: %m");
	ts_cleanup(topology_cleanup);
	delete_namespaces();
}

/* ---- tests ---- */

static void scen_bridged(struct ts_run *r)
{
	bool v6 = *(bool *)r->arg;
	const char *const ns[] = {"tsn-xa", "tsn-xb"};
	const char *srv = v6 ? "fd00:7a::1" : "10.122.0.1";
	struct end ends[2] = {
		{.ns = ns[0], .addr = srv, .port = r->port, .seed = r->seed},
		{.ns = ns[1], .addr = srv, .port = r->port, .seed = r->seed},
	};
	struct ts_counters before[2], after[2];

	for (int i = 0; i < 2; i++)
		counters_of(ns[i], &before[i]);
	run_connections(ends, 1);
	for (int i = 0; i < 2; i++)
		counters_of(ns[i], &after[i]);
	check_group(r, before, after, ns, 2);
	ts_note("%u bytes each way across namespaces", XFER);
}

static void bridged_test(bool v6)
{
	setup();
	bridged("x", "10.122.0.1", "10.122.0.2", "fd00:7a::1", "fd00:7a::2");
	ts_differential(&(struct ts_diff){.fn = scen_bridged, .arg = &v6, .want = "", .plain = ""});
}

static void t_bridged_v4(void)
{
	bridged_test(false);
}

static void t_bridged_v6(void)
{
	bridged_test(true);
}

/*
 * Two bridged topologies with the same addresses, and the client bound to the
 * same port in both: the two connections have identical 4-tuples.
 */
static void scen_twins(struct ts_run *r)
{
	const char *kind = r->arg;
	bool loop = !strcmp(kind, "loopback");
	bool v6 = !strcmp(kind, "v6");
	const char *const ns[4] = {
		loop ? "tsn-l1" : "tsn-1a",
		loop ? "tsn-l1" : "tsn-1b",
		loop ? "tsn-l2" : "tsn-2a",
		loop ? "tsn-l2" : "tsn-2b",
	};
	const char *srv = loop ? "127.0.0.1" : v6 ? "fd00:7b::1" : "10.123.0.1";
	const char *cli = loop ? "127.0.0.1" : v6 ? "fd00:7b::2" : "10.123.0.2";
	struct end ends[4];
	struct ts_counters before[4], after[4];

	for (int i = 0; i < 4; i++) {
		/* Different bytes per topology: a cross-pairing shows as corruption. */
		ends[i] = (struct end){.ns = ns[i],
				       .addr = srv,
				       .port = r->port,
				       .seed = r->seed + (uint64_t)(i / 2)};
		if (i % 2) {
			ends[i].bind = cli;
			ends[i].bind_port = r->port + 1;
		}
	}
	for (int i = 0; i < 4; i++)
		counters_of(ns[i], &before[i]);
	run_connections(ends, 2);
	for (int i = 0; i < 4; i++)
		counters_of(ns[i], &after[i]);
	if (loop) {
		/* One namespace per connection: check each on its own. */
		const char *const g1[] = {ns[0], ns[0]}, *const g2[] = {ns[2], ns[2]};
		struct ts_counters nb[2] = {before[0], before[2]}, na[2] = {after[0], after[2]};

		check_group(r, &nb[0], &na[0], g1, 1);
		check_group(r, &nb[1], &na[1], g2, 1);
	} else {
		check_group(r, &before[0], &after[0], ns, 2);
		check_group(r, &before[2], &after[2], ns + 2, 2);
	}
	ts_note("two connections with identical tuples, each stream intact");
}

static void twins_test(const char *kind)
{
	setup();
	if (!strcmp(kind, "loopback")) {
		sh("ip netns add tsn-l1 && ip netns add tsn-l2");
		sh("ip -n tsn-l1 link set lo up && ip -n tsn-l2 link set lo up");
	} else {
		bridged("1", "10.123.0.1", "10.123.0.2", "fd00:7b::1", "fd00:7b::2");
		bridged("2", "10.123.0.1", "10.123.0.2", "fd00:7b::1", "fd00:7b::2");
	}
	ts_differential(
		&(struct ts_diff){.fn = scen_twins, .arg = (void *)kind, .want = "", .plain = ""});
}

static void t_twins_loopback(void)
{
	twins_test("loopback");
}

static void t_twins_bridged_v4(void)
{
	twins_test("v4");
}

static void t_twins_bridged_v6(void)
{
	twins_test("v6");
}

static const struct ts_test tests[] = {
	{"bridged-v4", t_bridged_v4, 0},
	{"bridged-v6", t_bridged_v6, 0},
	{"twins-loopback", t_twins_loopback, 0},
	{"twins-bridged-v4", t_twins_bridged_v4, 0},
	{"twins-bridged-v6", t_twins_bridged_v6, 0},
};

int main(int argc, char **argv)
{
	int rc = ts_main(argc, argv, 1400, tests, sizeof(tests) / sizeof(tests[0]));

	if (argc < 2 || argv[1][0] != '-')
		delete_namespaces(); /* after a timeout, the test could not */
	return rc;
}
