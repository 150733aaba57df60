// SPDX-License-Identifier: GPL-2.0
/*
 * ts-stress: randomized integrity stress over spliced (10000-19999) and plain
 * (20000+) loopback ports.
 *
 * Worker threads open one connection after another until --duration is over.
 * Every connection follows a plan drawn from its own seed (printed with any
 * failure): stream lengths each way, per end blocking threads or one
 * non-blocking thread on poll or epoll, random send calls (send, write,
 * writev, sendmsg, sendfile, splice through a pipe), random receive calls
 * (recv, read, readv, recvmsg, MSG_PEEK then read, MSG_WAITALL, splice into a
 * pipe), fork (a child process continues a direction), and an ending: FIN
 * both ways, close instead of shutdown, an RST (SO_LINGER 0) part way, a
 * shutdown(SHUT_RD), or a close with bytes unread.
 *
 * Byte i of each direction is a function of (key, connection seed,
 * direction, i), so the receiver checks every byte at its position.  A plan
 * without a reset must deliver both streams whole and end in EOF with no error
 * at all; a plan with one (RST, SHUT_RD, early close) may cut the streams, but
 * what arrives must be an exact prefix and the only errors allowed are the
 * ones TCP gives there (ECONNRESET, EPIPE, an early EOF).  Anything else fails
 * the run.  At the end the module's counters must show that spliced
 * connections went through rings, and its live gauges must be back to idle.
 *
 * Output: "seed N" first, "FAIL ..." lines with the seed and plan on any
 * failure, then the totals; exit status 0 only without failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tsutil.h"

#define MAGIC	   0x7473747265737331ULL /* "tsstress1" */
#define MAX_OP	   (256 * 1024)
#define PIPE_CHUNK 65536
#define NONE	   UINT64_MAX
/* Bytes an end may leave unread when its peer leaves unread too. */
#define UNREAD_MAX (256 * 1024)

/* ---- options ---- */

static struct {
	uint64_t seed;
	uint64_t key;
	double duration;
	int workers;
	int plain_pct;
	int v6_pct;
	int port_base;
	int stall_s;
	bool idle_check;
	bool want_ring;
	uint64_t max_len;
	long max_conns;
	uint64_t only_conn; /* --conn: run this connection seed only */
} opt = {
	.duration = 30,
	.workers = 6,
	.plain_pct = 20,
	.v6_pct = 25,
	.stall_s = 300,
	.idle_check = true,
	.want_ring = true,
	.max_len = 4 << 20,
	.max_conns = -1,
	.only_conn = NONE,
};

/* ---- totals, in shared memory so that forked children count too ---- */

struct totals {
	atomic_long conns, conns_spliced, conns_plain, conns_v6, conns_lossy;
	atomic_long bytes, ops, forks, rsts, shut_rd, early_close, peeks, splices, sendfiles;
	atomic_long err_reset, err_pipe, early_eof, spurious_wakeups;
	atomic_long failures;
	atomic_int stop;
};

static struct totals *tot;

/* ---- plan ---- */

enum ep_mode { EP_THREADS, EP_POLL, EP_EPOLL, EP_MODES };
enum ending { END_FIN, END_CLOSE, END_RST, END_SHUT_RD, END_EARLY_CLOSE, END_MODES };

static const char *const mode_name[] = {"threads", "poll", "epoll"};
static const char *const end_name[] = {"fin", "close", "rst", "shut_rd", "early_close"};

struct plan {
	uint64_t cseed;
	uint64_t len[2]; /* [0] client to server, [1] server to client */
	int mode[2];	 /* per end: 0 client, 1 server */
	int ending[2];
	uint64_t cut[2];     /* RST: own send offset; SHUT_RD / early close: receive offset */
	uint64_t fork_tx[2]; /* send offset at which a child takes over, or NONE */
	uint64_t fork_rx[2]; /* receive offset, or NONE */
	size_t max_op[2];    /* largest call of each end */
	bool nodelay[2];
	bool lossy; /* a reset may cut the streams */
};

static uint64_t pick_len(struct ts_rng *g)
{
	uint64_t r = ts_rand_range(g, 0, 99), max;

	if (r < 5)
		return 0;
	if (r < 35)
		max = 1000;
	else if (r < 75)
		max = 64 * 1024;
	else if (r < 93)
		max = 512 * 1024;
	else
		max = opt.max_len;
	if (max > opt.max_len)
		max = opt.max_len;
	return ts_rand_range(g, 1, max ? max : 1);
}

static void make_plan(struct plan *p, uint64_t cseed)
{
	static const size_t ops[] = {16, 1500, 16384, 65536, MAX_OP};
	struct ts_rng g;

	memset(p, 0, sizeof(*p));
	ts_rng_init(&g, cseed);
	p->cseed = cseed;
	for (int e = 0; e < 2; e++) {
		uint64_t r;

		p->len[e] = pick_len(&g);
		p->mode[e] = (int)ts_rand_range(&g, 0, EP_MODES - 1);
		p->max_op[e] = ops[ts_rand_range(&g, 0, 4)];
		p->nodelay[e] = ts_rand_range(&g, 0, 1);
		p->fork_tx[e] = p->fork_rx[e] = NONE;
		if (ts_rand_range(&g, 0, 99) < 8 && p->len[e])
			p->fork_tx[e] = ts_rand_range(&g, 0, p->len[e] - 1);
		if (ts_rand_range(&g, 0, 99) < 8 && p->len[!e])
			p->fork_rx[e] = ts_rand_range(&g, 0, p->len[!e] - 1);
		r = ts_rand_range(&g, 0, 99);
		if (r < 62)
			p->ending[e] = END_FIN;
		else if (r < 80)
			p->ending[e] = END_CLOSE;
		else if (r < 88)
			p->ending[e] = END_RST;
		else if (r < 94)
			p->ending[e] = END_SHUT_RD;
		else
			p->ending[e] = END_EARLY_CLOSE;
		if (p->ending[e] == END_RST)
			p->cut[e] = ts_rand_range(&g, 0, p->len[e]);
		else if (p->ending[e] >= END_SHUT_RD)
			p->cut[e] = ts_rand_range(&g, 0, p->len[!e]);
		if (p->ending[e] >= END_RST)
			p->lossy = true;
		/* A child reading on would not see the sender's cut. */
		if (p->ending[e] == END_RST)
			p->fork_rx[e] = NONE;
	}
	/*
	 * Both ends stop reading, and each closes only once it has sent all:
	 * what one sends past the other's cut must fit in the buffers, or both
	 * wait for good, over TCP as through a ring (whose poll wants a quarter
	 * free).  UNREAD_MAX fits TCP's loopback buffers and a default ring.
	 * Seed 1177001191 conn 0x7abe3379aec5d278 hung on both transports:
	 * 3.9 MB to an end that read 214166 bytes, 3 MB to one that read none.
	 */
	if (p->ending[0] >= END_SHUT_RD && p->ending[1] >= END_SHUT_RD) {
		for (int e = 0; e < 2; e++) {
			if (p->len[e] <= p->cut[!e] + UNREAD_MAX)
				continue;
			p->len[e] = p->cut[!e] + UNREAD_MAX;
			if (p->fork_tx[e] != NONE && p->fork_tx[e] >= p->len[e])
				p->fork_tx[e] = NONE;
			if (p->fork_rx[!e] != NONE && p->fork_rx[!e] >= p->len[e])
				p->fork_rx[!e] = NONE;
		}
	}
}

static void plan_str(const struct plan *p, char *out, size_t n)
{
	snprintf(out, n,
		 "cseed=0x%016" PRIx64 " c2s=%" PRIu64 " s2c=%" PRIu64 " client=%s/%s/cut=%" PRIu64
		 "/op=%zu/ftx=%" PRId64 "/frx=%" PRId64 " server=%s/%s/cut=%" PRIu64
		 "/op=%zu/ftx=%" PRId64 "/frx=%" PRId64,
		 p->cseed, p->len[0], p->len[1], mode_name[p->mode[0]], end_name[p->ending[0]],
		 p->cut[0], p->max_op[0], (int64_t)p->fork_tx[0], (int64_t)p->fork_rx[0],
		 mode_name[p->mode[1]], end_name[p->ending[1]], p->cut[1], p->max_op[1],
		 (int64_t)p->fork_tx[1], (int64_t)p->fork_rx[1]);
}

/* ---- one end of a connection ---- */

/* What a direction ended with; copied back from a forked child. */
struct dres {
	uint64_t off; /* bytes sent / received and verified */
	bool done;    /* sender: all sent (or cut); receiver: EOF or cut */
	bool eof;
	int err; /* errno that ended it, 0 if none */
	uint64_t ops;
	char why[200]; /* first failure */
};

struct dir {
	struct dres r;
	uint64_t seed, len, cut, fork_at;
	size_t max_op;
	bool fin;      /* sender: shutdown(SHUT_WR) after the last byte */
	bool need_eof; /* receiver: the stream ends with EOF, not at its length */
	struct ts_rng g;
	char *buf, *buf2;
	int pipe[2];
	size_t pipe_pending;
	int memfd;
	bool tx;
};

struct ep {
	const struct plan *p;
	int side; /* 0 client, 1 server */
	int fd;
	bool spliced;
	struct dir tx, rx;
	atomic_bool stop; /* the other thread of the end cut the connection */
	int64_t last_progress_us;
};

static void dfail(struct dir *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dfail(struct dir *d, const char *fmt, ...)
{
	va_list ap;

	if (d->r.why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(d->r.why, sizeof(d->r.why), fmt, ap);
	va_end(ap);
	d->r.done = true;
}

static uint64_t stream_seed(const struct plan *p, int dir)
{
	return ts_mix64(opt.key * 0x9e3779b97f4a7c15ULL ^ ts_mix64(p->cseed + (uint64_t)dir));
}

static size_t op_size(struct dir *d, uint64_t left)
{
	/* Mostly large calls, sometimes tiny ones. */
	size_t max = ts_rand_range(&d->g, 0, 3) ? d->max_op : 64;
	size_t n = ts_rand_range(&d->g, 1, max);

	return n > left ? (size_t)left : n;
}

/* An error of a send or receive call: expected ones end the direction. */
static void derr(struct ep *e, struct dir *d, int err, const char *call)
{
	bool expected = e->p->lossy && (err == ECONNRESET || err == EPIPE);

	d->r.err = err;
	d->r.done = true;
	if (!expected) {
		dfail(d, "%s %s at offset %" PRIu64 " of %" PRIu64 ": %s",
		      d->tx ? "send" : "receive", call, d->r.off, d->len, strerror(err));
		return;
	}
	atomic_fetch_add(err == EPIPE ? &tot->err_pipe : &tot->err_reset, 1);
}

/*
 * One send call of a random kind.  Returns 1 on progress, 0 on EAGAIN, -1
 * when the direction ended.
 */
static int tx_step(struct ep *e, bool nb)
{
	struct dir *d = &e->tx;
	uint64_t left = d->len - d->r.off;
	int dw = nb ? MSG_DONTWAIT : 0;
	const char *call;
	ssize_t n;
	int kind;

	if (d->r.off >= d->cut && d->cut != NONE) {
		d->r.done = true;
		return -1;
	}
	if (d->cut != NONE && d->cut - d->r.off < left)
		left = d->cut - d->r.off;
	if (!left && !d->pipe_pending) {
		d->r.done = true;
		if (d->fin && shutdown(e->fd, SHUT_WR) < 0 && !(e->p->lossy && errno == ENOTCONN))
			dfail(d, "shutdown(SHUT_WR) after %" PRIu64 " bytes: %m", d->r.off);
		return -1;
	}
	kind = d->pipe_pending ? 5 : (int)ts_rand_range(&d->g, 0, 9);
	d->r.ops++;
	atomic_fetch_add(&tot->ops, 1);
	if (kind == 5 || kind == 6) { /* splice from a pipe */
		call = "splice";
		if (!d->pipe_pending) {
			size_t k = op_size(d, left);

			if (k > PIPE_CHUNK)
				k = PIPE_CHUNK;
			ts_fill(d->seed, d->r.off, d->buf, k);
			if (write(d->pipe[1], d->buf, k) != (ssize_t)k) {
				dfail(d, "write of %zu bytes into an empty pipe: %m", k);
				return -1;
			}
			d->pipe_pending = k;
			atomic_fetch_add(&tot->splices, 1);
		}
		n = splice(d->pipe[0], NULL, e->fd, NULL, d->pipe_pending,
			   SPLICE_F_MOVE | (nb ? SPLICE_F_NONBLOCK : 0));
		if (n > 0)
			d->pipe_pending -= n;
	} else {
		size_t k = op_size(d, left);

		ts_fill(d->seed, d->r.off, d->buf, k);
		switch (kind) {
		case 0:
		case 1:
			call = "send";
			n = send(e->fd, d->buf, k,
				 MSG_NOSIGNAL | dw | (ts_rand_range(&d->g, 0, 3) ? 0 : MSG_MORE));
			break;
		case 2:
			call = "write";
			n = nb ? send(e->fd, d->buf, k, MSG_NOSIGNAL | MSG_DONTWAIT)
			       : write(e->fd, d->buf, k);
			break;
		case 3:
		case 4: {
			struct iovec iov[8];
			int cnt = (int)ts_rand_range(&d->g, 1, 8);
			size_t at = 0;

			for (int i = 0; i < cnt; i++) {
				size_t part =
					i == cnt - 1 ? k - at : ts_rand_range(&d->g, 0, k - at);

				iov[i].iov_base = d->buf + at;
				iov[i].iov_len = part;
				at += part;
			}
			if (kind == 3 && !nb) {
				call = "writev";
				n = writev(e->fd, iov, cnt);
			} else {
				struct msghdr m = {.msg_iov = iov, .msg_iovlen = cnt};

				call = "sendmsg";
				n = sendmsg(e->fd, &m, MSG_NOSIGNAL | dw);
			}
			break;
		}
		case 7: { /* sendfile from a memfd holding the stream at its offsets */
			off_t o = (off_t)d->r.off;

			/*
			 * Never rewrite a page: TCP holds page references of
			 * sent bytes until they are read.
			 */
			call = "sendfile";
			if (pwrite(d->memfd, d->buf, k, o) != (ssize_t)k) {
				dfail(d, "pwrite memfd: %m");
				return -1;
			}
			n = sendfile(e->fd, d->memfd, &o, k);
			atomic_fetch_add(&tot->sendfiles, 1);
			break;
		}
		default:
			call = "send";
			n = send(e->fd, d->buf, k, MSG_NOSIGNAL | dw);
			break;
		}
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		derr(e, d, errno, call);
		return -1;
	}
	if (n == 0) {
		dfail(d, "%s returned 0 at offset %" PRIu64, call, d->r.off);
		return -1;
	}
	d->r.off += n;
	return 1;
}

/* Checks bytes received at the current offset; false on a mismatch. */
static bool verify(struct ep *e, struct dir *d, const char *buf, size_t n, const char *call)
{
	long bad;

	if (d->r.off + n > d->len) {
		dfail(d,
		      "%s: %zu bytes at offset %" PRIu64 " run past the stream's %" PRIu64
		      " bytes (another connection's bytes?)",
		      call, n, d->r.off, d->len);
		return false;
	}
	bad = ts_check(d->seed, d->r.off, buf, n);
	if (bad >= 0) {
		dfail(d,
		      "%s: byte %" PRIu64 " of the stream is wrong (%s end, read of %zu at %" PRIu64
		      ")",
		      call, d->r.off + bad, e->side ? "server" : "client", n, d->r.off);
		return false;
	}
	return true;
}

static void rx_eof(struct ep *e, struct dir *d)
{
	d->r.eof = true;
	d->r.done = true;
	if (d->r.off == d->len)
		return;
	if (e->p->lossy) {
		atomic_fetch_add(&tot->early_eof, 1);
		return;
	}
	dfail(d, "early EOF after %" PRIu64 " of %" PRIu64 " bytes", d->r.off, d->len);
}

/* One receive call of a random kind; same returns as tx_step. */
static int rx_step(struct ep *e, bool nb)
{
	struct dir *d = &e->rx;
	int dw = nb ? MSG_DONTWAIT : 0;
	size_t k = ts_rand_range(&d->g, 1, ts_rand_range(&d->g, 0, 3) ? d->max_op : 64);
	const char *call = "recv";
	int kind = (int)ts_rand_range(&d->g, 0, 9);
	ssize_t n;

	if ((d->cut != NONE && d->r.off >= d->cut) || (!d->need_eof && d->r.off == d->len)) {
		d->r.done = true;
		return -1;
	}
	if (d->cut != NONE && d->cut - d->r.off < k)
		k = d->cut - d->r.off;
	d->r.ops++;
	atomic_fetch_add(&tot->ops, 1);
	switch (kind) {
	case 0:
	case 1:
		n = recv(e->fd, d->buf, k, dw);
		break;
	case 2:
		call = "read";
		n = nb ? recv(e->fd, d->buf, k, MSG_DONTWAIT) : read(e->fd, d->buf, k);
		break;
	case 3:
	case 4: {
		struct iovec iov[4];
		int cnt = (int)ts_rand_range(&d->g, 1, 4);
		size_t at = 0;

		for (int i = 0; i < cnt; i++) {
			size_t part = i == cnt - 1 ? k - at : ts_rand_range(&d->g, 0, k - at);

			iov[i].iov_base = d->buf + at;
			iov[i].iov_len = part;
			at += part;
		}
		if (kind == 3 && !nb) {
			call = "readv";
			n = readv(e->fd, iov, cnt);
		} else {
			struct msghdr m = {.msg_iov = iov, .msg_iovlen = cnt};

			call = "recvmsg";
			n = recvmsg(e->fd, &m, dw);
		}
		break;
	}
	case 5: { /* peek, check, then read what was peeked (or less) */
		call = "peek";
		atomic_fetch_add(&tot->peeks, 1);
		n = recv(e->fd, d->buf2, k, MSG_PEEK | dw);
		if (n <= 0)
			break;
		if (!verify(e, d, d->buf2, n, "MSG_PEEK"))
			return -1;
		k = ts_rand_range(&d->g, 1, n);
		call = "recv after peek";
		n = recv(e->fd, d->buf, k, dw);
		if (n == 0) {
			dfail(d, "EOF right after a peek of %zu bytes at %" PRIu64, k, d->r.off);
			return -1;
		}
		break;
	}
	case 6:
		if (!nb && !e->p->lossy) {
			call = "recv MSG_WAITALL";
			if (k > d->len - d->r.off && d->len > d->r.off)
				k = d->len - d->r.off;
			n = recv(e->fd, d->buf, k, MSG_WAITALL);
			/* Short only at EOF: the next call sees it. */
			break;
		}
		n = recv(e->fd, d->buf, k, dw);
		break;
	case 7: { /* socket to pipe, then out of the pipe */
		call = "splice";
		if (k > PIPE_CHUNK)
			k = PIPE_CHUNK;
		atomic_fetch_add(&tot->splices, 1);
		n = splice(e->fd, NULL, d->pipe[1], NULL, k,
			   SPLICE_F_MOVE | (nb ? SPLICE_F_NONBLOCK : 0));
		if (n > 0) {
			ssize_t got = 0;

			while (got < n) {
				ssize_t m = read(d->pipe[0], d->buf + got, n - got);

				if (m <= 0) {
					dfail(d, "read back from the splice pipe: %m");
					return -1;
				}
				got += m;
			}
		}
		break;
	}
	default:
		n = recv(e->fd, d->buf, k, dw);
		break;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		derr(e, d, errno, call);
		return -1;
	}
	if (n == 0) {
		rx_eof(e, d);
		return -1;
	}
	if (!verify(e, d, d->buf, n, call))
		return -1;
	d->r.off += n;
	atomic_fetch_add(&tot->bytes, n);
	return 1;
}

/* A receiver at its cut, or at the length when it does not wait for EOF. */
static bool rx_finished(struct dir *d)
{
	if ((d->cut != NONE && d->r.off >= d->cut) || (!d->need_eof && d->r.off == d->len))
		d->r.done = true;
	return d->r.done;
}

/* ---- fork: a child process continues and sends back what it ended with ---- */

static void close_others(const int *keep, int n)
{
	int sorted[8], lo = 3;

	memcpy(sorted, keep, n * sizeof(int));
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (sorted[j] < sorted[i]) {
				int t = sorted[i];

				sorted[i] = sorted[j];
				sorted[j] = t;
			}
	for (int i = 0; i < n; i++) {
		if (sorted[i] < lo)
			continue;
		if (sorted[i] > lo)
			close_range(lo, sorted[i] - 1, 0);
		lo = sorted[i] + 1;
	}
	close_range(lo, ~0U, 0);
}

/*
 * Runs fn(e, arg) in a child that holds only the fds the end needs; the child
 * writes back both directions' results.  Returns false if the child died.
 */
static bool run_forked(struct ep *e, int epfd, void (*fn)(struct ep *, void *), void *arg)
{
	int pfd[2], st;
	pid_t pid;
	struct dres res[2];
	ssize_t got = 0;

	atomic_fetch_add(&tot->forks, 1);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		dfail(&e->tx, "pipe: %m");
		return false;
	}
	pid = fork();
	if (pid < 0) {
		dfail(&e->tx, "fork: %m");
		close(pfd[0]);
		close(pfd[1]);
		return false;
	}
	if (pid == 0) {
		int keep[8] = {e->fd,	      pfd[1],	     e->tx.pipe[0], e->tx.pipe[1],
			       e->rx.pipe[0], e->rx.pipe[1], e->tx.memfd,   epfd};

		close_others(keep, 8);
		fn(e, arg);
		res[0] = e->tx.r;
		res[1] = e->rx.r;
		if (write(pfd[1], res, sizeof(res)) != sizeof(res))
			_exit(3);
		_exit(0);
	}
	close(pfd[1]);
	while (got < (ssize_t)sizeof(res)) {
		ssize_t n = read(pfd[0], (char *)res + got, sizeof(res) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (got != sizeof(res) || !WIFEXITED(st) || WEXITSTATUS(st)) {
		dfail(&e->tx, "forked child died (status 0x%x) without its result", st);
		return false;
	}
	/* Only the results change: a thread of the parent may use the rest. */
	if (fn == NULL || arg != &e->rx)
		e->tx.r = res[0];
	if (fn == NULL || arg != &e->tx)
		e->rx.r = res[1];
	return true;
}

/* ---- blocking ends: a thread per direction, poll in between for the cut flag ---- */

static bool wait_ready(struct ep *e, short ev)
{
	for (;;) {
		struct pollfd p = {.fd = e->fd, .events = ev};
		int rc = poll(&p, 1, 100);

		if (rc > 0)
			return true;
		if (atomic_load(&e->stop) || atomic_load(&tot->stop))
			return false;
	}
}

static void dir_loop(struct ep *e, void *arg)
{
	struct dir *d = arg;

	while (!d->r.done) {
		int rc;

		if (d->fork_at != NONE && d->r.off >= d->fork_at) {
			d->fork_at = NONE;
			run_forked(e, -1, dir_loop, d);
			break;
		}
		if (!d->tx && rx_finished(d))
			break;
		if (!wait_ready(e, d->tx ? POLLOUT : POLLIN)) {
			d->r.done = true;
			break;
		}
		rc = d->tx ? tx_step(e, false) : rx_step(e, false);
		if (rc > 0)
			e->last_progress_us = ts_now_us();
	}
	/* An RST cut: the receiver of the end stops with the sender. */
	if (d->tx && e->p->ending[e->side] == END_RST)
		atomic_store(&e->stop, true);
}

static void *tx_thread(void *arg)
{
	struct ep *e = arg;

	dir_loop(e, &e->tx);
	return NULL;
}

/* ---- non-blocking ends: one thread on poll or epoll ---- */

static void nb_loop(struct ep *e, void *arg)
{
	int epfd = (int)(intptr_t)arg;
	uint32_t want = 0;

	while (!e->tx.r.done || !e->rx.r.done) {
		short rev = 0;
		uint32_t w = (e->tx.r.done ? 0 : EPOLLOUT) | (e->rx.r.done ? 0 : EPOLLIN);

		if (atomic_load(&tot->stop))
			break;
		if (!e->rx.r.done && rx_finished(&e->rx))
			continue;
		if ((e->tx.fork_at != NONE && e->tx.r.off >= e->tx.fork_at) ||
		    (e->rx.fork_at != NONE && e->rx.r.off >= e->rx.fork_at)) {
			e->tx.fork_at = e->rx.fork_at = NONE;
			run_forked(e, epfd, nb_loop, arg);
			return;
		}
		if (epfd >= 0) {
			struct epoll_event ev = {.events = w}, out;
			int rc;

			if (w != want) {
				if (epoll_ctl(epfd, EPOLL_CTL_MOD, e->fd, &ev) < 0) {
					dfail(&e->tx, "epoll_ctl: %m");
					return;
				}
				want = w;
			}
			rc = epoll_wait(epfd, &out, 1, 100);
			if (rc < 0 && errno != EINTR) {
				dfail(&e->tx, "epoll_wait: %m");
				return;
			}
			if (rc > 0)
				rev = (short)out.events;
		} else {
			struct pollfd p = {.fd = e->fd, .events = (short)w};

			if (poll(&p, 1, 100) > 0)
				rev = p.revents;
		}
		if (!e->rx.r.done && (rev & (POLLIN | POLLHUP | POLLERR))) {
			int rc = rx_step(e, true);

			if (rc > 0)
				e->last_progress_us = ts_now_us();
			else if (rc == 0 && (rev & POLLIN))
				atomic_fetch_add(&tot->spurious_wakeups, 1);
		}
		if (!e->tx.r.done && (rev & (POLLOUT | POLLHUP | POLLERR))) {
			if (tx_step(e, true) > 0)
				e->last_progress_us = ts_now_us();
		}
		/* An RST cut: the receiver stops with the sender. */
		if (e->tx.r.done && e->p->ending[e->side] == END_RST)
			e->rx.r.done = true;
	}
}

/* ---- a whole end: set-up, the directions, the ending ---- */

static bool dir_init(struct dir *d, bool tx)
{
	memset(d, 0, sizeof(*d));
	d->tx = tx;
	d->memfd = -1;
	d->pipe[0] = d->pipe[1] = -1;
	d->buf = malloc(MAX_OP);
	d->buf2 = malloc(MAX_OP);
	if (!d->buf || !d->buf2 || pipe2(d->pipe, O_CLOEXEC) < 0)
		return false;
	if (tx && (d->memfd = memfd_create("ts-stress", MFD_CLOEXEC)) < 0)
		return false;
	return true;
}

static void dir_free(struct dir *d)
{
	free(d->buf);
	free(d->buf2);
	for (int i = 0; i < 2; i++)
		if (d->pipe[i] >= 0)
			close(d->pipe[i]);
	if (d->memfd >= 0)
		close(d->memfd);
}

/* Plans with a cut close with unread bytes: that sends an RST, as over TCP. */
static void end_close(struct ep *e)
{
	close(e->fd);
	e->fd = -1;
	dir_free(&e->tx);
	dir_free(&e->rx);
}

static void run_end(struct ep *e)
{
	const struct plan *p = e->p;
	int s = e->side, ending = p->ending[s];

	if (!dir_init(&e->tx, true) || !dir_init(&e->rx, false)) {
		dfail(&e->tx, "set-up: %m");
		end_close(e);
		return;
	}
	e->tx.seed = stream_seed(p, s);
	e->tx.len = p->len[s];
	e->tx.cut = ending == END_RST ? p->cut[s] : NONE;
	e->tx.fork_at = p->fork_tx[s];
	e->tx.max_op = p->max_op[s];
	e->tx.fin = ending == END_FIN;
	ts_rng_init(&e->tx.g, p->cseed ^ (0x100 + s));
	e->rx.seed = stream_seed(p, !s);
	e->rx.len = p->len[!s];
	e->rx.cut = ending >= END_SHUT_RD ? p->cut[s] : NONE;
	e->rx.fork_at = p->fork_rx[s];
	e->rx.max_op = p->max_op[s];
	e->rx.need_eof = ending != END_CLOSE;
	ts_rng_init(&e->rx.g, p->cseed ^ (0x200 + s));
	e->last_progress_us = ts_now_us();
	ts_set_int(e->fd, IPPROTO_TCP, TCP_NODELAY, p->nodelay[s]);

	if (p->mode[s] == EP_THREADS) {
		pthread_t t;

		if (pthread_create(&t, NULL, tx_thread, e)) {
			dfail(&e->tx, "pthread_create");
			end_close(e);
			return;
		}
		dir_loop(e, &e->rx);
		/* A receiver cut (SHUT_RD, early close) ends here, the sender goes on. */
		if (ending == END_SHUT_RD && !e->rx.r.why[0]) {
			shutdown(e->fd, SHUT_RD);
			atomic_fetch_add(&tot->shut_rd, 1);
		}
		pthread_join(t, NULL);
	} else {
		int epfd = -1;

		if (p->mode[s] == EP_EPOLL) {
			struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT};

			epfd = epoll_create1(EPOLL_CLOEXEC);
			if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, e->fd, &ev) < 0) {
				dfail(&e->tx, "epoll: %m");
				end_close(e);
				return;
			}
		}
		ts_set_nonblock(e->fd, true);
		nb_loop(e, (void *)(intptr_t)epfd);
		if (epfd >= 0)
			close(epfd);
	}
	if (ending == END_SHUT_RD && p->mode[s] != EP_THREADS && !e->rx.r.why[0]) {
		shutdown(e->fd, SHUT_RD);
		atomic_fetch_add(&tot->shut_rd, 1);
	}
	/* After SHUT_RD, reads may still return queued bytes, then EOF. */
	if (ending == END_SHUT_RD && !e->rx.r.why[0]) {
		ts_set_nonblock(e->fd, true);
		for (int i = 0; i < 64; i++) {
			ssize_t n = recv(e->fd, e->rx.buf, MAX_OP, MSG_DONTWAIT);

			if (n <= 0)
				break;
			if (!verify(e, &e->rx, e->rx.buf, n, "recv after SHUT_RD"))
				break;
			e->rx.r.off += n;
		}
	}
	if (ending == END_RST) {
		struct linger l = {1, 0};

		setsockopt(e->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		atomic_fetch_add(&tot->rsts, 1);
	} else if (ending == END_EARLY_CLOSE) {
		atomic_fetch_add(&tot->early_close, 1);
	}
	/* Each end closes when it is done: the peer may wait for that EOF. */
	end_close(e);
}

/* ---- a connection ---- */

struct worker {
	int id;
	int lfd[2][2]; /* [spliced][v6] */
	int port[2][2];
	struct ts_rng g;
	pthread_t t;
	struct ep *cur[2];
};

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void report_fail(const struct plan *p, bool spliced, bool v6, int port, const char *who,
			const char *why)
{
	char ps[512];

	plan_str(p, ps, sizeof(ps));
	pthread_mutex_lock(&out_lock);
	printf("FAIL seed=%" PRIu64 " %s port=%d%s: %s: %s\n     plan: %s\n     replay: "
	       "ts-stress --seed %" PRIu64 " --conn 0x%016" PRIx64 "%s\n",
	       opt.seed, spliced ? "spliced" : "plain", port, v6 ? " (IPv6)" : "", who, why, ps,
	       opt.seed, p->cseed, opt.key ? " --key ..." : "");
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	atomic_fetch_add(&tot->failures, 1);
	atomic_store(&tot->stop, 1);
}

struct hdr {
	uint64_t magic, key, cseed, check;
};

static void *server_thread(void *arg)
{
	struct ep *e = arg;

	run_end(e);
	return NULL;
}

static bool read_hdr(int fd, struct hdr *h, char *why, size_t n)
{
	size_t got = 0;

	while (got < sizeof(*h)) {
		ssize_t k;

		if (!(ts_poll1(fd, POLLIN, opt.stall_s * 1000) & (POLLIN | POLLHUP | POLLERR))) {
			snprintf(why, n, "no header within %d s", opt.stall_s);
			return false;
		}
		k = recv(fd, (char *)h + got, sizeof(*h) - got, 0);
		if (k <= 0) {
			snprintf(why, n, "header: %s", k ? strerror(errno) : "EOF");
			return false;
		}
		got += k;
	}
	if (h->magic != MAGIC || h->check != ts_mix64(h->key ^ h->cseed)) {
		snprintf(why, n, "header is not a ts-stress header: bytes of another connection?");
		return false;
	}
	if (h->key != opt.key) {
		snprintf(why, n,
			 "header of key 0x%" PRIx64 ", this instance's is 0x%" PRIx64
			 ": paired across network namespaces",
			 h->key, opt.key);
		return false;
	}
	return true;
}

static void one_conn(struct worker *w, uint64_t cseed)
{
	struct plan p;
	struct ts_rng g;
	bool spliced, v6;
	struct ep ce, se;
	struct hdr h;
	pthread_t st;
	char why[256];
	int port, cfd, sfd;

	make_plan(&p, cseed);
	ts_rng_init(&g, cseed ^ 0x5eed);
	spliced = (int)ts_rand_range(&g, 0, 99) >= opt.plain_pct;
	v6 = (int)ts_rand_range(&g, 0, 99) < opt.v6_pct;
	port = w->port[spliced][v6];

	cfd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cfd < 0) {
		report_fail(&p, spliced, v6, port, "client", strerror(errno));
		return;
	}
	{
		struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
					  .sin6_port = htons(port),
					  .sin6_addr = IN6ADDR_LOOPBACK_INIT};
		struct sockaddr_in a4 = {.sin_family = AF_INET,
					 .sin_port = htons(port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int rc = v6 ? connect(cfd, (struct sockaddr *)&a6, sizeof(a6))
			    : connect(cfd, (struct sockaddr *)&a4, sizeof(a4));

		if (rc < 0) {
			snprintf(why, sizeof(why), "connect: %s", strerror(errno));
			report_fail(&p, spliced, v6, port, "client", why);
			close(cfd);
			return;
		}
	}
	if (!(ts_poll1(w->lfd[spliced][v6], POLLIN, opt.stall_s * 1000) & POLLIN) ||
	    (sfd = accept4(w->lfd[spliced][v6], NULL, NULL, SOCK_CLOEXEC)) < 0) {
		report_fail(&p, spliced, v6, port, "server", "accept failed");
		close(cfd);
		return;
	}
	h.magic = MAGIC;
	h.key = opt.key;
	h.cseed = cseed;
	h.check = ts_mix64(h.key ^ h.cseed);
	if (send(cfd, &h, sizeof(h), MSG_NOSIGNAL) != sizeof(h)) {
		report_fail(&p, spliced, v6, port, "client", "header send failed");
		close(cfd);
		close(sfd);
		return;
	}
	memset(&h, 0, sizeof(h));
	if (!read_hdr(sfd, &h, why, sizeof(why))) {
		report_fail(&p, spliced, v6, port, "server", why);
		close(cfd);
		close(sfd);
		return;
	}

	memset(&ce, 0, sizeof(ce));
	memset(&se, 0, sizeof(se));
	ce.p = se.p = &p;
	ce.side = 0;
	se.side = 1;
	ce.fd = cfd;
	se.fd = sfd;
	ce.spliced = se.spliced = spliced;
	ce.last_progress_us = se.last_progress_us = ts_now_us();
	w->cur[0] = &ce;
	w->cur[1] = &se;
	if (pthread_create(&st, NULL, server_thread, &se)) {
		report_fail(&p, spliced, v6, port, "server", "pthread_create");
		close(cfd);
		close(sfd);
		return;
	}
	run_end(&ce);
	pthread_join(st, NULL);

	/* Both ends done: the verdict, then the closes. */
	for (int s = 0; s < 2; s++) {
		struct ep *e = s ? &se : &ce;
		const char *who = s ? "server" : "client";

		if (e->tx.r.why[0])
			report_fail(&p, spliced, v6, port, who, e->tx.r.why);
		else if (e->rx.r.why[0])
			report_fail(&p, spliced, v6, port, who, e->rx.r.why);
	}
	if (!p.lossy && !atomic_load(&tot->stop)) {
		for (int s = 0; s < 2; s++) {
			struct ep *r = s ? &se : &ce; /* receiver of direction !s */
			char b[160];

			if (r->rx.r.off != r->rx.len || (r->rx.need_eof && !r->rx.r.eof)) {
				snprintf(b, sizeof(b),
					 "received %" PRIu64 " of %" PRIu64 " bytes%s", r->rx.r.off,
					 r->rx.len, r->rx.r.eof ? "" : " without EOF");
				report_fail(&p, spliced, v6, port, s ? "server" : "client", b);
			}
		}
	}
	w->cur[0] = w->cur[1] = NULL;
	atomic_fetch_add(&tot->conns, 1);
	atomic_fetch_add(spliced ? &tot->conns_spliced : &tot->conns_plain, 1);
	if (v6)
		atomic_fetch_add(&tot->conns_v6, 1);
	if (p.lossy)
		atomic_fetch_add(&tot->conns_lossy, 1);
}

static int64_t t_end_us;

static void *worker_thread(void *arg)
{
	struct worker *w = arg;

	for (long n = 0; !atomic_load(&tot->stop); n++) {
		if (ts_now_us() >= t_end_us)
			break;
		if (opt.max_conns >= 0 && atomic_load(&tot->conns) >= opt.max_conns)
			break;
		one_conn(w, opt.only_conn != NONE ? opt.only_conn : ts_rand(&w->g));
		if (opt.only_conn != NONE)
			break;
	}
	return NULL;
}

/* ---- listeners, counters, main ---- */

static int listen_on(bool v6, int port)
{
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
				  .sin6_port = htons(port),
				  .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	struct sockaddr_in a4 = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if ((v6 ? bind(fd, (struct sockaddr *)&a6, sizeof(a6))
		: bind(fd, (struct sockaddr *)&a4, sizeof(a4))) < 0 ||
	    listen(fd, 16) < 0) {
		fprintf(stderr, "ts-stress: listen on %s port %d: %m\n", v6 ? "[::1]" : "127.0.0.1",
			port);
		close(fd);
		return -1;
	}
	return fd;
}

static long long cval(const struct ts_counters *c, const char *name)
{
	bool f;
	long long v = ts_counter(c, name, &f);

	return f ? v : 0;
}

/* Live gauges of this namespace (and the global ones in the initial namespace). */
static const char *const gauges[] = {"pairs_active", "parked", "global_chan_live",
				     "global_ring_live", "global_ring_bytes"};

static bool gauges_idle(char *why, size_t n)
{
	struct ts_counters c;
	size_t k = 0;

	why[0] = 0;
	if (!ts_counters_read(&c))
		return true;
	for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
		bool f;
		long long v = ts_counter(&c, gauges[i], &f);

		if (f && v != 0)
			k += snprintf(why + k, k < n ? n - k : 0, "%s=%lld ", gauges[i], v);
	}
	return k == 0;
}

static void *watchdog(void *arg)
{
	struct worker *ws = arg;

	for (;;) {
		sleep(5);
		if (atomic_load(&tot->stop) == 2)
			return NULL;
		/* After a failure: unblock the connections still running. */
		if (atomic_load(&tot->stop) == 1)
			for (int i = 0; i < opt.workers; i++)
				for (int s = 0; s < 2; s++)
					if (ws[i].cur[s])
						shutdown(ws[i].cur[s]->fd, SHUT_RDWR);
		for (int i = 0; i < opt.workers; i++) {
			for (int s = 0; s < 2; s++) {
				struct ep *e = ws[i].cur[s];
				int64_t idle;

				if (!e)
					continue;
				idle = ts_now_us() - e->last_progress_us;
				if (idle > (int64_t)opt.stall_s * 1000000) {
					char ps[512];

					plan_str(e->p, ps, sizeof(ps));
					printf("FAIL seed=%" PRIu64 " %s: no progress for %d s "
					       "(hang): %s end at tx %" PRIu64 "/%" PRIu64
					       " rx %" PRIu64 "/%" PRIu64 "\n     plan: %s\n",
					       opt.seed, e->spliced ? "spliced" : "plain",
					       opt.stall_s, e->side ? "server" : "client",
					       e->tx.r.off, e->tx.len, e->rx.r.off, e->rx.len, ps);
					fflush(stdout);
					_exit(1);
				}
			}
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ts-stress [options]\n"
		   "  --seed N         seed of the run (default: from the clock; printed)\n"
		   "  --duration SEC   how long to open new connections (default 30)\n"
		   "  --workers N      connections at a time (default 6)\n"
		   "  --plain PCT      share of connections on plain ports (default 20)\n"
		   "  --v6 PCT         share over IPv6 (default 25)\n"
		   "  --max-len BYTES  largest stream per direction (default 4194304)\n"
		   "  --conns N        stop after N connections\n"
		   "  --conn SEED      run the one connection of this seed (a replay)\n"
		   "  --port-base N    ports 10000+N.. and 20000+N.. (default 0)\n"
		   "  --key N          stream key: instances in other namespaces use other keys\n"
		   "  --stall SEC      fail as a hang after SEC without progress (default 300)\n"
		   "  --no-idle-check  do not require the module's gauges to be idle at the end\n"
		   "  --no-ring-check  do not require ring bytes (e.g. the ring cap is reached)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"seed", 1, 0, 's'},	      {"duration", 1, 0, 'd'}, {"workers", 1, 0, 'w'},
		{"plain", 1, 0, 'p'},	      {"v6", 1, 0, '6'},       {"max-len", 1, 0, 'm'},
		{"conns", 1, 0, 'n'},	      {"conn", 1, 0, 'c'},     {"port-base", 1, 0, 'b'},
		{"key", 1, 0, 'k'},	      {"stall", 1, 0, 'S'},    {"no-idle-check", 0, 0, 'I'},
		{"no-ring-check", 0, 0, 'R'}, {"help", 0, 0, 'h'},     {0, 0, 0, 0},
	};
	struct ts_counters before, after;
	struct worker *ws;
	pthread_t wd;
	char *end;
	int c;

	opt.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		errno = 0;
		switch (c) {
		case 's':
			opt.seed = strtoull(optarg, &end, 0);
			break;
		case 'd':
			opt.duration = strtod(optarg, &end);
			break;
		case 'w':
			opt.workers = (int)strtol(optarg, &end, 0);
			break;
		case 'p':
			opt.plain_pct = (int)strtol(optarg, &end, 0);
			break;
		case '6':
			opt.v6_pct = (int)strtol(optarg, &end, 0);
			break;
		case 'm':
			opt.max_len = strtoull(optarg, &end, 0);
			break;
		case 'n':
			opt.max_conns = strtol(optarg, &end, 0);
			break;
		case 'c':
			opt.only_conn = strtoull(optarg, &end, 0);
			break;
		case 'b':
			opt.port_base = (int)strtol(optarg, &end, 0);
			break;
		case 'k':
			opt.key = strtoull(optarg, &end, 0);
			break;
		case 'S':
			opt.stall_s = (int)strtol(optarg, &end, 0);
			break;
		case 'I':
			opt.idle_check = false;
			continue;
		case 'R':
			opt.want_ring = false;
			continue;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (errno || *end || end == optarg) {
			const char *name = "?";

			for (const struct option *o = lo; o->name; o++)
				if (o->val == c)
					name = o->name;
			fprintf(stderr, "ts-stress: bad value '%s' for --%s\n", optarg, name);
			return 2;
		}
	}
	if (optind < argc || opt.workers < 1 || opt.workers > 256 || opt.plain_pct < 0 ||
	    opt.plain_pct > 100 || opt.v6_pct < 0 || opt.v6_pct > 100 || opt.duration <= 0 ||
	    opt.port_base < 0 || opt.port_base + 2 * opt.workers > 9999 || opt.stall_s < 1) {
		usage(stderr);
		return 2;
	}
	if (opt.only_conn != NONE)
		opt.workers = 1;
	printf("seed %" PRIu64 "\n", opt.seed);
	fflush(stdout);
	signal(SIGPIPE, SIG_IGN);
	tot = mmap(NULL, sizeof(*tot), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ws = calloc(opt.workers, sizeof(*ws));
	if (tot == MAP_FAILED || !ws) {
		perror("ts-stress: memory");
		return 2;
	}
	{
		struct rlimit rl = {65536, 65536};

		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (int i = 0; i < opt.workers; i++) {
		ws[i].id = i;
		ts_rng_init(&ws[i].g, ts_mix64(opt.seed + i));
		for (int s = 0; s < 2; s++)
			for (int v = 0; v < 2; v++) {
				int port =
					(s ? TS_PORT_SPLICED : TS_PORT_PLAIN) + opt.port_base + i;

				ws[i].port[s][v] = port;
				ws[i].lfd[s][v] = listen_on(v, port);
				if (ws[i].lfd[s][v] < 0)
					return 2;
			}
	}
	ts_counters_read(&before);
	t_end_us = ts_now_us() + (int64_t)(opt.duration * 1e6);
	pthread_create(&wd, NULL, watchdog, ws);
	for (int i = 0; i < opt.workers; i++)
		pthread_create(&ws[i].t, NULL, worker_thread, &ws[i]);
	for (int i = 0; i < opt.workers; i++)
		pthread_join(ws[i].t, NULL);
	for (int i = 0; i < opt.workers; i++)
		for (int s = 0; s < 2; s++)
			for (int v = 0; v < 2; v++)
				close(ws[i].lfd[s][v]);

	/* The module's view. */
	if (ts_counters_read(&after)) {
		long long ring = cval(&after, "ring_bytes_tx") - cval(&before, "ring_bytes_tx");
		long long pairs = cval(&after, "pairs_total") - cval(&before, "pairs_total");
		char why[256];
		bool idle = true;

		printf("module: pairs_total +%lld, ring_bytes_tx +%lld, startup_bytes +%lld, "
		       "handoffs +%lld, ring_cap_hits +%lld, ring_alloc_fail +%lld, "
		       "ring_grows +%lld, ring_shrinks +%lld, ring_persist_wakes +%lld\n",
		       pairs, ring, cval(&after, "startup_bytes") - cval(&before, "startup_bytes"),
		       cval(&after, "handoffs") - cval(&before, "handoffs"),
		       cval(&after, "ring_cap_hits") - cval(&before, "ring_cap_hits"),
		       cval(&after, "ring_alloc_fail") - cval(&before, "ring_alloc_fail"),
		       cval(&after, "ring_grows") - cval(&before, "ring_grows"),
		       cval(&after, "ring_shrinks") - cval(&before, "ring_shrinks"),
		       cval(&after, "ring_persist_wakes") - cval(&before, "ring_persist_wakes"));
		if (opt.want_ring && atomic_load(&tot->conns_spliced) > 0 &&
		    atomic_load(&tot->bytes) > 0 && (ring <= 0 || pairs <= 0)) {
			printf("FAIL seed=%" PRIu64
			       ": %ld spliced connections but the module paired %lld and "
			       "moved %lld ring bytes\n",
			       opt.seed, atomic_load(&tot->conns_spliced), pairs, ring);
			atomic_fetch_add(&tot->failures, 1);
		}
		if (opt.idle_check) {
			for (int i = 0; i < 100 && !(idle = gauges_idle(why, sizeof(why))); i++)
				ts_sleep_ms(100);
			if (!idle) {
				printf("FAIL seed=%" PRIu64 ": gauges not idle 10 s after the last "
				       "connection closed: %s\n",
				       opt.seed, why);
				atomic_fetch_add(&tot->failures, 1);
			}
		}
	} else if (opt.want_ring && atomic_load(&tot->conns_spliced) > 0) {
		printf("note: no /proc/net/tcp_splice: module not loaded, nothing spliced\n");
	}
	atomic_store(&tot->stop, 2);
	printf("totals: connections %ld (spliced %ld, plain %ld, IPv6 %ld, with a reset %ld), "
	       "bytes %ld, operations %ld, forks %ld, rsts %ld, shut_rd %ld, early_close %ld, "
	       "peeks %ld, splices %ld, sendfiles %ld; expected errors: ECONNRESET %ld, EPIPE "
	       "%ld, early EOF %ld; spurious wakeups %ld; failures %ld\n",
	       atomic_load(&tot->conns), atomic_load(&tot->conns_spliced),
	       atomic_load(&tot->conns_plain), atomic_load(&tot->conns_v6),
	       atomic_load(&tot->conns_lossy), atomic_load(&tot->bytes), atomic_load(&tot->ops),
	       atomic_load(&tot->forks), atomic_load(&tot->rsts), atomic_load(&tot->shut_rd),
	       atomic_load(&tot->early_close), atomic_load(&tot->peeks), atomic_load(&tot->splices),
	       atomic_load(&tot->sendfiles), atomic_load(&tot->err_reset),
	       atomic_load(&tot->err_pipe), atomic_load(&tot->early_eof),
	       atomic_load(&tot->spurious_wakeups), atomic_load(&tot->failures));
	if (atomic_load(&tot->failures))
		printf("seed %" PRIu64 " failed\n", opt.seed);
	return atomic_load(&tot->failures) ? 1 : 0;
}
