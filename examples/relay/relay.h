/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The parts tcp-relay and udp-relay share: command-line values, addresses,
 * and relay_run(), which moves the data of two connected sockets both ways
 * (spliced with libtcpsplice, or copied in user space when the kernel cannot
 * splice them) until the relay ends.
 */
#ifndef RELAY_H
#define RELAY_H

#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "[2001:db8::1]:65535" and a little more. */
#define ADDR_STRLEN (INET6_ADDRSTRLEN + 10)

/*
 * Splits "HOST:PORT", "[IPV6]:PORT", ":PORT" or "*:PORT" (any address: *host
 * is NULL) into fresh strings; 0, or -1 with a message on stderr.
 */
int parse_hostport(const char *arg, char **host, char **port);
/* BYTES: a number, with K, M or G for KiB, MiB, GiB; 0 or -1. */
int parse_bytes(const char *arg, uint64_t *bytes);
/* SECONDS, fractions allowed, into microseconds; 0 or -1. */
int parse_seconds(const char *arg, uint64_t *us);

/* getaddrinfo() with a message on stderr naming @what when it fails. */
struct addrinfo *resolve(const char *what, const char *host, const char *port, int socktype,
			 bool passive);
/* "192.0.2.1:80", "[2001:db8::1]:80". */
const char *addr_str(const struct sockaddr *sa, socklen_t len, char buf[ADDR_STRLEN]);
/* The peer of a connected socket, as addr_str(). */
const char *peer_str(int fd, char buf[ADDR_STRLEN]);

/* A relay between the connected sockets a (client side) and b (upstream side). */
struct relay {
	int a, b;
	const char *a_name, *b_name; /* "client", "upstream" */
	bool dgram;		     /* UDP: datagrams, no end of stream */
	uint64_t max;		     /* per direction, 0: none */
	uint64_t idle_us;	     /* without a byte moved either way, 0: never */
	/* Set by relay_run(). */
	uint64_t moved[2]; /* [0]: a to b, [1]: b to a */
	bool spliced;	   /* false: copied in user space */
	char fallback[96]; /* why it copies ("tcpsplice: ..."), if it does */
	char end[160];	   /* how it ended */
};

/*
 * Moves data both ways until the relay ends: both directions at their end of
 * stream (TCP), an error, --max, --idle, or *@stop set by a signal (then poll()
 * must be interrupted: a handler without SA_RESTART).  Splices with
 * tcpsplice(); copies in user space when that fails with EBUSY or ENODEV.
 * Returns 0 when the relay ended normally (end of stream, idle), 1 when it
 * ended on an error or a limit; r->end says how.  The sockets stay open.
 */
int relay_run(struct relay *r, volatile sig_atomic_t *stop);

/* After relay_run(): "spliced", "copied in user space (why)" or "not relayed". */
const char *relay_mode(const struct relay *r, char *buf, size_t len);

#endif /* RELAY_H */
