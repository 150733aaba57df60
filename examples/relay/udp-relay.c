// SPDX-License-Identifier: GPL-2.0
/*
 * udp-relay: a connected-UDP relay for one client on libtcpsplice
 * (tcpsplice(3)).
 *
 *   udp-relay [--idle SECONDS] [--max BYTES] LOCAL_ADDRESS:PORT UPSTREAM_HOST:PORT
 *
 * Binds LOCAL_ADDRESS:PORT and waits for the first datagram: its sender is the
 * client, and the socket is connected to it.  A second socket is connected to
 * the upstream, and the two are spliced both ways: every datagram moves whole
 * in the kernel, the first one too (it was only peeked at).  The relay ends
 * after --idle SECONDS (default 60) without a datagram either way, on an error
 * (e.g. ECONNREFUSED: the upstream's port is closed), at --max, or on SIGINT or
 * SIGTERM; then one line on stdout says what moved and how it ended.  Without
 * the tcp_splice module it copies in user space, and says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: udp-relay [--idle SECONDS] [--max BYTES] LOCAL_ADDRESS:PORT "
		   "UPSTREAM_HOST:PORT\n"
		   "\n"
		   "Waits for a first datagram on LOCAL_ADDRESS:PORT and relays the datagrams\n"
		   "of its sender to UPSTREAM_HOST:PORT and back, spliced in the kernel by the\n"
		   "tcp_splice module (tcpsplice(3)), until the relay is idle; copies in user\n"
		   "space when the kernel cannot splice.\n"
		   "\n"
		   "  LOCAL_ADDRESS   an address or name; [ADDRESS] for IPv6; empty or * for\n"
		   "                  any (IPv4 and IPv6), as in :5353\n"
		   "  --idle SECONDS  end after SECONDS without a datagram either way\n"
		   "                  (default 60; 0: never)\n"
		   "  --max BYTES     end once BYTES moved one way (K, M, G: KiB, MiB, GiB)\n"
		   "  -h, --help      this text\n");
}

/* A UDP socket bound to LOCAL_ADDRESS:PORT (IPv6 first for any: it takes IPv4 too); or -1. */
static int bind_local(const char *arg)
{
	char *host, *port, addr[ADDR_STRLEN] = "";
	struct addrinfo *ais;
	int fd = -1, err = 0, zero = 0;

	if (parse_hostport(arg, &host, &port) < 0)
		return -1;
	ais = resolve("local address", host, port, SOCK_DGRAM, true);
	free(host);
	free(port);
	if (!ais)
		return -1;
	for (int pass = 0; pass < 2 && fd < 0; pass++) {
		for (struct addrinfo *ai = ais; ai && fd < 0; ai = ai->ai_next) {
			if ((ai->ai_family == AF_INET6) != (pass == 0))
				continue;
			addr_str(ai->ai_addr, ai->ai_addrlen, addr);
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
			if (fd < 0) {
				err = errno;
				continue;
			}
			if (ai->ai_family == AF_INET6)
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
			if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
				err = errno;
				close(fd);
				fd = -1;
			}
		}
	}
	freeaddrinfo(ais);
	if (fd < 0)
		fprintf(stderr, "udp-relay: bind %s: %s\n", addr, strerror(err));
	else
		fprintf(stderr, "udp-relay: waiting for a client on %s\n", addr);
	return fd;
}

/* A UDP socket connected to the upstream; or -1. */
static int connect_upstream(const char *arg)
{
	char *host, *port, addr[ADDR_STRLEN] = "";
	struct addrinfo *ais;
	int fd = -1, err = 0;

	if (parse_hostport(arg, &host, &port) < 0)
		return -1;
	if (!host) {
		fprintf(stderr, "udp-relay: the upstream needs a host: '%s'\n", arg);
		free(port);
		return -1;
	}
	ais = resolve("upstream", host, port, SOCK_DGRAM, false);
	free(host);
	free(port);
	if (!ais)
		return -1;
	for (struct addrinfo *ai = ais; ai && fd < 0; ai = ai->ai_next) {
		addr_str(ai->ai_addr, ai->ai_addrlen, addr);
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			err = errno;
			close(fd);
			fd = -1;
		} else if (fd < 0) {
			err = errno;
		}
	}
	freeaddrinfo(ais);
	if (fd < 0)
		fprintf(stderr, "udp-relay: upstream %s: %s\n", addr[0] ? addr : arg,
			strerror(err));
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"max", required_argument, NULL, 'm'},
		{"idle", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct relay r = {
		.a_name = "client",
		.b_name = "upstream",
		.dgram = true,
		.idle_us = 60000000,
	};
	struct sigaction sa = {.sa_handler = on_signal};
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char from[ADDR_STRLEN], to[ADDR_STRLEN], mode[160], byte;
	int c, status;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (parse_bytes(optarg, &r.max) < 0)
				return 2;
			break;
		case 'i':
			if (parse_seconds(optarg, &r.idle_us) < 0)
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
		fprintf(stderr, "udp-relay: %s\n",
			argc - optind < 2 ? "missing LOCAL_ADDRESS:PORT or UPSTREAM_HOST:PORT"
					  : "too many arguments");
		usage(stderr);
		return 2;
	}
	/* No SA_RESTART: the signal interrupts the wait, and the relay ends. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	r.a = bind_local(argv[optind]);
	if (r.a < 0)
		return 1;
	r.b = connect_upstream(argv[optind + 1]);
	if (r.b < 0)
		return 1;

	/* The first datagram names the client; it stays queued, and is moved first. */
	while (recvfrom(r.a, &byte, 1, MSG_PEEK, (struct sockaddr *)&ss, &len) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "udp-relay: recvfrom: %s\n", strerror(errno));
			return 1;
		}
		if (stop)
			return 0;
		len = sizeof(ss);
	}
	if (connect(r.a, (struct sockaddr *)&ss, len) < 0) {
		fprintf(stderr, "udp-relay: connect to the client %s: %s\n",
			addr_str((struct sockaddr *)&ss, len, from), strerror(errno));
		return 1;
	}
	peer_str(r.a, from);
	peer_str(r.b, to);
	fprintf(stderr, "udp-relay: relaying %s <-> %s\n", from, to);

	status = relay_run(&r, &stop);
	printf("%s <-> %s: %s, %" PRIu64 " bytes up, %" PRIu64 " bytes down, end: %s\n", from, to,
	       relay_mode(&r, mode, sizeof(mode)), r.moved[0], r.moved[1], r.end);
	close(r.a);
	close(r.b);
	return status;
}
