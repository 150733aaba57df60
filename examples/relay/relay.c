// SPDX-License-Identifier: GPL-2.0
/*
 * The relay of tcp-relay and udp-relay (see relay.h): two splices, one per
 * direction, watched with poll(); or, when the kernel cannot splice the
 * sockets, a copy through user space with the same ends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tcpsplice.h>

#include "relay.h"

/* The copy's buffer per direction: a whole datagram fits. */
#define COPY_BUF 65536
/* A source that polls with its splice still on: re-checked after 10 ms, doubling to 500 ms. */
#define RECHECK_FIRST_MS 10
#define RECHECK_MAX_MS	 500

/* ---- command line and addresses ---- */

int parse_hostport(const char *arg, char **host, char **port)
{
	const char *h = arg, *colon;
	size_t hlen;

	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');

		if (!close || close[1] != ':')
			goto bad;
		h = arg + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(arg, ':');
		/* An IPv6 address needs its brackets. */
		if (!colon || memchr(arg, ':', (size_t)(colon - arg)))
			goto bad;
		hlen = (size_t)(colon - arg);
	}
	if (!colon[1])
		goto bad;
	*port = strdup(colon + 1);
	*host = hlen == 0 || (hlen == 1 && h[0] == '*') ? NULL : strndup(h, hlen);
	if (!*port || (hlen && !*host && h[0] != '*')) {
		fprintf(stderr, "%s: out of memory\n", program_invocation_short_name);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "%s: '%s' is not HOST:PORT ([ADDRESS]:PORT for IPv6, :PORT for any)\n",
		program_invocation_short_name, arg);
	return -1;
}

int parse_bytes(const char *arg, uint64_t *bytes)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (end == arg || arg[0] == '-' || errno)
		goto bad;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case '\0':
		break;
	default:
		goto bad;
	}
	if (shift && *++end)
		goto bad;
	if (v > UINT64_MAX >> shift)
		goto bad;
	*bytes = (uint64_t)v << shift;
	return 0;
bad:
	fprintf(stderr, "%s: '%s' is not a byte count (a number, with K, M or G)\n",
		program_invocation_short_name, arg);
	return -1;
}

int parse_seconds(const char *arg, uint64_t *us)
{
	char *end;
	double s;

	errno = 0;
	s = strtod(arg, &end);
	if (end == arg || *end || errno || !isfinite(s) || s < 0 || s > 1e9) {
		fprintf(stderr, "%s: '%s' is not a number of seconds\n",
			program_invocation_short_name, arg);
		return -1;
	}
	*us = (uint64_t)llround(s * 1e6);
	if (s > 0 && *us == 0)
		*us = 1;
	return 0;
}

struct addrinfo *resolve(const char *what, const char *host, const char *port, int socktype,
			 bool passive)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = socktype,
		.ai_flags = passive ? AI_PASSIVE : 0,
	};
	struct addrinfo *ai;
	int rc = getaddrinfo(host, port, &hints, &ai);

	if (rc) {
		fprintf(stderr, "%s: %s %s:%s: %s\n", program_invocation_short_name, what,
			host ? host : "*", port,
			rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return NULL;
	}
	return ai;
}

const char *addr_str(const struct sockaddr *sa, socklen_t len, char buf[ADDR_STRLEN])
{
	char host[INET6_ADDRSTRLEN], serv[8];

	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, ADDR_STRLEN, "?");
		return buf;
	}
	snprintf(buf, ADDR_STRLEN, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
	return buf;
}

const char *peer_str(int fd, char buf[ADDR_STRLEN])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
		snprintf(buf, ADDR_STRLEN, "?");
		return buf;
	}
	return addr_str((struct sockaddr *)&ss, len, buf);
}

/* ---- the relay ---- */

static void set_end(struct relay *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The first end counts. */
static void set_end(struct relay *r, const char *fmt, ...)
{
	va_list ap;

	if (r->end[0])
		return;
	va_start(ap, fmt);
	vsnprintf(r->end, sizeof(r->end), fmt, ap);
	va_end(ap);
}

static const char *src_name(const struct relay *r, int dir)
{
	return dir ? r->b_name : r->a_name;
}

static const char *drain_name(const struct relay *r, int dir)
{
	return dir ? r->a_name : r->b_name;
}

/* The pending error of a socket, read (and so cleared) once. */
static int sock_error(int fd)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* One direction of a spliced relay. */
struct sdir {
	int src, drain;
	bool active;	 /* spliced now */
	uint64_t before; /* moved by its earlier splices (spliced again after an idle end) */
	uint64_t seen;	 /* its total when the other direction last took it as a sign of life */
	int recheck_ms;	 /* polled while still spliced (POLLHUP): re-checked after this long */
};

/*
 * After an event on the source of direction @i: whether its splice ended and
 * how.  Returns -1 while the relay goes on, else 0 (a normal end) or 1.
 */
static int spliced_check(struct relay *r, struct sdir *d, int i)
{
	struct sdir *o = &d[1 - i];
	uint64_t cur, ocur;
	bool active, oactive;
	int err;

	if (tcpsplice_moved(d[i].src, &cur, &active) < 0) {
		set_end(r, "tcpsplice_moved: %s", strerror(errno));
		return 1;
	}
	r->moved[i] = d[i].before + cur;
	if (active) {
		/*
		 * POLLHUP (end of stream both ways) or an error that the splice
		 * is about to see: not ended yet, and poll() would report it
		 * again at once.  Look again a little later.
		 */
		d[i].recheck_ms = d[i].recheck_ms ? d[i].recheck_ms * 2 : RECHECK_FIRST_MS;
		if (d[i].recheck_ms > RECHECK_MAX_MS)
			d[i].recheck_ms = RECHECK_MAX_MS;
		return -1;
	}
	d[i].active = false;
	d[i].recheck_ms = 0;
	err = sock_error(d[i].src);
	switch (err) {
	case 0:
		if (r->dgram) {
			set_end(r, "the splice %s to %s was undone", src_name(r, i),
				drain_name(r, i));
			return 0;
		}
		/* End of stream, passed on as shutdown(SHUT_WR) of the drain. */
		if (!o->active) {
			set_end(r, "closed by both sides");
			return 0;
		}
		return -1;
	case ETIMEDOUT:
		/*
		 * Idle one way: the relay ends only if the other way has been
		 * idle too, else this way is spliced again (a download does not
		 * end because the client sends nothing).  Its own total has not
		 * changed for a while: the other way's check starts from it.
		 */
		d[i].seen = r->moved[i];
		if (o->active && tcpsplice_moved(o->src, &ocur, &oactive) == 0 && oactive &&
		    o->before + ocur > o->seen) {
			o->seen = o->before + ocur;
			d[i].before = r->moved[i];
			if (r->max && d[i].before >= r->max) {
				set_end(r, "--max reached %s to %s", src_name(r, i),
					drain_name(r, i));
				return 1;
			}
			if (tcpsplice(d[i].src, d[i].drain, r->max ? r->max - d[i].before : 0,
				      r->idle_us) == 0) {
				d[i].active = true;
				return -1;
			}
			set_end(r, "tcpsplice %s to %s again: %s", src_name(r, i), drain_name(r, i),
				strerror(errno));
			return 1;
		}
		set_end(r, "idle timeout");
		return 0;
	case EFBIG:
		set_end(r, "--max reached %s to %s", src_name(r, i), drain_name(r, i));
		return 1;
	case EPIPE:
		set_end(r, "%s takes no more data (EPIPE)", drain_name(r, i));
		return 1;
	default:
		set_end(r, "%s: %s", src_name(r, i), strerror(err));
		return 1;
	}
}

static int run_spliced(struct relay *r, volatile sig_atomic_t *stop)
{
	struct sdir d[2] = {
		{.src = r->a, .drain = r->b, .active = true},
		{.src = r->b, .drain = r->a, .active = true},
	};
	int status = 0;

	while (!r->end[0]) {
		struct pollfd p[2];
		int n = 0, dir[2], timeout = -1;
		bool event[2] = {false, false};

		/*
		 * A spliced source does not poll readable: POLLIN, POLLERR or
		 * POLLHUP on it means its splice ended (or is ending).
		 */
		for (int i = 0; i < 2; i++) {
			if (!d[i].active)
				continue;
			if (d[i].recheck_ms) {
				if (timeout < 0 || d[i].recheck_ms < timeout)
					timeout = d[i].recheck_ms;
				continue;
			}
			p[n] = (struct pollfd){.fd = d[i].src, .events = POLLIN};
			dir[n++] = i;
		}
		if (!n && timeout < 0) {
			set_end(r, "both splices ended");
			break;
		}
		if (poll(p, (nfds_t)n, timeout) < 0) {
			if (errno != EINTR) {
				set_end(r, "poll: %s", strerror(errno));
				status = 1;
			} else if (stop && *stop) {
				set_end(r, "interrupted");
			}
			continue;
		}
		for (int k = 0; k < n; k++)
			event[dir[k]] = p[k].revents != 0;
		for (int i = 0; i < 2 && !r->end[0]; i++) {
			int rc;

			if (!d[i].active || (!event[i] && !d[i].recheck_ms))
				continue;
			rc = spliced_check(r, d, i);
			if (rc >= 0)
				status = rc;
		}
	}
	/* What is still spliced stops here; what it did not move stays in its source. */
	for (int i = 0; i < 2; i++) {
		uint64_t cur;

		if (!d[i].active)
			continue;
		tcpunsplice(d[i].src);
		if (tcpsplice_moved(d[i].src, &cur, NULL) == 0)
			r->moved[i] = d[i].before + cur;
	}
	return status;
}

/* One direction of a relay copied in user space. */
struct cdir {
	int src, drain;
	char *buf;
	size_t len, off;
	bool have; /* a datagram or bytes to send */
	bool eof;  /* TCP: the source's end of stream, passed on to the drain */
};

/* Reads what direction @i's source has.  -1 while the relay goes on, else 0 or 1. */
static int copy_in(struct relay *r, struct cdir *c, int i)
{
	size_t room = COPY_BUF;
	ssize_t n;

	if (r->max && r->moved[i] >= r->max) {
		/* Reached by a splice undone before the copy began. */
		set_end(r, "--max reached %s to %s", src_name(r, i), drain_name(r, i));
		return 1;
	}
	if (r->dgram && r->max) {
		/* A datagram that would go past --max stays where it is. */
		n = recv(c->src, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
		if (n >= 0 && r->moved[i] + (uint64_t)n > r->max) {
			set_end(r, "--max reached %s to %s", src_name(r, i), drain_name(r, i));
			return 1;
		}
	} else if (r->max && r->max - r->moved[i] < room) {
		room = (size_t)(r->max - r->moved[i]);
	}
	n = recv(c->src, c->buf, room, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return -1;
		set_end(r, "%s: %s", src_name(r, i), strerror(errno));
		return 1;
	}
	if (n == 0 && !r->dgram) {
		c->eof = true;
		if (shutdown(c->drain, SHUT_WR) < 0 && errno != ENOTCONN) {
			set_end(r, "%s: shutdown: %s", drain_name(r, i), strerror(errno));
			return 1;
		}
		return -1;
	}
	c->len = (size_t)n;
	c->off = 0;
	c->have = true;
	return -1;
}

/* Sends what direction @i holds.  -1 while the relay goes on, else 0 or 1. */
static int copy_out(struct relay *r, struct cdir *c, int i)
{
	ssize_t n = send(c->drain, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return -1;
		set_end(r, "%s: %s", drain_name(r, i), strerror(errno));
		return 1;
	}
	/* A datagram goes whole or not at all. */
	if (r->dgram)
		n = (ssize_t)(c->len - c->off);
	c->off += (size_t)n;
	r->moved[i] += (uint64_t)n;
	if (c->off == c->len)
		c->have = false;
	if (r->max && r->moved[i] == r->max && !c->have) {
		set_end(r, "--max reached %s to %s", src_name(r, i), drain_name(r, i));
		return 1;
	}
	return -1;
}

static int run_copied(struct relay *r, volatile sig_atomic_t *stop)
{
	struct cdir d[2] = {{.src = r->a, .drain = r->b}, {.src = r->b, .drain = r->a}};
	/* poll() slot k is socket a (k = 0) or b: the source of d[k], the drain of d[1 - k]. */
	bool hup[2] = {false, false};
	uint64_t last = now_us();
	int status = 0;

	for (int k = 0; k < 2; k++) {
		int fd = k ? r->b : r->a, fl = fcntl(fd, F_GETFL);

		d[k].buf = malloc(COPY_BUF);
		if (!d[k].buf || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			set_end(r, "setting up the copy: %s",
				d[k].buf ? strerror(errno) : "out of memory");
			status = 1;
		}
	}
	while (!r->end[0]) {
		struct pollfd p[2] = {{.fd = r->a}, {.fd = r->b}};
		uint64_t moved = r->moved[0] + r->moved[1];
		int timeout = -1, rc = -1;

		for (int i = 0; i < 2; i++) {
			if (d[i].have)
				p[1 - i].events |= POLLOUT;
			else if (!d[i].eof)
				p[i].events |= POLLIN;
		}
		if (!p[0].events && !p[1].events) {
			set_end(r, "closed by both sides");
			break;
		}
		/* A hung-up socket with nothing to do would poll at once, again and again. */
		for (int k = 0; k < 2; k++)
			if (hup[k] && !p[k].events)
				p[k].fd = -1;
		if (r->idle_us) {
			uint64_t now = now_us();

			if (now - last >= r->idle_us) {
				set_end(r, "idle timeout");
				break;
			}
			timeout = (int)((last + r->idle_us - now + 999) / 1000);
		}
		if (poll(p, 2, timeout) < 0) {
			if (errno != EINTR) {
				set_end(r, "poll: %s", strerror(errno));
				status = 1;
			} else if (stop && *stop) {
				set_end(r, "interrupted");
			}
			continue;
		}
		for (int k = 0; k < 2 && rc < 0; k++) {
			int err;

			if (!(p[k].revents & POLLERR) || p[k].events)
				continue;
			/* An error on a socket with nothing to do (a reset, an ICMP error). */
			err = sock_error(p[k].fd);
			if (err) {
				set_end(r, "%s: %s", src_name(r, k), strerror(err));
				rc = 1;
			}
		}
		for (int k = 0; k < 2; k++)
			if (p[k].revents & POLLHUP)
				hup[k] = true;
		for (int i = 0; i < 2 && rc < 0; i++) {
			if (d[i].have && p[1 - i].revents)
				rc = copy_out(r, &d[i], i);
			else if (!d[i].have && !d[i].eof && p[i].revents)
				rc = copy_in(r, &d[i], i);
		}
		if (rc >= 0)
			status = rc;
		if (r->moved[0] + r->moved[1] != moved)
			last = now_us();
	}
	free(d[0].buf);
	free(d[1].buf);
	return status;
}

const char *relay_mode(const struct relay *r, char *buf, size_t len)
{
	if (r->spliced)
		snprintf(buf, len, "spliced");
	else if (r->fallback[0])
		snprintf(buf, len, "copied in user space (%s)", r->fallback);
	else
		snprintf(buf, len, "not relayed");
	return buf;
}

int relay_run(struct relay *r, volatile sig_atomic_t *stop)
{
	int err;

	r->moved[0] = r->moved[1] = 0;
	r->spliced = false;
	r->fallback[0] = r->end[0] = '\0';
	if (tcpsplice(r->a, r->b, r->max, r->idle_us) == 0) {
		if (tcpsplice(r->b, r->a, r->max, r->idle_us) == 0) {
			r->spliced = true;
			return run_spliced(r, stop);
		}
		/* Both ways or neither: undo the first; what it moved counts. */
		err = errno;
		tcpunsplice(r->a);
		tcpsplice_moved(r->a, &r->moved[0], NULL);
		errno = err;
	}
	err = errno;
	if (err != EBUSY && err != ENODEV) {
		set_end(r, "tcpsplice: %s", strerror(err));
		return 1;
	}
	snprintf(r->fallback, sizeof(r->fallback), "tcpsplice: %s",
		 err == ENODEV ? "no /dev/tcp-splice, the tcp_splice module is not loaded"
			       : "a socket is busy (tcp-splice's ring path, sockmap or kTLS)");
	return run_copied(r, stop);
}
