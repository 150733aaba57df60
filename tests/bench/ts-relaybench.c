// SPDX-License-Identifier: GPL-2.0
/*
 * ts-relaybench: a client, a relay and a server in this one process (a thread
 * each, the relay two in copy and pipe mode), over loopback TCP or UDP, so that
 * three ways of relaying can be compared side by side (issue 8):
 *
 *   copy    a thread per direction: read() up to 64 KiB, write() it all (UDP:
 *           recv() one datagram, send() it); end of file shuts the other side
 *           down for writing
 *   pipe    a thread per direction with a pipe of its own: splice(2) from the
 *           socket into the pipe (up to 64 KiB, SPLICE_F_MOVE | SPLICE_F_MORE),
 *           then all of it from the pipe into the other socket with
 *           SPLICE_F_MOVE, and SPLICE_F_MORE when the read filled the 64 KiB
 *           (more is waiting; --pipe-more always: on every write, which corks a
 *           short TCP message until TCP's probe timer sends it, some 200 ms).
 *           UDP never gets SPLICE_F_MORE: MSG_MORE joins datagrams into one.
 *   splice  the module's relay splicing: tcpsplice(3) once per direction, then
 *           the relay thread only waits (TCP: for both splices to end on end of
 *           file; UDP: for the end of the run, then tcpunsplice(3))
 *
 *   ts-relaybench stream|rr|udp-stream|udp-rr --relay copy|pipe|splice --port PORT
 *                 [--size BYTES] [--seconds S] [--warmup S] [--cpus C1,C2]
 *                 [--relay-cpu C] [--pipe-more full|always] [--runs K] [-v]
 *
 * Topology: client -- a (relay) b -- server, over 127.0.0.1.  TCP: the relay
 * listens on PORT, the server on PORT+1.  UDP: a is bound to PORT, the server
 * to PORT+1, b to PORT+2, and every socket is connect()ed to its peer.  Keep
 * the ports out of the ring policy's range and below the ephemeral ports
 * (tests/vm/bench: 9000 and up): a connection the ring path took fails the run
 * (pairs_total moved), and could not be spliced anyway (EBUSY).
 *
 * CPUs: the client is pinned to C1 and the server to C2 (--cpus 0,1 on the
 * test VM's two CPUs).  The relay's threads are pinned nowhere (--relay-cpu C
 * pins them): the module's work items, which do the relay's work in splice
 * mode, run on an unbound workqueue on whichever CPU the scheduler picks, and
 * the user-space relays get the same freedom.  With two CPUs every relay
 * shares one with the client or the server.
 *
 * stream: the client writes SIZE-byte messages (default 64 KiB), the server
 * reads 64 KiB at a time; Mbit/s received by the server in the measured
 * window, and CPU seconds per GB in it: cpu_s_per_gb is the busy time of all
 * CPUs (the window's length times the CPUs, minus their idle time in
 * /proc/stat: the three parties, the module's work items, softirqs),
 * relay_cpu_s_per_gb that minus the client's and the server's threads' CPU
 * clocks (the relay and the kernel work nobody else is charged with; a
 * difference of two clocks, so it can be off by a little either way), and
 * relay_threads_cpu_s_per_gb the relay's threads alone (in splice mode they
 * only wait).
 * rr: SIZE bytes (default 1) from the client, echoed by the server, through the
 * relay both ways, one transaction at a time, TCP_NODELAY on all four
 * sockets; transactions/s and the p50/p99 latency.
 * udp-stream: the client sends SIZE-byte datagrams (default 1472) as fast as
 * it can; datagrams/s delivered to the server of those sent in the measured
 * window, and the loss: the share of those that never arrived (loopback drops
 * a datagram when a receive buffer is full).
 * udp-rr: SIZE bytes (default 64) each way as in rr; a transaction without a
 * reply in 200 ms is counted lost and the next one starts.
 *
 * Checks, per run, against the module's counters (/proc/net/tcp_splice, read
 * before and after the run): a splice run fails unless relay_bytes moved by at
 * least the payload the far ends received (UDP: relay_datagrams by the
 * datagrams too), copy and pipe runs fail if relay_bytes or relay_datagrams
 * moved, and every run fails if pairs_total moved.  Without the module (no
 * such file) copy and pipe runs are not checked.  A run that does not end
 * within warmup + seconds + 20 s is reported with what each party had moved.
 *
 * Prints one line, the medians over the runs:
 *   result mode=MODE relay=RELAY size=.. then for stream mbps= cpu_s_per_gb=
 *   relay_cpu_s_per_gb= relay_threads_cpu_s_per_gb=, for rr and udp-rr tps=
 *   p50_us= p99_us= lost=, for udp-stream dps= loss_pct= mbps=; then
 *   window_s= .._min= .._max= (of the first figure) bytes= datagrams=
 *   relay_bytes= relay_datagrams= runs=K
 * bytes and datagrams: the payload received at the far ends, both ways, warmup
 * included, summed over the runs; relay_*: the counters' deltas, summed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tcpsplice.h"

/* Slack on top of warmup + seconds for setup and the end, before a run is stuck. */
#define RUN_GRACE_S	  20
#define MAX_SECONDS	  3600.0
#define MAX_RUNS	  99
#define MAX_SIZE	  (64u << 20)
#define MAX_UDP_SIZE	  65507u
#define RELAY_BUF	  (64u << 10)
#define UDP_RR_TIMEOUT_MS 200
/* After the window, for the datagrams still in the relay's buffers. */
#define UDP_DRAIN_MS 300
#define NSEC_PER_SEC 1000000000ull
#define COUNTERS     "/proc/net/tcp_splice"

enum mode { MODE_STREAM, MODE_RR, MODE_UDP_STREAM, MODE_UDP_RR };
enum relay { RELAY_COPY, RELAY_PIPE, RELAY_SPLICE };

static const char *const mode_names[] = {[MODE_STREAM] = "stream",
					 [MODE_RR] = "rr",
					 [MODE_UDP_STREAM] = "udp-stream",
					 [MODE_UDP_RR] = "udp-rr"};
static const char *const relay_names[] = {
	[RELAY_COPY] = "copy", [RELAY_PIPE] = "pipe", [RELAY_SPLICE] = "splice"};

struct options {
	enum mode mode;
	enum relay relay;
	bool relay_set;
	int port;
	size_t size;
	double seconds, warmup;
	int cpu_client, cpu_server, cpu_relay; /* -1: not pinned */
	bool pipe_more_always;
	int runs;
	bool verbose;
};

/* What one run measured; each field's median over the runs is reported. */
struct sample {
	double tps, p50_us, p99_us, lost;				 /* rr, udp-rr */
	double mbps, cpu_s_per_gb, relay_cpu_s_per_gb, thr_cpu_s_per_gb; /* stream */
	double dps, loss_pct;						 /* udp-stream (and mbps) */
	double window_s;
	uint64_t bytes, datagrams;	       /* received at the far ends, both ways */
	uint64_t relay_bytes, relay_datagrams; /* the module's counters' deltas */
};

/* The module's counters of this network namespace. */
struct counters {
	bool present;
	uint64_t relay_bytes, relay_datagrams, pairs_total;
};

/* ---- latency histogram (as ts-bench's) ---- */

/*
 * Log-linear buckets: exact below 256 ns, then 128 per power of two, so a
 * reported percentile is within 1% of the true value, in fixed memory.
 */
#define HIST_SUB_BITS 7
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  ((64 - HIST_SUB_BITS) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t n[HIST_BUCKETS];
};

/* One direction of a copy or pipe relay. */
struct dir {
	struct run *run;
	int from, to;
	pthread_t thread;
	_Atomic uint64_t moved; /* bytes */
};

/* One run: the sockets, the window and what each party counts. */
struct run {
	const struct options *o;
	bool udp;
	uint64_t warm_end, end; /* CLOCK_MONOTONIC ns */
	int c, a, b, s;		/* client, the relay's two ends, server */
	int stop_fd;		/* eventfd: the end of a UDP run, for a splice relay */
	atomic_bool stop;	/* the end of a UDP run */
	atomic_bool measured;	/* stream: the main thread read the window's end */
	pthread_barrier_t ready, go;
	pthread_t client, server, relay; /* relay: splice mode's one thread */
	struct dir dir[2];		 /* copy, pipe: a->b, b->a */
	/* Progress: bytes (TCP) or datagrams (UDP). */
	_Atomic uint64_t tx_client, rx_server, rx_client;
	_Atomic uint64_t rx_server_bytes, rx_client_bytes; /* UDP: payload bytes */
	/* splice mode: what tcpsplice_moved() said of a and b at the end. */
	uint64_t spliced_moved[2];
	/* rr, udp-rr: the client's histogram of the transactions begun in the window. */
	struct hist *h;
	uint64_t t_first, t_last; /* the client's window */
	uint64_t lost;
	/* udp-stream */
	uint64_t sent_in_window;
	_Atomic uint64_t delivered_in_window;
};

/* Error messages name the thread they come from. */
static __thread const char *role = "";

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ts-relaybench: %s", role);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(FILE *f)
{
	fputs("usage: ts-relaybench stream|rr|udp-stream|udp-rr --relay copy|pipe|splice --port "
	      "PORT [options]\n"
	      "  --relay R         copy (read/write), pipe (splice(2) through a pipe) or splice\n"
	      "                    (tcpsplice(3): the module moves the data)\n"
	      "  --port PORT       the relay's port on 127.0.0.1; the server's is PORT+1 (UDP:\n"
	      "                    the relay's second socket is bound to PORT+2)\n"
	      "Options:\n"
	      "  --size BYTES      stream: bytes per write (default 64K); rr: per request and\n"
	      "                    reply (default 1); udp-stream: per datagram (default 1472);\n"
	      "                    udp-rr: per request and reply (default 64); suffix K, M\n"
	      "  --seconds S       measured time per run (default 5)\n"
	      "  --warmup S        unmeasured time before it (default 1)\n"
	      "  --cpus C1,C2      pin the client to CPU C1 and the server to CPU C2\n"
	      "  --relay-cpu C     pin the relay's threads to CPU C (default: not pinned)\n"
	      "  --pipe-more M     pipe, TCP: SPLICE_F_MORE on a write into the socket when\n"
	      "                    the read filled 64 KiB (full, the default) or always\n"
	      "  --runs K          repeat K times and report the median (default 1)\n"
	      "  -v, --verbose     one line per run on stderr\n"
	      "Prints one line, medians over the runs (and the extremes of the first figure):\n"
	      "  result mode=stream relay=R size=.. mbps=.. cpu_s_per_gb=.. relay_cpu_s_per_gb=..\n"
	      "         relay_threads_cpu_s_per_gb=.. window_s=.. mbps_min=.. mbps_max=.. ...\n"
	      "  result mode=rr|udp-rr relay=R size=.. tps=.. p50_us=.. p99_us=.. lost=.. ...\n"
	      "  result mode=udp-stream relay=R size=.. dps=.. loss_pct=.. mbps=.. ...\n"
	      "  ... bytes=.. datagrams=.. relay_bytes=.. relay_datagrams=.. runs=K\n"
	      "cpu_s_per_gb: all CPUs' busy time per GB received; relay_cpu_s_per_gb: that\n"
	      "minus the client's and the server's threads.  A splice run must move its\n"
	      "payload through the module (relay_bytes), copy and pipe runs must not.\n",
	      f);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = {.tv_sec = (time_t)(t / NSEC_PER_SEC),
			      .tv_nsec = (long)(t % NSEC_PER_SEC)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ---- option parsing (as ts-bench's) ---- */

static double parse_seconds(const char *opt, const char *s, double min)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= MAX_SECONDS))
		die("%s takes seconds in [%g, %g], not '%s'", opt, min, MAX_SECONDS, s);
	return v;
}

static long parse_long(const char *opt, const char *s, long min, long max, char **rest)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || (!rest && *end) || v < min || v > max)
		die("%s takes a number in [%ld, %ld], not '%s'", opt, min, max, s);
	if (rest)
		*rest = end;
	return v;
}

static size_t parse_size(const char *opt, const char *s)
{
	char *end;
	unsigned long v;
	unsigned int shift = 0;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	if (errno || end == s || *end || *s == '-' || v == 0 || v > (MAX_SIZE >> shift))
		die("%s takes bytes in [1, %u] (suffix K or M allowed), not '%s'", opt, MAX_SIZE,
		    s);
	return (size_t)v << shift;
}

static void parse_cpus(const char *s, struct options *o)
{
	char *rest;

	o->cpu_client = (int)parse_long("--cpus", s, 0, CPU_SETSIZE - 1, &rest);
	if (*rest != ',')
		die("--cpus takes two CPUs C1,C2 (client, server), not '%s'", s);
	o->cpu_server = (int)parse_long("--cpus", rest + 1, 0, CPU_SETSIZE - 1, NULL);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_RELAY = 256,
		OPT_PORT,
		OPT_SIZE,
		OPT_SECONDS,
		OPT_WARMUP,
		OPT_CPUS,
		OPT_RELAY_CPU,
		OPT_PIPE_MORE,
		OPT_RUNS
	};
	static const struct option longopts[] = {
		{"relay", required_argument, NULL, OPT_RELAY},
		{"port", required_argument, NULL, OPT_PORT},
		{"size", required_argument, NULL, OPT_SIZE},
		{"seconds", required_argument, NULL, OPT_SECONDS},
		{"warmup", required_argument, NULL, OPT_WARMUP},
		{"cpus", required_argument, NULL, OPT_CPUS},
		{"relay-cpu", required_argument, NULL, OPT_RELAY_CPU},
		{"pipe-more", required_argument, NULL, OPT_PIPE_MORE},
		{"runs", required_argument, NULL, OPT_RUNS},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool size_set = false;
	int c;

	*o = (struct options){.seconds = 5,
			      .warmup = 1,
			      .cpu_client = -1,
			      .cpu_server = -1,
			      .cpu_relay = -1,
			      .runs = 1};
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
			usage(stdout);
			exit(0);
		}
		usage(stderr);
		exit(2);
	}
	if (!strcmp(argv[1], "stream"))
		o->mode = MODE_STREAM;
	else if (!strcmp(argv[1], "rr"))
		o->mode = MODE_RR;
	else if (!strcmp(argv[1], "udp-stream"))
		o->mode = MODE_UDP_STREAM;
	else if (!strcmp(argv[1], "udp-rr"))
		o->mode = MODE_UDP_RR;
	else
		die("unknown mode '%s': use stream, rr, udp-stream or udp-rr", argv[1]);

	optind = 2;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_RELAY:
			if (!strcmp(optarg, "copy"))
				o->relay = RELAY_COPY;
			else if (!strcmp(optarg, "pipe"))
				o->relay = RELAY_PIPE;
			else if (!strcmp(optarg, "splice"))
				o->relay = RELAY_SPLICE;
			else
				die("--relay takes copy, pipe or splice, not '%s'", optarg);
			o->relay_set = true;
			break;
		case OPT_PORT:
			o->port = (int)parse_long("--port", optarg, 1, 65533, NULL);
			break;
		case OPT_SIZE:
			o->size = parse_size("--size", optarg);
			size_set = true;
			break;
		case OPT_SECONDS:
			o->seconds = parse_seconds("--seconds", optarg, 0.01);
			break;
		case OPT_WARMUP:
			o->warmup = parse_seconds("--warmup", optarg, 0);
			break;
		case OPT_CPUS:
			parse_cpus(optarg, o);
			break;
		case OPT_RELAY_CPU:
			o->cpu_relay =
				(int)parse_long("--relay-cpu", optarg, 0, CPU_SETSIZE - 1, NULL);
			break;
		case OPT_PIPE_MORE:
			if (!strcmp(optarg, "always"))
				o->pipe_more_always = true;
			else if (strcmp(optarg, "full"))
				die("--pipe-more takes full or always, not '%s'", optarg);
			break;
		case OPT_RUNS:
			o->runs = (int)parse_long("--runs", optarg, 1, MAX_RUNS, NULL);
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
	if (!o->relay_set)
		die("no relay: give --relay copy, pipe or splice");
	if (!o->port)
		die("no port: give --port PORT (the server takes PORT+1, UDP PORT+2 too)");
	if (!size_set) {
		static const size_t defaults[] = {[MODE_STREAM] = 64 << 10,
						  [MODE_RR] = 1,
						  [MODE_UDP_STREAM] = 1472,
						  [MODE_UDP_RR] = 64};
		o->size = defaults[o->mode];
	}
	if (o->mode == MODE_UDP_STREAM && (o->size < 1 || o->size > MAX_UDP_SIZE))
		die("udp-stream: --size takes [1, %u] bytes", MAX_UDP_SIZE);
	if (o->mode == MODE_UDP_RR && (o->size < 8 || o->size > MAX_UDP_SIZE))
		die("udp-rr: --size takes [8, %u] bytes (a sequence number leads)", MAX_UDP_SIZE);
}

/* ---- helpers ---- */

static void pin_to_cpu(int cpu, const char *who)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("pinning the %s to CPU %d: %s (CPUs online: %ld)", who, cpu, strerror(errno),
		    sysconf(_SC_NPROCESSORS_ONLN));
}

static void *alloc_buffer(size_t size)
{
	void *p = malloc(size);

	if (!p)
		die("out of memory for a %zu-byte buffer", size);
	memset(p, 0x5a, size);
	return p;
}

/* Bytes read: less than len only at end of file. */
static size_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read: %s", strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static void write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("write: %s", strerror(errno));
		done += (size_t)n;
	}
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

static int tcp_listen(int port)
{
	struct sockaddr_in sin = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		die("SO_REUSEADDR: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)))
		die("bind 127.0.0.1:%d: %s", port, strerror(errno));
	if (listen(fd, 1))
		die("listen on 127.0.0.1:%d: %s", port, strerror(errno));
	return fd;
}

static int tcp_connect(int port)
{
	struct sockaddr_in sin = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		die("connect to 127.0.0.1:%d: %s", port, strerror(errno));
	return fd;
}

static int tcp_accept(int lfd, int port)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		die("accept on 127.0.0.1:%d: %s", port, strerror(errno));
	close(lfd);
	return fd;
}

static void set_nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		die("TCP_NODELAY: %s", strerror(errno));
}

/* A UDP socket bound to 127.0.0.1:port (0: any); *port gets the one it has. */
static int udp_bound(int *port)
{
	struct sockaddr_in sin = loopback(*port);
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)))
		die("bind udp 127.0.0.1:%d: %s", *port, strerror(errno));
	if (getsockname(fd, (struct sockaddr *)&sin, &len))
		die("getsockname: %s", strerror(errno));
	*port = ntohs(sin.sin_port);
	return fd;
}

static void udp_connect(int fd, int port)
{
	struct sockaddr_in sin = loopback(port);

	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		die("connect udp to 127.0.0.1:%d: %s", port, strerror(errno));
}

static int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return errno;
	return err;
}

/* ---- counters and CPU time ---- */

static void counters_read(struct counters *c)
{
	char line[256];
	FILE *f = fopen(COUNTERS, "re");

	*c = (struct counters){0};
	if (!f)
		return;
	c->present = true;
	while (fgets(line, sizeof(line), f)) {
		char name[64];
		unsigned long long v;

		if (sscanf(line, "%63s %llu", name, &v) != 2)
			continue;
		if (!strcmp(name, "relay_bytes"))
			c->relay_bytes = v;
		else if (!strcmp(name, "relay_datagrams"))
			c->relay_datagrams = v;
		else if (!strcmp(name, "pairs_total"))
			c->pairs_total = v;
	}
	fclose(f);
}

/*
 * Idle time of all CPUs so far (idle + iowait of /proc/stat), in seconds.  A
 * tickless kernel measures idle time at each entry and exit, where user,
 * system and softirq time are sampled by the tick: the busy time of a window
 * is its length times the CPUs, minus this.
 */
static double system_idle_s(void)
{
	unsigned long long user, nice, sys, idle, iowait;
	FILE *f = fopen("/proc/stat", "re");
	int n;

	if (!f)
		die("/proc/stat: %s", strerror(errno));
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait);
	fclose(f);
	if (n != 5)
		die("/proc/stat: no cpu line");
	return (double)(idle + iowait) / (double)sysconf(_SC_CLK_TCK);
}

static double thread_cpu_s(pthread_t t)
{
	struct timespec ts;
	clockid_t cid;

	if (pthread_getcpuclockid(t, &cid) || clock_gettime(cid, &ts))
		die("the CPU time of a thread: %s", strerror(errno));
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the main thread reads at the edges of a stream's window. */
struct snap {
	uint64_t t, rx;
	double idle, client, server, relay;
};

static void snap_take(struct run *r, struct snap *s)
{
	s->t = now_ns();
	s->rx = atomic_load(&r->rx_server);
	s->idle = system_idle_s();
	s->client = thread_cpu_s(r->client);
	s->server = thread_cpu_s(r->server);
	if (r->o->relay == RELAY_SPLICE)
		s->relay = thread_cpu_s(r->relay);
	else
		s->relay = thread_cpu_s(r->dir[0].thread) + thread_cpu_s(r->dir[1].thread);
}

/* ---- latency histogram ---- */

static unsigned int hist_index(uint64_t v)
{
	int shift;

	if (v < 2 * HIST_SUB)
		return (unsigned int)v;
	shift = 63 - __builtin_clzll(v) - HIST_SUB_BITS;
	return (unsigned int)shift * HIST_SUB + (unsigned int)(v >> shift);
}

/* The middle of bucket i. */
static double hist_value(unsigned int i)
{
	unsigned int shift;

	if (i < 2 * HIST_SUB)
		return i;
	shift = i / HIST_SUB - 1;
	return (double)((uint64_t)(i - shift * HIST_SUB) << shift) + (double)(1ull << shift) / 2;
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->n[hist_index(v)]++;
	h->count++;
}

static double hist_percentile(const struct hist *h, double p)
{
	uint64_t rank = (uint64_t)ceil(p * (double)h->count), seen = 0;
	unsigned int i;

	if (rank < 1)
		rank = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->n[i];
		if (seen >= rank)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* ---- the client ---- */

/* Until the main thread has read the end of the window: every thread still runs then. */
static void stream_send(struct run *r)
{
	char *buf = alloc_buffer(r->o->size);

	while (!atomic_load(&r->measured)) {
		ssize_t n = write(r->c, buf, r->o->size);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("write: %s", strerror(errno));
		atomic_fetch_add(&r->tx_client, (uint64_t)n);
	}
	free(buf);
}

static void rr_client(struct run *r)
{
	const struct options *o = r->o;
	char *req = alloc_buffer(o->size), *resp = alloc_buffer(o->size);
	uint64_t seq = 0, t, t_next;

	for (t = now_ns();; t = t_next, seq++) {
		/* Stamped at both ends, so a reply that is not our echo shows. */
		req[0] = req[o->size - 1] = (char)seq;
		write_full(r->c, req, o->size);
		atomic_fetch_add(&r->tx_client, o->size);
		if (read_full(r->c, resp, o->size) != o->size)
			die("the relay closed the connection mid-transaction");
		atomic_fetch_add(&r->rx_client, o->size);
		if (resp[0] != req[0] || resp[o->size - 1] != req[o->size - 1])
			die("transaction %llu: the reply is not the request's echo",
			    (unsigned long long)seq);
		t_next = now_ns();
		if (t >= r->warm_end) {
			if (!r->h->count)
				r->t_first = t;
			hist_add(r->h, t_next - t);
		}
		if (t_next >= r->end)
			break;
	}
	r->t_last = t_next;
	free(resp);
	free(req);
}

static void udp_stream_send(struct run *r)
{
	char *buf = alloc_buffer(r->o->size);
	uint64_t t;

	while ((t = now_ns()) < r->end) {
		bool in = t >= r->warm_end;
		ssize_t n;

		/* The first byte: sent in the window. */
		buf[0] = in;
		n = send(r->c, buf, r->o->size, 0);
		if (n < 0 && (errno == EINTR || errno == ENOBUFS))
			continue;
		if (n < 0)
			die("send: %s", strerror(errno));
		atomic_fetch_add(&r->tx_client, 1);
		if (in) {
			if (!r->sent_in_window)
				r->t_first = t;
			r->t_last = t;
			r->sent_in_window++;
		}
	}
	free(buf);
}

static void udp_rr_client(struct run *r)
{
	const struct options *o = r->o;
	struct timeval tv = {.tv_usec = UDP_RR_TIMEOUT_MS * 1000};
	char *req = alloc_buffer(o->size), *resp = alloc_buffer(o->size);
	uint64_t seq = 0, got, t, t_next;

	if (setsockopt(r->c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		die("SO_RCVTIMEO: %s", strerror(errno));
	for (t = now_ns();; t = t_next, seq++) {
		bool answered = false;
		ssize_t n;

		memcpy(req, &seq, sizeof(seq));
		n = send(r->c, req, o->size, 0);
		if (n < 0 && errno != EINTR && errno != ENOBUFS)
			die("send: %s", strerror(errno));
		atomic_fetch_add(&r->tx_client, 1);
		/* Replies to requests counted lost are stale: skip them. */
		while (!answered) {
			n = recv(r->c, resp, o->size, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n < 0)
				die("recv: %s", strerror(errno));
			atomic_fetch_add(&r->rx_client, 1);
			atomic_fetch_add(&r->rx_client_bytes, (uint64_t)n);
			memcpy(&got, resp, sizeof(got));
			answered = (size_t)n == o->size && got == seq;
		}
		t_next = now_ns();
		if (t >= r->warm_end) {
			if (!r->h->count && !r->lost)
				r->t_first = t;
			if (answered)
				hist_add(r->h, t_next - t);
			else
				r->lost++;
		}
		if (t_next >= r->end)
			break;
	}
	r->t_last = t_next;
	free(resp);
	free(req);
}

static void *client_main(void *arg)
{
	struct run *r = arg;
	char byte;

	role = "client: ";
	pin_to_cpu(r->o->cpu_client, "client");
	pthread_barrier_wait(&r->ready);
	pthread_barrier_wait(&r->go);
	switch (r->o->mode) {
	case MODE_STREAM:
	case MODE_RR:
		if (r->o->mode == MODE_STREAM)
			stream_send(r);
		else
			rr_client(r);
		/* The end travels through the relay and back. */
		if (shutdown(r->c, SHUT_WR))
			die("shutdown: %s", strerror(errno));
		if (read_full(r->c, &byte, 1))
			die("data after the end of the run");
		break;
	case MODE_UDP_STREAM:
		udp_stream_send(r);
		break;
	case MODE_UDP_RR:
		udp_rr_client(r);
		break;
	}
	return NULL;
}

/* ---- the server ---- */

static void *server_main(void *arg)
{
	struct run *r = arg;
	const struct options *o = r->o;
	size_t bufsize = o->size > RELAY_BUF ? o->size : RELAY_BUF;
	char *buf = alloc_buffer(bufsize);
	ssize_t n;
	size_t got;

	role = "server: ";
	pin_to_cpu(o->cpu_server, "server");
	pthread_barrier_wait(&r->ready);
	pthread_barrier_wait(&r->go);
	switch (o->mode) {
	case MODE_STREAM:
		while ((n = read(r->s, buf, bufsize)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				die("read: %s", strerror(errno));
			atomic_fetch_add(&r->rx_server, (uint64_t)n);
		}
		break;
	case MODE_RR:
		while ((got = read_full(r->s, buf, o->size)) == o->size) {
			atomic_fetch_add(&r->rx_server, got);
			write_full(r->s, buf, o->size);
		}
		if (got)
			die("the relay closed in the middle of a %zu-byte request", o->size);
		break;
	case MODE_UDP_STREAM:
	case MODE_UDP_RR:
		for (;;) {
			n = recv(r->s, buf, bufsize, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				die("recv: %s", strerror(errno));
			/* shutdown(SHUT_RD) by the main thread at the end. */
			if (n == 0 && atomic_load(&r->stop))
				break;
			atomic_fetch_add(&r->rx_server, 1);
			atomic_fetch_add(&r->rx_server_bytes, (uint64_t)n);
			if (o->mode == MODE_UDP_STREAM) {
				if (n > 0 && buf[0])
					atomic_fetch_add(&r->delivered_in_window, 1);
			} else if (send(r->s, buf, (size_t)n, 0) < 0 && errno != ENOBUFS) {
				die("send: %s", strerror(errno));
			}
		}
		break;
	}
	if (!r->udp && shutdown(r->s, SHUT_WR))
		die("shutdown: %s", strerror(errno));
	free(buf);
	return NULL;
}

/* ---- the relays ---- */

static void relay_pin(struct run *r)
{
	pin_to_cpu(r->o->cpu_relay, "relay");
}

static void *copy_main(void *arg)
{
	struct dir *d = arg;
	struct run *r = d->run;
	char *buf = alloc_buffer(RELAY_BUF);
	ssize_t n;

	role = d == &r->dir[0] ? "relay a->b: " : "relay b->a: ";
	relay_pin(r);
	pthread_barrier_wait(&r->ready);
	pthread_barrier_wait(&r->go);
	for (;;) {
		n = read(d->from, buf, RELAY_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read: %s", strerror(errno));
		if (n == 0 && (!r->udp || atomic_load(&r->stop)))
			break;
		if (!r->udp) {
			write_full(d->to, buf, (size_t)n);
		} else if (send(d->to, buf, (size_t)n, 0) < 0 && errno != ENOBUFS &&
			   !atomic_load(&r->stop)) {
			die("send: %s", strerror(errno));
		}
		atomic_fetch_add(&d->moved, (uint64_t)n);
	}
	if (!r->udp && shutdown(d->to, SHUT_WR))
		die("shutdown: %s", strerror(errno));
	free(buf);
	return NULL;
}

static void *pipe_main(void *arg)
{
	struct dir *d = arg;
	struct run *r = d->run;
	int p[2];
	ssize_t n, m;

	role = d == &r->dir[0] ? "relay a->b: " : "relay b->a: ";
	if (pipe2(p, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	relay_pin(r);
	pthread_barrier_wait(&r->ready);
	pthread_barrier_wait(&r->go);
	for (;;) {
		unsigned int flags = SPLICE_F_MOVE;

		n = splice(d->from, NULL, p[1], NULL, RELAY_BUF, SPLICE_F_MOVE | SPLICE_F_MORE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("splice from the socket: %s", strerror(errno));
		if (n == 0 && (!r->udp || atomic_load(&r->stop)))
			break;
		/* UDP: MSG_MORE would join this datagram with the next. */
		if (!r->udp && (r->o->pipe_more_always || n == RELAY_BUF))
			flags |= SPLICE_F_MORE;
		atomic_fetch_add(&d->moved, (uint64_t)n);
		while (n > 0) {
			m = splice(p[0], NULL, d->to, NULL, (size_t)n, flags);
			if (m < 0 && errno == EINTR)
				continue;
			if (m < 0 && r->udp && (errno == ENOBUFS || atomic_load(&r->stop))) {
				/* A datagram dropped: empty the pipe for the next. */
				char sink[RELAY_BUF];

				if (read(p[0], sink, (size_t)n) != n)
					die("emptying the pipe: %s", strerror(errno));
				break;
			}
			if (m <= 0)
				die("splice into the socket: %s",
				    m ? strerror(errno) : "no progress");
			n -= m;
		}
	}
	if (!r->udp && shutdown(d->to, SHUT_WR))
		die("shutdown: %s", strerror(errno));
	close(p[0]);
	close(p[1]);
	return NULL;
}

/* The splice of source to drain, checked; name for messages. */
static void splice_end_check(int source, const char *name, uint64_t *moved)
{
	bool active;
	int err;

	if (tcpsplice_moved(source, moved, &active))
		die("tcpsplice_moved %s: %s", name, strerror(errno));
	if (active)
		die("the splice %s is still active", name);
	err = sock_error(source);
	if (err)
		die("the splice %s ended with %s", name, strerror(err));
}

static void *splice_main(void *arg)
{
	struct run *r = arg;
	const char *names[2] = {"a->b", "b->a"};
	int src[2] = {r->a, r->b}, i;
	bool done[2] = {false, false};
	uint64_t v;

	role = "relay: ";
	relay_pin(r);
	if (tcpsplice(r->a, r->b, 0, 0))
		die("tcpsplice(a, b): %s", strerror(errno));
	if (tcpsplice(r->b, r->a, 0, 0))
		die("tcpsplice(b, a): %s", strerror(errno));
	pthread_barrier_wait(&r->ready);
	pthread_barrier_wait(&r->go);
	if (r->udp) {
		/* The end of the run: the main thread writes stop_fd. */
		if (read(r->stop_fd, &v, sizeof(v)) != sizeof(v))
			die("reading the stop event: %s", strerror(errno));
		for (i = 0; i < 2; i++)
			if (tcpunsplice(src[i]))
				die("tcpunsplice %s: %s", names[i], strerror(errno));
		for (i = 0; i < 2; i++)
			splice_end_check(src[i], names[i], &r->spliced_moved[i]);
		return NULL;
	}
	/*
	 * TCP: each splice ends when its source reads end of file, and the
	 * source is readable (POLLIN) only after that.  A wake-up while still
	 * spliced (POLLHUP, say) is looked at again after a short sleep.
	 */
	for (;;) {
		struct pollfd pfd[2];
		int n = 0;
		bool active;

		for (i = 0; i < 2; i++) {
			if (done[i])
				continue;
			if (tcpsplice_moved(src[i], NULL, &active))
				die("tcpsplice_moved %s: %s", names[i], strerror(errno));
			if (!active) {
				splice_end_check(src[i], names[i], &r->spliced_moved[i]);
				done[i] = true;
				continue;
			}
			pfd[n++] = (struct pollfd){.fd = src[i], .events = POLLIN};
		}
		if (!n)
			break;
		if (poll(pfd, (nfds_t)n, 100) > 0)
			usleep(1000);
	}
	return NULL;
}

/* ---- one run ---- */

static void connect_all(const struct options *o, struct run *r)
{
	if (!r->udp) {
		int ls = tcp_listen(o->port + 1), lr = tcp_listen(o->port);

		r->c = tcp_connect(o->port);
		r->a = tcp_accept(lr, o->port);
		r->b = tcp_connect(o->port + 1);
		r->s = tcp_accept(ls, o->port + 1);
		if (o->mode == MODE_RR) {
			set_nodelay(r->c);
			set_nodelay(r->a);
			set_nodelay(r->b);
			set_nodelay(r->s);
		}
	} else {
		int pa = o->port, ps = o->port + 1, pb = o->port + 2, pc = 0;

		r->a = udp_bound(&pa);
		r->s = udp_bound(&ps);
		r->b = udp_bound(&pb);
		r->c = udp_bound(&pc);
		udp_connect(r->c, pa);
		udp_connect(r->a, pc);
		udp_connect(r->b, ps);
		udp_connect(r->s, pb);
	}
}

/* What each party had moved, when a run does not end. */
static void stall_report(struct run *r, int run)
{
	uint64_t m[2] = {0, 0};
	struct counters c;
	bool act[2] = {false, false};
	int i;

	fprintf(stderr,
		"ts-relaybench: run %d (%s, relay %s) did not end within %u s of its window: "
		"client sent %llu, server received %llu, client received %llu %s",
		run, mode_names[r->o->mode], relay_names[r->o->relay], RUN_GRACE_S,
		(unsigned long long)atomic_load(&r->tx_client),
		(unsigned long long)atomic_load(&r->rx_server),
		(unsigned long long)atomic_load(&r->rx_client), r->udp ? "datagrams" : "bytes");
	if (r->o->relay == RELAY_SPLICE) {
		for (i = 0; i < 2; i++)
			tcpsplice_moved(i ? r->b : r->a, &m[i], &act[i]);
		fprintf(stderr, "; splice a->b moved %llu (%s), b->a %llu (%s)",
			(unsigned long long)m[0], act[0] ? "active" : "ended",
			(unsigned long long)m[1], act[1] ? "active" : "ended");
	} else {
		fprintf(stderr, "; relay a->b moved %llu, b->a %llu bytes",
			(unsigned long long)atomic_load(&r->dir[0].moved),
			(unsigned long long)atomic_load(&r->dir[1].moved));
	}
	counters_read(&c);
	if (c.present)
		fprintf(stderr, "; relay_bytes %llu, relay_datagrams %llu",
			(unsigned long long)c.relay_bytes, (unsigned long long)c.relay_datagrams);
	fputc('\n', stderr);
	exit(124);
}

static void join(struct run *r, pthread_t t, const struct timespec *deadline, int run)
{
	if (pthread_timedjoin_np(t, NULL, deadline))
		stall_report(r, run);
}

/* Empty when the counters say the run went the way its relay says, else why not. */
static const char *check(const struct options *o, const struct counters *c0,
			 const struct counters *c1, const struct sample *s, char *why, size_t len)
{
	uint64_t db = c1->relay_bytes - c0->relay_bytes;
	uint64_t dd = c1->relay_datagrams - c0->relay_datagrams;
	uint64_t dp = c1->pairs_total - c0->pairs_total;

	if (!c1->present)
		return o->relay == RELAY_SPLICE ? "no " COUNTERS : "";
	if (dp)
		snprintf(why, len, "the ring path took its connections: pairs_total +%llu",
			 (unsigned long long)dp);
	else if (o->relay == RELAY_SPLICE && (db < s->bytes || dd < s->datagrams))
		snprintf(why, len,
			 "not through the module: relay_bytes +%llu of %llu bytes received, "
			 "relay_datagrams +%llu of %llu datagrams",
			 (unsigned long long)db, (unsigned long long)s->bytes,
			 (unsigned long long)dd, (unsigned long long)s->datagrams);
	else if (o->relay != RELAY_SPLICE && (db || dd))
		snprintf(why, len,
			 "went through the module: relay_bytes +%llu, relay_datagrams +%llu",
			 (unsigned long long)db, (unsigned long long)dd);
	else
		return "";
	return why;
}

static void run_once(const struct options *o, int run, struct sample *s)
{
	struct run r = {.o = o, .udp = o->mode == MODE_UDP_STREAM || o->mode == MODE_UDP_RR};
	struct counters c0, c1;
	struct snap w0 = {0}, w1 = {0};
	struct timespec deadline;
	unsigned int parties = 3 + (o->relay == RELAY_SPLICE ? 1 : 2);
	uint64_t t0, one = 1;
	char why[256];
	const char *bad;
	int i;

	counters_read(&c0);
	connect_all(o, &r);
	r.stop_fd = eventfd(0, EFD_CLOEXEC);
	if (r.stop_fd < 0)
		die("eventfd: %s", strerror(errno));
	r.h = calloc(1, sizeof(*r.h));
	if (!r.h)
		die("out of memory for the histogram");
	pthread_barrier_init(&r.ready, NULL, parties);
	pthread_barrier_init(&r.go, NULL, parties);
	if (pthread_create(&r.server, NULL, server_main, &r) ||
	    pthread_create(&r.client, NULL, client_main, &r))
		die("pthread_create: %s", strerror(errno));
	if (o->relay == RELAY_SPLICE) {
		if (pthread_create(&r.relay, NULL, splice_main, &r))
			die("pthread_create: %s", strerror(errno));
	} else {
		r.dir[0] = (struct dir){.run = &r, .from = r.a, .to = r.b};
		r.dir[1] = (struct dir){.run = &r, .from = r.b, .to = r.a};
		for (i = 0; i < 2; i++)
			if (pthread_create(&r.dir[i].thread, NULL,
					   o->relay == RELAY_COPY ? copy_main : pipe_main,
					   &r.dir[i]))
				die("pthread_create: %s", strerror(errno));
	}
	/* Every thread pinned and the splices made before the clock starts. */
	pthread_barrier_wait(&r.ready);
	t0 = now_ns();
	r.warm_end = t0 + (uint64_t)(o->warmup * 1e9);
	r.end = t0 + (uint64_t)((o->warmup + o->seconds) * 1e9);
	pthread_barrier_wait(&r.go);

	if (o->mode == MODE_STREAM) {
		sleep_until(r.warm_end);
		snap_take(&r, &w0);
		sleep_until(r.end);
		snap_take(&r, &w1);
		atomic_store(&r.measured, true);
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)ceil(o->warmup + o->seconds) + RUN_GRACE_S;
	join(&r, r.client, &deadline, run);
	if (r.udp) {
		/* The datagrams still in the relay's buffers, then the end. */
		sleep_until(r.end + UDP_DRAIN_MS * 1000000ull);
		atomic_store(&r.stop, true);
		if (o->relay == RELAY_SPLICE) {
			if (write(r.stop_fd, &one, sizeof(one)) != sizeof(one))
				die("eventfd write: %s", strerror(errno));
		} else {
			shutdown(r.a, SHUT_RD);
			shutdown(r.b, SHUT_RD);
		}
	}
	if (o->relay == RELAY_SPLICE) {
		join(&r, r.relay, &deadline, run);
	} else {
		join(&r, r.dir[0].thread, &deadline, run);
		join(&r, r.dir[1].thread, &deadline, run);
	}
	if (r.udp)
		shutdown(r.s, SHUT_RD);
	join(&r, r.server, &deadline, run);
	close(r.c);
	close(r.a);
	close(r.b);
	close(r.s);
	close(r.stop_fd);
	pthread_barrier_destroy(&r.ready);
	pthread_barrier_destroy(&r.go);

	if (r.udp) {
		s->bytes = atomic_load(&r.rx_server_bytes) + atomic_load(&r.rx_client_bytes);
		s->datagrams = atomic_load(&r.rx_server) + atomic_load(&r.rx_client);
	} else {
		s->bytes = atomic_load(&r.rx_server) + atomic_load(&r.rx_client);
	}
	switch (o->mode) {
	case MODE_STREAM: {
		double gb = (double)(w1.rx - w0.rx) / 1e9;
		double busy = (double)(w1.t - w0.t) / 1e9 * (double)sysconf(_SC_NPROCESSORS_ONLN) -
			      (w1.idle - w0.idle);

		if (w1.rx <= w0.rx)
			die("run %d: no data moved within the measured window", run);
		s->window_s = (double)(w1.t - w0.t) / 1e9;
		s->mbps = (double)(w1.rx - w0.rx) * 8 / s->window_s / 1e6;
		s->cpu_s_per_gb = busy / gb;
		s->relay_cpu_s_per_gb =
			(busy - (w1.client - w0.client) - (w1.server - w0.server)) / gb;
		s->thr_cpu_s_per_gb = (w1.relay - w0.relay) / gb;
		break;
	}
	case MODE_RR:
	case MODE_UDP_RR:
		if (!r.h->count)
			die("run %d: no transaction completed within the measured window", run);
		s->window_s = (double)(r.t_last - r.t_first) / 1e9;
		s->tps = (double)r.h->count / s->window_s;
		s->p50_us = hist_percentile(r.h, 0.50) / 1e3;
		s->p99_us = hist_percentile(r.h, 0.99) / 1e3;
		s->lost = (double)r.lost;
		break;
	case MODE_UDP_STREAM: {
		uint64_t got = atomic_load(&r.delivered_in_window);

		if (!r.sent_in_window || r.t_last <= r.t_first)
			die("run %d: nothing sent within the measured window", run);
		s->window_s = (double)(r.t_last - r.t_first) / 1e9;
		s->dps = (double)got / s->window_s;
		s->mbps = s->dps * (double)o->size * 8 / 1e6;
		s->loss_pct = 100.0 * (1.0 - (double)got / (double)r.sent_in_window);
		break;
	}
	}
	free(r.h);

	/* The counters move with the data; a last increment may trail it a little. */
	counters_read(&c1);
	for (i = 0; i < 40 && *check(o, &c0, &c1, s, why, sizeof(why)); i++) {
		usleep(50000);
		counters_read(&c1);
	}
	s->relay_bytes = c1.relay_bytes - c0.relay_bytes;
	s->relay_datagrams = c1.relay_datagrams - c0.relay_datagrams;
	bad = check(o, &c0, &c1, s, why, sizeof(why));
	if (*bad)
		die("run %d (relay %s): %s", run, relay_names[o->relay], bad);
	if (o->relay == RELAY_SPLICE && !r.udp &&
	    r.spliced_moved[0] + r.spliced_moved[1] != s->bytes)
		die("run %d: the splices moved %llu + %llu bytes, the ends received %llu", run,
		    (unsigned long long)r.spliced_moved[0], (unsigned long long)r.spliced_moved[1],
		    (unsigned long long)s->bytes);
}

/* ---- reporting ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Field `off` over the runs: its median (the mean of the middle two), minimum and maximum. */
struct spread {
	double median, min, max;
};

static struct spread spread_of(const struct sample *s, int n, size_t off)
{
	double v[MAX_RUNS];
	int i;

	for (i = 0; i < n; i++)
		memcpy(&v[i], (const char *)&s[i] + off, sizeof(double));
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return (struct spread){
		.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2,
		.min = v[0],
		.max = v[n - 1],
	};
}

static void print_sample(FILE *f, const char *head, const struct options *o, const struct sample *s)
{
	fprintf(f, "%s mode=%s relay=%s size=%zu ", head, mode_names[o->mode],
		relay_names[o->relay], o->size);
	switch (o->mode) {
	case MODE_STREAM:
		fprintf(f,
			"mbps=%.1f cpu_s_per_gb=%.3f relay_cpu_s_per_gb=%.3f "
			"relay_threads_cpu_s_per_gb=%.3f",
			s->mbps, s->cpu_s_per_gb, s->relay_cpu_s_per_gb, s->thr_cpu_s_per_gb);
		break;
	case MODE_RR:
	case MODE_UDP_RR:
		fprintf(f, "tps=%.0f p50_us=%.1f p99_us=%.1f lost=%.0f", s->tps, s->p50_us,
			s->p99_us, s->lost);
		break;
	case MODE_UDP_STREAM:
		fprintf(f, "dps=%.0f loss_pct=%.2f mbps=%.1f", s->dps, s->loss_pct, s->mbps);
		break;
	}
	fprintf(f, " window_s=%.2f", s->window_s);
}

int main(int argc, char **argv)
{
	struct sample samples[MAX_RUNS], med = {0};
	uint64_t bytes = 0, datagrams = 0, rbytes = 0, rdgrams = 0;
	struct options o;
	struct spread sp;
	const char *first;
	size_t off;
	char head[32];
	int i;

	parse_options(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < o.runs; i++) {
		samples[i] = (struct sample){0};
		run_once(&o, i + 1, &samples[i]);
		bytes += samples[i].bytes;
		datagrams += samples[i].datagrams;
		rbytes += samples[i].relay_bytes;
		rdgrams += samples[i].relay_datagrams;
		if (samples[i].window_s < 0.9 * o.seconds)
			fprintf(stderr,
				"ts-relaybench: warning: run %d measured %.2f s of %g s: the data "
				"stalled across the end of the warmup\n",
				i + 1, samples[i].window_s, o.seconds);
		if (o.verbose) {
			snprintf(head, sizeof(head), "run %d/%d", i + 1, o.runs);
			print_sample(stderr, head, &o, &samples[i]);
			fputc('\n', stderr);
		}
	}
#define MEDIAN(field) med.field = spread_of(samples, o.runs, offsetof(struct sample, field)).median
	MEDIAN(tps);
	MEDIAN(p50_us);
	MEDIAN(p99_us);
	MEDIAN(lost);
	MEDIAN(mbps);
	MEDIAN(cpu_s_per_gb);
	MEDIAN(relay_cpu_s_per_gb);
	MEDIAN(thr_cpu_s_per_gb);
	MEDIAN(dps);
	MEDIAN(loss_pct);
	MEDIAN(window_s);
#undef MEDIAN
	print_sample(stdout, "result", &o, &med);
	/* The spread of the headline figure tells a noisy median from a steady one. */
	switch (o.mode) {
	case MODE_STREAM:
		first = "mbps", off = offsetof(struct sample, mbps);
		break;
	case MODE_UDP_STREAM:
		first = "dps", off = offsetof(struct sample, dps);
		break;
	default:
		first = "tps", off = offsetof(struct sample, tps);
		break;
	}
	sp = spread_of(samples, o.runs, off);
	printf(" %s_min=%.1f %s_max=%.1f", first, sp.min, first, sp.max);
	printf(" bytes=%llu datagrams=%llu relay_bytes=%llu relay_datagrams=%llu runs=%d\n",
	       (unsigned long long)bytes, (unsigned long long)datagrams, (unsigned long long)rbytes,
	       (unsigned long long)rdgrams, o.runs);
	return 0;
}
