// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-relay: a TCP relay on libtcpsplice (tcpsplice(3)).
 *
 *   tcp-relay [--max BYTES] [--idle SECONDS] LISTEN_ADDRESS:PORT UPSTREAM_HOST:PORT
 *
 * For each client it accepts, it connects to the upstream and splices the two
 * connections both ways: the data moves in the kernel, never through this
 * program.  One thread per connection waits, in poll(), for the splices to
 * end, then logs one line on stdout (bytes each way, how it ended) and closes
 * both connections.  Where the kernel cannot splice (no tcp_splice module:
 * ENODEV; a socket held by tcp-splice's ring path, sockmap or kTLS: EBUSY) it
 * copies in user space, and says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"

#define MAX_LISTENERS 8
/* A connection's thread needs little: the copy's buffers are on the heap. */
#define THREAD_STACK (256 * 1024)

static uint64_t max_bytes, idle_us;
static const char *upstream_arg;
static struct addrinfo *upstream;

static void usage(FILE *f)
{
	fprintf(f, "usage: tcp-relay [--max BYTES] [--idle SECONDS] LISTEN_ADDRESS:PORT "
		   "UPSTREAM_HOST:PORT\n"
		   "\n"
		   "Relays each TCP connection accepted on LISTEN_ADDRESS:PORT to\n"
		   "UPSTREAM_HOST:PORT, both ways, spliced in the kernel by the tcp_splice\n"
		   "module (tcpsplice(3)); copies in user space when the kernel cannot splice.\n"
		   "One line per connection on stdout.\n"
		   "\n"
		   "  LISTEN_ADDRESS  an address or name; [ADDRESS] for IPv6; empty or * for any\n"
		   "                  (IPv4 and IPv6), as in :8080\n"
		   "  --max BYTES     end a connection once BYTES moved one way\n"
		   "                  (with K, M, G: KiB, MiB, GiB)\n"
		   "  --idle SECONDS  end a connection after SECONDS without a byte moved\n"
		   "                  either way\n"
		   "  -h, --help      this text\n");
}

/* Connects to the first upstream address that takes it; -1 with @why if none. */
static int connect_upstream(char *why, size_t len)
{
	char addr[ADDR_STRLEN] = "";
	int err = 0;

	for (struct addrinfo *ai = upstream; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			return fd;
		err = errno;
		addr_str(ai->ai_addr, ai->ai_addrlen, addr);
		close(fd);
	}
	snprintf(why, len, "upstream %s%s%s: %s", upstream_arg, addr[0] ? " at " : "", addr,
		 strerror(err));
	return -1;
}

static void *serve(void *arg)
{
	struct relay r = {
		.a = (int)(intptr_t)arg,
		.a_name = "client",
		.b_name = "upstream",
		.max = max_bytes,
		.idle_us = idle_us,
	};
	char from[ADDR_STRLEN], to[ADDR_STRLEN], why[256], mode[160];

	peer_str(r.a, from);
	r.b = connect_upstream(why, sizeof(why));
	if (r.b < 0) {
		printf("%s: %s\n", from, why);
		close(r.a);
		return NULL;
	}
	peer_str(r.b, to);
	relay_run(&r, NULL);
	printf("%s -> %s: %s, %" PRIu64 " bytes up, %" PRIu64 " bytes down, end: %s\n", from, to,
	       relay_mode(&r, mode, sizeof(mode)), r.moved[0], r.moved[1], r.end);
	close(r.b);
	close(r.a);
	return NULL;
}

/* Binds and listens on every address of LISTEN_ADDRESS; the count, or -1. */
static int listen_on(const char *arg, int fds[MAX_LISTENERS])
{
	char *host, *port, addr[ADDR_STRLEN];
	struct addrinfo *ais;
	int n = 0, one = 1;

	if (parse_hostport(arg, &host, &port) < 0)
		return -1;
	ais = resolve("listen address", host, port, SOCK_STREAM, true);
	free(host);
	free(port);
	if (!ais)
		return -1;
	for (struct addrinfo *ai = ais; ai && n < MAX_LISTENERS; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

		addr_str(ai->ai_addr, ai->ai_addrlen, addr);
		if (fd < 0) {
			/* No IPv6 (or IPv4) on this host: the other family will do. */
			if (errno == EAFNOSUPPORT)
				continue;
			goto fail;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* The IPv6 socket leaves IPv4 to the IPv4 one. */
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
			close(fd);
			goto fail;
		}
		fprintf(stderr, "tcp-relay: listening on %s\n", addr);
		fds[n++] = fd;
	}
	freeaddrinfo(ais);
	if (!n)
		fprintf(stderr, "tcp-relay: no address to listen on in '%s'\n", arg);
	return n ? n : -1;
fail:
	fprintf(stderr, "tcp-relay: listen on %s: %s\n", addr, strerror(errno));
	freeaddrinfo(ais);
	while (n)
		close(fds[--n]);
	return -1;
}

/* Accepts on every listener, a thread per connection, until a fatal error. */
static int accept_loop(int *fds, int n)
{
	struct pollfd p[MAX_LISTENERS];
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (int k = 0; k < n; k++)
		p[k] = (struct pollfd){.fd = fds[k], .events = POLLIN};
	for (;;) {
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "tcp-relay: poll: %s\n", strerror(errno));
			return 1;
		}
		for (int k = 0; k < n; k++) {
			pthread_t t;
			int fd, err;

			if (!p[k].revents)
				continue;
			fd = accept4(p[k].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0) {
				switch (errno) {
				case EINTR:
				case EAGAIN:
				case ECONNABORTED:
				case EPROTO:
					continue;
				case EMFILE:
				case ENFILE:
				case ENOBUFS:
				case ENOMEM:
					/* Out of descriptors or memory: wait a little. */
					fprintf(stderr, "tcp-relay: accept: %s\n", strerror(errno));
					nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
					continue;
				default:
					fprintf(stderr, "tcp-relay: accept: %s\n", strerror(errno));
					return 1;
				}
			}
			err = pthread_create(&t, &attr, serve, (void *)(intptr_t)fd);
			if (err) {
				char from[ADDR_STRLEN];

				peer_str(fd, from);
				printf("%s: no thread for it: %s\n", from, strerror(err));
				close(fd);
			}
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"max", required_argument, NULL, 'm'},
		{"idle", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int fds[MAX_LISTENERS], n, c;
	char *host, *port;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (parse_bytes(optarg, &max_bytes) < 0)
				return 2;
			break;
		case 'i':
			if (parse_seconds(optarg, &idle_us) < 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "tcp-relay: %s\n",
			argc - optind < 2 ? "missing LISTEN_ADDRESS:PORT or UPSTREAM_HOST:PORT"
					  : "too many arguments");
		usage(stderr);
		return 2;
	}
	/* Both arguments' syntax first: listen_on() parses its own again. */
	if (parse_hostport(argv[optind], &host, &port) < 0)
		return 2;
	free(host);
	free(port);
	upstream_arg = argv[optind + 1];
	if (parse_hostport(upstream_arg, &host, &port) < 0)
		return 2;
	if (!host) {
		fprintf(stderr, "tcp-relay: the upstream needs a host: '%s'\n", upstream_arg);
		free(port);
		return 2;
	}
	upstream = resolve("upstream", host, port, SOCK_STREAM, false);
	free(host);
	free(port);
	if (!upstream)
		return 1;
	n = listen_on(argv[optind], fds);
	if (n < 0)
		return 1;
	/* Sends never raise SIGPIPE (MSG_NOSIGNAL); one that forgot would not kill all. */
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return accept_loop(fds, n);
}
