// SPDX-License-Identifier: GPL-2.0
/*
 * ts-pathcost: the cost of a message's path through the kernel without any
 * sleeping or waking.  One thread owns both ends of a connection and does
 * write A, read B, write B, read A, so no call ever blocks: what is left is
 * the system calls and the transport's own work, which request/response
 * benchmarks mix with the scheduler's wake-ups.
 *
 *   ts-pathcost --tcp PORT | --unix [--size BYTES] [--count N] [--runs K]
 *
 * Prints one line "result transport=... size=... us_per_round_trip=...": the
 * median of K runs of N round trips (4 system calls each, more when a read
 * comes back short), after 1000 unmeasured ones.  --tcp listens on and
 * connects to 127.0.0.1:PORT; whether the connection is spliced is up to
 * the policy (tests/bench/pathcost checks it with the module's counters).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 99
#define WARMUP	 1000

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("ts-pathcost: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static long parse_long(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		die("%s takes a number from %ld to %ld, not '%s'", opt, min, max, s);
	return v;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void tcp_pair(int port, int fd[2])
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (l < 0)
		die("socket: %s", strerror(errno));
	if (setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		die("SO_REUSEADDR: %s", strerror(errno));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1))
		die("listen on 127.0.0.1:%d: %s", port, strerror(errno));
	fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd[0] < 0 || connect(fd[0], (struct sockaddr *)&a, sizeof(a)))
		die("connect to 127.0.0.1:%d: %s", port, strerror(errno));
	fd[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (fd[1] < 0)
		die("accept: %s", strerror(errno));
	for (int i = 0; i < 2; i++)
		if (setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
			die("TCP_NODELAY: %s", strerror(errno));
	close(l);
}

static void write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write: %s", w < 0 ? strerror(errno) : "wrote nothing");
		buf += w;
		n -= (size_t)w;
	}
}

static void read_all(int fd, char *buf, size_t n)
{
	while (n) {
		ssize_t r = read(fd, buf, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("read: %s", r < 0 ? strerror(errno) : "end of file");
		buf += r;
		n -= (size_t)r;
	}
}

/* Both directions once; the bytes are checked so a broken path shows. */
static void round_trip(const int fd[2], char *out, char *in, size_t size, long seq)
{
	out[0] = out[size - 1] = (char)seq;
	write_all(fd[0], out, size);
	read_all(fd[1], in, size);
	if (in[0] != out[0] || in[size - 1] != out[size - 1])
		die("round trip %ld: B read other bytes than A wrote", seq);
	write_all(fd[1], in, size);
	read_all(fd[0], out, size);
	if (out[0] != in[0] || out[size - 1] != in[size - 1])
		die("round trip %ld: A read other bytes than B wrote", seq);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void usage(FILE *f)
{
	fputs("usage: ts-pathcost --tcp PORT | --unix [--size BYTES] [--count N] [--runs K]\n"
	      "  --tcp PORT    a TCP connection over 127.0.0.1:PORT (listen and connect)\n"
	      "  --unix        an AF_UNIX stream socketpair\n"
	      "  --size BYTES  bytes per message (default 1)\n"
	      "  --count N     round trips per run (default 20000)\n"
	      "  --runs K      runs; the median is reported (default 3)\n"
	      "One thread owns both ends, so no call blocks: the result is the cost of\n"
	      "the path without sleeping and waking, per round trip of 4 system calls.\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"tcp", required_argument, NULL, 't'},
		{"unix", no_argument, NULL, 'u'},
		{"size", required_argument, NULL, 's'},
		{"count", required_argument, NULL, 'n'},
		{"runs", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	long size = 1, count = 20000, runs = 3, port = 0, seq = 0;
	double us[MAX_RUNS];
	bool unix_pair = false;
	char *out, *in;
	int fd[2], c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			port = parse_long("--tcp", optarg, 1, 65535);
			break;
		case 'u':
			unix_pair = true;
			break;
		case 's':
			size = parse_long("--size", optarg, 1, 1 << 20);
			break;
		case 'n':
			count = parse_long("--count", optarg, 1, 100000000);
			break;
		case 'r':
			runs = parse_long("--runs", optarg, 1, MAX_RUNS);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || !port == !unix_pair) {
		usage(stderr);
		return 2;
	}
	if (unix_pair) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd))
			die("socketpair: %s", strerror(errno));
	} else {
		tcp_pair((int)port, fd);
	}
	out = calloc(1, (size_t)size);
	in = calloc(1, (size_t)size);
	if (!out || !in)
		die("out of memory for %ld-byte buffers", size);
	for (int i = 0; i < WARMUP; i++)
		round_trip(fd, out, in, (size_t)size, seq++);
	for (long r = 0; r < runs; r++) {
		double t0 = now_s();

		for (long i = 0; i < count; i++)
			round_trip(fd, out, in, (size_t)size, seq++);
		us[r] = (now_s() - t0) / (double)count * 1e6;
	}
	qsort(us, (size_t)runs, sizeof(us[0]), cmp_double);
	printf("result transport=%s size=%ld us_per_round_trip=%.2f min=%.2f max=%.2f runs=%ld "
	       "count=%ld\n",
	       unix_pair ? "unix" : "tcp", size, us[runs / 2], us[0], us[runs - 1], runs, count);
	free(out);
	free(in);
	return 0;
}
