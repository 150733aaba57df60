// SPDX-License-Identifier: GPL-2.0
/*
 * ts-bench: request/response and bulk-stream benchmark over TCP (IPv4 or
 * IPv6, loopback or any address, optionally across two network namespaces)
 * and AF_UNIX stream sockets, so that plain TCP, spliced TCP, sockmap
 * redirection and AF_UNIX can be compared side by side.  The client is this
 * process, the server a forked child; either can be pinned to a CPU.  Each
 * invocation prints one "result ..." line: the median of --runs runs.
 *
 *   ts-bench rr|stream|mem --tcp PORT | --tcp6 PORT | --unix[=PATH]
 *            [--addr ADDR] [--server-netns PATH] [--client-netns PATH]
 *            [--busy-poll US] [--nodelay] [--size BYTES] [--seconds S] [--warmup S]
 *            [--cpus C1,C2] [--runs K] [--conns N] [-v]
 *
 * rr: the client writes SIZE bytes, the server echoes them, one transaction
 * at a time; transactions/s and the p50/p99 latency of a transaction.
 * stream: the client writes SIZE-byte messages, the server reads into a
 * SIZE-byte buffer; Mbit/s as received, and CPU seconds per GB moved from
 * getrusage of each side (softirq time lands on whichever side it ran in).
 * mem: N connections in this one process, measured idle and with SIZE bytes
 * written and unread on each: kernel memory per connection (both ends) from
 * /proc/meminfo, /proc/net/sockstat and the module's global_ring_bytes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Slack on top of warmup + seconds for setup and draining, before SIGALRM. */
#define RUN_GRACE_S   20
#define MAX_SECONDS   3600.0
#define MAX_RUNS      99
#define MAX_SIZE      (64u << 20)
#define NSEC_PER_SEC  1000000000ull
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

enum mode { MODE_RR, MODE_STREAM, MODE_MEM };
enum transport { TR_NONE, TR_TCP, TR_TCP6, TR_UNIX };

static const char *const mode_names[] = {
	[MODE_RR] = "rr", [MODE_STREAM] = "stream", [MODE_MEM] = "mem"};
static const char *const transport_names[] = {
	[TR_TCP] = "tcp", [TR_TCP6] = "tcp6", [TR_UNIX] = "unix"};

struct options {
	enum mode mode;
	enum transport transport;
	int port;
	const char *unix_path;	  /* NULL: a socketpair */
	const char *addr;	  /* NULL: loopback */
	int server_ns, client_ns; /* network namespace fds, -1: this one */
	int busy_poll_us;	  /* SO_BUSY_POLL on both ends, 0: not set */
	bool nodelay;		  /* stream: TCP_NODELAY too (rr always sets it) */
	int conns;		  /* mem */
	size_t size;
	size_t rsize; /* stream: bytes per read of the receiver */
	double seconds, warmup;
	int cpu_client, cpu_server; /* -1: not pinned */
	int runs;
	bool verbose;
};

/* The measured window of a run, in CLOCK_MONOTONIC ns, shared by both sides. */
struct window {
	uint64_t warm_end, end;
};

/* What the server measured, sent to the client through a pipe. */
struct server_report {
	uint64_t bytes;	  /* stream: received in its window */
	double elapsed_s; /* stream: length of its window */
	double cpu_s;	  /* stream: user + system time in its window */
};

/* What one run measured; each field's median over the runs is reported. */
struct sample {
	double tps, p50_us, p99_us;
	double mbps, cpu_s_per_gb, tx_cpu_s_per_gb, rx_cpu_s_per_gb;
	double window_s;      /* how long the measured window really was */
	uint64_t bytes_total; /* payload moved over the whole connection, both ways */
};

/* Where the server listens; the client connects there. */
struct endpoint {
	int listen_fd;	/* -1 for a socketpair */
	int pair_fd[2]; /* [0] client, [1] server; -1 unless a socketpair */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char name[128]; /* for messages */
};

/* Error messages name the side they come from. */
static const char *role = "";
static volatile pid_t server_pid;
static char alarm_msg[160];

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ts-bench: %s", role);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(FILE *f)
{
	fputs("usage: ts-bench rr|stream|mem TRANSPORT [options]\n"
	      "TRANSPORT (one of):\n"
	      "  --tcp PORT        TCP over 127.0.0.1:PORT\n"
	      "  --tcp6 PORT       TCP over [::1]:PORT\n"
	      "  --unix[=PATH]     AF_UNIX stream: a socketpair, or a socket bound at PATH\n"
	      "Options:\n"
	      "  --addr ADDR       the server's address instead of loopback (TCP)\n"
	      "  --server-netns P  the server's socket in the network namespace at P\n"
	      "  --client-netns P  the client's socket in the network namespace at P\n"
	      "                    (e.g. /run/netns/NAME; the client connects to --addr)\n"
	      "  --busy-poll US    SO_BUSY_POLL of US microseconds on both ends\n"
	      "  --conns N         mem: connections to hold (default 100)\n"
	      "  --nodelay         stream: TCP_NODELAY on both ends (rr always sets it)\n"
	      "  --size BYTES      bytes per request and reply (rr, default 1) or per write\n"
	      "                    (stream, default 64K); suffixes K and M are KiB and MiB\n"
	      "  --rsize BYTES     stream: bytes per read of the receiver (default: the\n"
	      "                    larger of --size and 64K, as a buffered reader does)\n"
	      "  --seconds S       measured time per run (default 5)\n"
	      "  --warmup S        unmeasured time before it (default 1)\n"
	      "  --cpus C1,C2      pin the client to CPU C1 and the server to CPU C2\n"
	      "  --runs K          repeat K times and report the median (default 1)\n"
	      "  -v, --verbose     one line per run on stderr\n"
	      "Prints one line, medians over the runs (and the extremes of the first figure):\n"
	      "  result mode=rr transport=tcp size=1 tps=.. p50_us=.. p99_us=.. window_s=..\n"
	      "         tps_min=.. tps_max=.. bytes=.. runs=K\n"
	      "  result mode=stream transport=.. size=.. mbps=.. cpu_s_per_gb=.. "
	      "tx_cpu_s_per_gb=..\n"
	      "         rx_cpu_s_per_gb=.. window_s=.. mbps_min=.. mbps_max=.. bytes=.. runs=K\n"
	      "  result mode=mem transport=.. size=.. conns=N queued=.. then, per connection\n"
	      "         (both ends) in bytes, idle_* and load_* of slab sunreclaim tcpmem ring "
	      "used\n"
	      "window_s: the time measured; bytes: the payload all runs moved, warmup included,\n"
	      "both ways.  mem: idle after a few 1-byte exchanges each way, load with SIZE bytes\n"
	      "(default 64K) written and unread on each connection; --seconds to settle before\n"
	      "each reading (default 2).\n",
	      f);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- option parsing ---- */

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

static int open_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("network namespace %s: %s", path, strerror(errno));
	return fd;
}

static void enter_netns(int fd, const char *who)
{
	if (fd >= 0 && setns(fd, CLONE_NEWNET))
		die("entering the %s's network namespace: %s", who, strerror(errno));
}

static void set_transport(struct options *o, enum transport t)
{
	if (o->transport != TR_NONE)
		die("give one transport: --tcp, --tcp6 or --unix");
	o->transport = t;
}

static void parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_TCP = 256,
		OPT_TCP6,
		OPT_UNIX,
		OPT_SIZE,
		OPT_SECONDS,
		OPT_WARMUP,
		OPT_CPUS,
		OPT_RUNS,
		OPT_ADDR,
		OPT_SERVER_NS,
		OPT_CLIENT_NS,
		OPT_BUSY_POLL,
		OPT_CONNS,
		OPT_NODELAY,
		OPT_RSIZE
	};
	static const struct option longopts[] = {
		{"tcp", required_argument, NULL, OPT_TCP},
		{"tcp6", required_argument, NULL, OPT_TCP6},
		{"unix", optional_argument, NULL, OPT_UNIX},
		{"size", required_argument, NULL, OPT_SIZE},
		{"rsize", required_argument, NULL, OPT_RSIZE},
		{"seconds", required_argument, NULL, OPT_SECONDS},
		{"warmup", required_argument, NULL, OPT_WARMUP},
		{"cpus", required_argument, NULL, OPT_CPUS},
		{"runs", required_argument, NULL, OPT_RUNS},
		{"addr", required_argument, NULL, OPT_ADDR},
		{"server-netns", required_argument, NULL, OPT_SERVER_NS},
		{"client-netns", required_argument, NULL, OPT_CLIENT_NS},
		{"busy-poll", required_argument, NULL, OPT_BUSY_POLL},
		{"conns", required_argument, NULL, OPT_CONNS},
		{"nodelay", no_argument, NULL, OPT_NODELAY},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool size_set = false, seconds_set = false;
	int c;

	*o = (struct options){.seconds = 5,
			      .warmup = 1,
			      .cpu_client = -1,
			      .cpu_server = -1,
			      .runs = 1,
			      .server_ns = -1,
			      .client_ns = -1,
			      .conns = 100};
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
			usage(stdout);
			exit(0);
		}
		usage(stderr);
		exit(2);
	}
	if (!strcmp(argv[1], "rr"))
		o->mode = MODE_RR;
	else if (!strcmp(argv[1], "stream"))
		o->mode = MODE_STREAM;
	else if (!strcmp(argv[1], "mem"))
		o->mode = MODE_MEM;
	else
		die("unknown mode '%s': use rr, stream or mem", argv[1]);

	optind = 2;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_TCP:
		case OPT_TCP6:
			set_transport(o, c == OPT_TCP ? TR_TCP : TR_TCP6);
			o->port = (int)parse_long("--tcp", optarg, 1, 65535, NULL);
			break;
		case OPT_UNIX:
			set_transport(o, TR_UNIX);
			o->unix_path = optarg;
			if (optarg && (!*optarg || strlen(optarg) >= SUN_PATH_SIZE))
				die("--unix=PATH: the path must be 1 to %zu bytes long",
				    SUN_PATH_SIZE - 1);
			break;
		case OPT_SIZE:
			o->size = parse_size("--size", optarg);
			size_set = true;
			break;
		case OPT_RSIZE:
			o->rsize = parse_size("--rsize", optarg);
			break;
		case OPT_SECONDS:
			o->seconds = parse_seconds("--seconds", optarg, 0.01);
			seconds_set = true;
			break;
		case OPT_WARMUP:
			o->warmup = parse_seconds("--warmup", optarg, 0);
			break;
		case OPT_CPUS:
			parse_cpus(optarg, o);
			break;
		case OPT_RUNS:
			o->runs = (int)parse_long("--runs", optarg, 1, MAX_RUNS, NULL);
			break;
		case OPT_ADDR:
			o->addr = optarg;
			break;
		case OPT_SERVER_NS:
		case OPT_CLIENT_NS:
			*(c == OPT_SERVER_NS ? &o->server_ns : &o->client_ns) = open_netns(optarg);
			break;
		case OPT_BUSY_POLL:
			o->busy_poll_us = (int)parse_long("--busy-poll", optarg, 0, 1000000, NULL);
			break;
		case OPT_CONNS:
			o->conns = (int)parse_long("--conns", optarg, 1, 100000, NULL);
			break;
		case OPT_NODELAY:
			o->nodelay = true;
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
	if (o->transport == TR_NONE)
		die("no transport: give --tcp PORT, --tcp6 PORT or --unix[=PATH]");
	if (!size_set)
		o->size = o->mode == MODE_RR ? 1 : 64 << 10;
	if (!o->rsize)
		o->rsize = o->size > (64 << 10) ? o->size : 64 << 10;
	if (!seconds_set && o->mode == MODE_MEM)
		o->seconds = 2;
	if (o->addr && o->transport == TR_UNIX)
		die("--addr is for --tcp and --tcp6, not --unix");
	if ((o->server_ns >= 0 || o->client_ns >= 0) && o->transport == TR_UNIX && !o->unix_path)
		die("--server-netns/--client-netns need a TCP transport or --unix=PATH");
	if (o->mode == MODE_MEM &&
	    (o->transport == TR_UNIX || o->server_ns >= 0 || o->client_ns >= 0 || o->runs != 1))
		die("mem measures TCP in this namespace: --tcp or --tcp6, one run");
}

/* ---- sockets ---- */

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

/* The server's end exists before the fork, so the client never races it. */
static void endpoint_open(const struct options *o, struct endpoint *ep)
{
	int one = 1;

	*ep = (struct endpoint){.listen_fd = -1, .pair_fd = {-1, -1}};
	memset(&ep->addr, 0, sizeof(ep->addr));
	if (o->transport == TR_UNIX && !o->unix_path) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ep->pair_fd))
			die("socketpair(AF_UNIX): %s", strerror(errno));
		snprintf(ep->name, sizeof(ep->name), "unix socketpair");
		return;
	}
	if (o->transport == TR_UNIX) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&ep->addr;
		struct stat st;

		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, o->unix_path);
		ep->addrlen = sizeof(*sun);
		snprintf(ep->name, sizeof(ep->name), "unix:%s", o->unix_path);
		/* A stale socket of an earlier run; never anything else. */
		if (!lstat(o->unix_path, &st)) {
			if (!S_ISSOCK(st.st_mode))
				die("%s exists and is not a socket", o->unix_path);
			unlink(o->unix_path);
		}
	} else if (o->transport == TR_TCP) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ep->addr;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(o->port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (o->addr && inet_pton(AF_INET, o->addr, &sin->sin_addr) != 1)
			die("--addr '%s' is not an IPv4 address (--tcp)", o->addr);
		ep->addrlen = sizeof(*sin);
		snprintf(ep->name, sizeof(ep->name), "%s:%d", o->addr ? o->addr : "127.0.0.1",
			 o->port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ep->addr;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(o->port);
		sin6->sin6_addr = in6addr_loopback;
		if (o->addr && inet_pton(AF_INET6, o->addr, &sin6->sin6_addr) != 1)
			die("--addr '%s' is not an IPv6 address (--tcp6)", o->addr);
		ep->addrlen = sizeof(*sin6);
		snprintf(ep->name, sizeof(ep->name), "[%s]:%d", o->addr ? o->addr : "::1", o->port);
	}
	ep->listen_fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ep->listen_fd < 0)
		die("socket for %s: %s", ep->name, strerror(errno));
	if (o->transport != TR_UNIX &&
	    setsockopt(ep->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		die("SO_REUSEADDR on %s: %s", ep->name, strerror(errno));
	if (bind(ep->listen_fd, (struct sockaddr *)&ep->addr, ep->addrlen))
		die("bind %s: %s", ep->name, strerror(errno));
	if (listen(ep->listen_fd, o->mode == MODE_MEM ? 128 : 1))
		die("listen on %s: %s", ep->name, strerror(errno));
}

/* The fds only: the path of a unix socket goes when the run is over. */
static void endpoint_close(struct endpoint *ep)
{
	if (ep->listen_fd >= 0)
		close(ep->listen_fd);
	if (ep->pair_fd[0] >= 0)
		close(ep->pair_fd[0]);
	if (ep->pair_fd[1] >= 0)
		close(ep->pair_fd[1]);
	ep->listen_fd = ep->pair_fd[0] = ep->pair_fd[1] = -1;
}

/*
 * Request/response pays Nagle's and delayed ACK's price otherwise.  Busy
 * polling: the spliced socket spins for that long in a blocking receive.
 */
static void set_nodelay(const struct options *o, int fd)
{
	int one = 1;

	if ((o->mode == MODE_RR || o->nodelay) && o->transport != TR_UNIX &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		die("TCP_NODELAY: %s", strerror(errno));
	if (o->busy_poll_us &&
	    setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &o->busy_poll_us, sizeof(o->busy_poll_us)))
		die("SO_BUSY_POLL %d: %s", o->busy_poll_us, strerror(errno));
}

/* The server's connection; the endpoint's other fds are closed. */
static int endpoint_accept(const struct options *o, struct endpoint *ep)
{
	int fd;

	if (ep->listen_fd < 0) {
		fd = ep->pair_fd[1];
		ep->pair_fd[1] = -1;
	} else {
		fd = accept4(ep->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			die("accept on %s: %s", ep->name, strerror(errno));
	}
	endpoint_close(ep);
	set_nodelay(o, fd);
	return fd;
}

/* The client's connection; the endpoint's other fds are closed. */
static int endpoint_connect(const struct options *o, struct endpoint *ep)
{
	int fd;

	if (ep->listen_fd < 0) {
		fd = ep->pair_fd[0];
		ep->pair_fd[0] = -1;
	} else {
		fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&ep->addr, ep->addrlen))
			die("connect to %s: %s", ep->name, strerror(errno));
	}
	endpoint_close(ep);
	set_nodelay(o, fd);
	return fd;
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

static void *alloc_buffer(size_t size)
{
	void *p = malloc(size);

	if (!p)
		die("out of memory for a %zu-byte buffer", size);
	memset(p, 0x5a, size);
	return p;
}

/* ---- latency histogram ---- */

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

/* ---- the two modes ---- */

static void rr_serve(const struct options *o, int fd, struct server_report *rep)
{
	char *buf = alloc_buffer(o->size);
	size_t n;

	while ((n = read_full(fd, buf, o->size)) == o->size) {
		write_full(fd, buf, o->size);
		rep->bytes += n;
	}
	if (n)
		die("the client closed in the middle of a %zu-byte request", o->size);
	free(buf);
}

static void rr_client(const struct options *o, const struct window *w, int fd, struct sample *s)
{
	char *req = alloc_buffer(o->size), *resp = alloc_buffer(o->size);
	struct hist *h = calloc(1, sizeof(*h));
	uint64_t seq = 0, t, t_next, t_first = 0;

	if (!h)
		die("out of memory for the histogram");
	for (t = now_ns();; t = t_next, seq++) {
		/* Stamped at both ends, so a reply that is not our echo shows. */
		req[0] = req[o->size - 1] = (char)seq;
		write_full(fd, req, o->size);
		if (read_full(fd, resp, o->size) != o->size)
			die("the server closed the connection mid-transaction");
		if (resp[0] != req[0] || resp[o->size - 1] != req[o->size - 1])
			die("transaction %llu: the reply is not the request's echo",
			    (unsigned long long)seq);
		t_next = now_ns();
		if (t >= w->warm_end) {
			if (!h->count)
				t_first = t;
			hist_add(h, t_next - t);
		}
		if (t_next >= w->end)
			break;
	}
	if (!h->count)
		die("no transaction completed within the measured window");
	s->window_s = (double)(t_next - t_first) / 1e9;
	s->tps = (double)h->count / s->window_s;
	s->bytes_total = 2 * o->size * (seq + 1);
	s->p50_us = hist_percentile(h, 0.50) / 1e3;
	s->p99_us = hist_percentile(h, 0.99) / 1e3;
	free(h);
	free(resp);
	free(req);
}

/* Counts what it moves between the first transfer after warmup and the end. */
struct meter {
	bool open, closed;
	uint64_t t0, t1, bytes;
	uint64_t total; /* warmup and drain included */
	double cpu0, cpu1;
};

static void meter_tick(struct meter *m, const struct window *w, uint64_t t, size_t n)
{
	m->total += n;
	if (m->closed || t < w->warm_end)
		return;
	if (!m->open) {
		m->open = true;
		m->t0 = t;
		m->cpu0 = cpu_seconds();
		return;
	}
	m->bytes += n;
	if (t >= w->end)
		m->closed = true;
	if (m->closed) {
		m->t1 = t;
		m->cpu1 = cpu_seconds();
	}
}

static void stream_receive(const struct options *o, const struct window *w, int fd,
			   struct server_report *rep)
{
	char *buf = alloc_buffer(o->rsize);
	struct meter m = {0};
	ssize_t n;

	do {
		n = read(fd, buf, o->rsize);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read: %s", strerror(errno));
		/* End of file before the window's end closes it early. */
		if (n == 0 && m.open && !m.closed) {
			m.closed = true;
			m.t1 = now_ns();
			m.cpu1 = cpu_seconds();
		}
		meter_tick(&m, w, now_ns(), (size_t)n);
	} while (n != 0);
	if (m.closed && m.t1 > m.t0) {
		rep->bytes = m.bytes;
		rep->elapsed_s = (double)(m.t1 - m.t0) / 1e9;
		rep->cpu_s = m.cpu1 - m.cpu0;
	}
	free(buf);
}

static void stream_send(const struct options *o, const struct window *w, int fd, struct meter *m)
{
	char *buf = alloc_buffer(o->size);

	while (!m->closed) {
		ssize_t n = write(fd, buf, o->size);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("write: %s", strerror(errno));
		meter_tick(m, w, now_ns(), (size_t)n);
	}
	if (shutdown(fd, SHUT_WR))
		die("shutdown: %s", strerror(errno));
	free(buf);
}

/* ---- one run ---- */

static void on_alarm(int sig)
{
	ssize_t unused;

	(void)sig;
	if (server_pid > 0)
		kill(server_pid, SIGKILL);
	unused = write(STDERR_FILENO, alarm_msg, strlen(alarm_msg));
	(void)unused;
	_exit(124);
}

static void arm_alarm(const struct options *o)
{
	unsigned int limit = (unsigned int)ceil(o->warmup + o->seconds) + RUN_GRACE_S;

	snprintf(alarm_msg, sizeof(alarm_msg),
		 "ts-bench: %stimeout: the run did not end within %u s (peer stuck?)\n", role,
		 limit);
	alarm(limit);
}

static void serve(const struct options *o, const struct window *w, struct endpoint *ep,
		  int report_fd, pid_t parent)
{
	struct server_report rep = {0};
	int fd;

	role = "server: ";
	server_pid = 0;
	/* The server must not outlive the client. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL))
		die("PR_SET_PDEATHSIG: %s", strerror(errno));
	if (getppid() != parent)
		_exit(1);
	arm_alarm(o);
	pin_to_cpu(o->cpu_server, "server");
	fd = endpoint_accept(o, ep);
	if (o->mode == MODE_RR)
		rr_serve(o, fd, &rep);
	else
		stream_receive(o, w, fd, &rep);
	close(fd);
	if (write(report_fd, &rep, sizeof(rep)) != sizeof(rep))
		die("reporting to the client: %s", strerror(errno));
	_exit(0);
}

static void reap_server(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	server_pid = 0;
	if (WIFSIGNALED(status))
		die("the server was killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	if (WEXITSTATUS(status))
		die("the server failed (exit status %d)", WEXITSTATUS(status));
}

static void run_once(const struct options *o, struct sample *s)
{
	uint64_t t0 = now_ns();
	struct window w = {
		.warm_end = t0 + (uint64_t)(o->warmup * 1e9),
		.end = t0 + (uint64_t)((o->warmup + o->seconds) * 1e9),
	};
	struct server_report rep = {0};
	struct endpoint ep;
	struct meter tx = {0};
	pid_t pid, parent = getpid();
	int report[2], fd;
	ssize_t n;

	/* A socket stays in the namespace it was made in. */
	enter_netns(o->server_ns, "server");
	endpoint_open(o, &ep);
	enter_netns(o->client_ns, "client");
	if (pipe2(report, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	arm_alarm(o);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(report[0]);
		serve(o, &w, &ep, report[1], parent);
	}
	server_pid = pid;
	close(report[1]);
	fd = endpoint_connect(o, &ep);
	if (o->mode == MODE_RR)
		rr_client(o, &w, fd, s);
	else
		stream_send(o, &w, fd, &tx);
	close(fd);
	n = read(report[0], &rep, sizeof(rep));
	close(report[0]);
	reap_server(pid);
	alarm(0);
	if (o->unix_path)
		unlink(o->unix_path);
	if (n != sizeof(rep))
		die("no report from the server");
	if (o->mode == MODE_STREAM) {
		if (!rep.bytes || !tx.bytes)
			die("no data moved within the measured window");
		s->mbps = (double)rep.bytes * 8 / rep.elapsed_s / 1e6;
		s->tx_cpu_s_per_gb = (tx.cpu1 - tx.cpu0) / ((double)tx.bytes / 1e9);
		s->rx_cpu_s_per_gb = rep.cpu_s / ((double)rep.bytes / 1e9);
		s->cpu_s_per_gb = s->tx_cpu_s_per_gb + s->rx_cpu_s_per_gb;
		s->window_s = rep.elapsed_s;
		s->bytes_total = tx.total;
	}
}

/* ---- mem ---- */

/* Kernel memory figures, in bytes. */
struct memsnap {
	double slab, sunreclaim, tcpmem, ring, used;
};

/* The value of the line starting with `key` in `path`, times `unit`; -1 if none. */
static double proc_value(const char *path, const char *key, int field, double unit)
{
	char line[512];
	FILE *f = fopen(path, "re");
	double v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *tok, *save = NULL;
		int i = 0;

		if (strncmp(line, key, strlen(key)))
			continue;
		for (tok = strtok_r(line, " \t\n", &save); tok;
		     tok = strtok_r(NULL, " \t\n", &save))
			if (i++ == field) {
				v = strtod(tok, NULL) * unit;
				break;
			}
		break;
	}
	fclose(f);
	return v;
}

static void memsnap_read(struct memsnap *m, double settle_s)
{
	struct timespec ts = {.tv_sec = (time_t)settle_s,
			      .tv_nsec = (long)((settle_s - (double)(time_t)settle_s) * 1e9)};
	double total, avail_parts;
	int fd;

	/* Frees after an RCU grace period and per-CPU slab caches settle first. */
	nanosleep(&ts, NULL);
	/* Fold the per-CPU vmstat deltas, else Slab moves in steps of a batch per CPU. */
	fd = open("/proc/sys/vm/stat_refresh", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1 && errno != EINVAL)
			die("writing /proc/sys/vm/stat_refresh: %s", strerror(errno));
		close(fd);
	}
	m->slab = proc_value("/proc/meminfo", "Slab:", 1, 1024);
	m->sunreclaim = proc_value("/proc/meminfo", "SUnreclaim:", 1, 1024);
	/* "TCP: inuse N orphan N tw N alloc N mem PAGES" */
	m->tcpmem = proc_value("/proc/net/sockstat", "TCP:", 10, (double)sysconf(_SC_PAGESIZE));
	m->ring = proc_value("/proc/net/tcp_splice", "global_ring_bytes ", 1, 1);
	if (m->ring < 0)
		m->ring = 0;
	total = proc_value("/proc/meminfo", "MemTotal:", 1, 1024);
	avail_parts = proc_value("/proc/meminfo", "MemFree:", 1, 1024) +
		      proc_value("/proc/meminfo", "Buffers:", 1, 1024) +
		      proc_value("/proc/meminfo", "Cached:", 1, 1024);
	m->used = total - avail_parts;
	if (m->slab < 0 || m->sunreclaim < 0 || m->tcpmem < 0 || total < 0)
		die("reading /proc/meminfo or /proc/net/sockstat failed");
}

static void print_mem(const char *head, const struct memsnap *a, const struct memsnap *b, int n)
{
	printf(" %s_slab=%.0f %s_sunreclaim=%.0f %s_tcpmem=%.0f %s_ring=%.0f %s_used=%.0f", head,
	       (b->slab - a->slab) / n, head, (b->sunreclaim - a->sunreclaim) / n, head,
	       (b->tcpmem - a->tcpmem) / n, head, (b->ring - a->ring) / n, head,
	       (b->used - a->used) / n);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		die("O_NONBLOCK: %s", strerror(errno));
}

/* Holds --conns connections in this process; see the top of the file. */
static void mem_run(struct options *o)
{
	struct memsnap base, idle, load, after;
	struct endpoint ep;
	struct rlimit rl;
	char *buf = alloc_buffer(o->size), byte = 'x';
	int *cfd, *sfd, i, round, n = o->conns;
	uint64_t queued = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)(2 * n + 64)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	cfd = calloc((size_t)n, sizeof(int));
	sfd = calloc((size_t)n, sizeof(int));
	if (!cfd || !sfd)
		die("out of memory for %d connections", n);
	endpoint_open(o, &ep);
	memsnap_read(&base, o->seconds);
	for (i = 0; i < n; i++) {
		cfd[i] = socket(ep.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (cfd[i] < 0)
			die("socket %d of %d: %s", i + 1, n, strerror(errno));
		if (connect(cfd[i], (struct sockaddr *)&ep.addr, ep.addrlen))
			die("connect %d of %d to %s: %s", i + 1, n, ep.name, strerror(errno));
		sfd[i] = accept4(ep.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (sfd[i] < 0)
			die("accept %d of %d: %s", i + 1, n, strerror(errno));
		/* A few exchanges each way, so that both directions hand over. */
		for (round = 0; round < 3; round++) {
			write_full(cfd[i], &byte, 1);
			if (read_full(sfd[i], &byte, 1) != 1)
				die("connection %d: early end of file", i + 1);
			write_full(sfd[i], &byte, 1);
			if (read_full(cfd[i], &byte, 1) != 1)
				die("connection %d: early end of file", i + 1);
		}
	}
	memsnap_read(&idle, o->seconds);
	/* Load: SIZE bytes (or what fits) written and left unread on each. */
	for (i = 0; i < n; i++) {
		size_t done = 0;

		set_nonblock(cfd[i]);
		while (done < o->size) {
			ssize_t w = write(cfd[i], buf + done, o->size - done);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (w < 0)
				die("write on connection %d: %s", i + 1, strerror(errno));
			done += (size_t)w;
		}
		queued += done;
	}
	memsnap_read(&load, o->seconds);
	for (i = 0; i < n; i++) {
		uint64_t left = 0;
		ssize_t r;

		shutdown(cfd[i], SHUT_WR);
		while ((r = read(sfd[i], buf, o->size)) > 0)
			left += (uint64_t)r;
		if (r < 0)
			die("read on connection %d: %s", i + 1, strerror(errno));
		(void)left;
		close(sfd[i]);
		close(cfd[i]);
	}
	endpoint_close(&ep);
	/*
	 * Closed sockets and rings are freed later (kvfree_rcu batches for
	 * seconds, lazy RCU longer): wait up to 15 s for Slab to come back to
	 * within a tenth of what the load added, or 16 KiB a connection.
	 */
	memsnap_read(&after, o->seconds);
	for (i = 0;
	     i < 15 && after.slab - base.slab > fmax(0.1 * (load.slab - base.slab), 16384.0 * n);
	     i++)
		memsnap_read(&after, 1);
	printf("result mode=mem transport=%s size=%zu conns=%d queued=%llu",
	       transport_names[o->transport], o->size, n, (unsigned long long)queued);
	print_mem("idle", &base, &idle, n);
	print_mem("load", &base, &load, n);
	print_mem("after", &base, &after, n);
	putchar('\n');
	free(cfd);
	free(sfd);
	free(buf);
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
	fprintf(f, "%s mode=%s transport=%s size=%zu ", head, mode_names[o->mode],
		transport_names[o->transport], o->size);
	if (o->mode == MODE_RR)
		fprintf(f, "tps=%.0f p50_us=%.1f p99_us=%.1f", s->tps, s->p50_us, s->p99_us);
	else
		fprintf(f, "mbps=%.1f cpu_s_per_gb=%.3f tx_cpu_s_per_gb=%.3f rx_cpu_s_per_gb=%.3f",
			s->mbps, s->cpu_s_per_gb, s->tx_cpu_s_per_gb, s->rx_cpu_s_per_gb);
	fprintf(f, " window_s=%.2f", s->window_s);
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	struct sample samples[MAX_RUNS], med;
	struct spread sp;
	uint64_t bytes_total = 0;
	struct options o;
	char head[32];
	int i;

	parse_options(argc, argv, &o);
	/* A side without a namespace of its own stays in this one. */
	if (o.server_ns >= 0 && o.client_ns < 0)
		o.client_ns = open_netns("/proc/self/ns/net");
	if (o.client_ns >= 0 && o.server_ns < 0)
		o.server_ns = open_netns("/proc/self/ns/net");
	signal(SIGPIPE, SIG_IGN);
	if (o.mode == MODE_MEM) {
		mem_run(&o);
		return 0;
	}
	sigaction(SIGALRM, &sa, NULL);
	role = "client: ";
	pin_to_cpu(o.cpu_client, "client");

	for (i = 0; i < o.runs; i++) {
		samples[i] = (struct sample){0};
		run_once(&o, &samples[i]);
		bytes_total += samples[i].bytes_total;
		/* The window opens at the first transfer after warmup: a stall shortens it. */
		if (samples[i].window_s < 0.9 * o.seconds)
			fprintf(stderr,
				"ts-bench: warning: run %d measured %.2f s of %g s: the data "
				"stalled "
				"across the end of the warmup\n",
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
	MEDIAN(mbps);
	MEDIAN(cpu_s_per_gb);
	MEDIAN(tx_cpu_s_per_gb);
	MEDIAN(rx_cpu_s_per_gb);
	MEDIAN(window_s);
#undef MEDIAN
	print_sample(stdout, "result", &o, &med);
	/* The spread of the headline figure tells a noisy median from a steady one. */
	if (o.mode == MODE_RR) {
		sp = spread_of(samples, o.runs, offsetof(struct sample, tps));
		printf(" tps_min=%.0f tps_max=%.0f", sp.min, sp.max);
	} else {
		sp = spread_of(samples, o.runs, offsetof(struct sample, mbps));
		printf(" mbps_min=%.1f mbps_max=%.1f", sp.min, sp.max);
	}
	printf(" bytes=%llu runs=%d\n", (unsigned long long)bytes_total, o.runs);
	return 0;
}
