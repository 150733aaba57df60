// SPDX-License-Identifier: GPL-2.0
/*
 * ts-chaos: random system calls on spliced (and some plain) sockets.
 *
 *   ts-chaos [--seed N] [--duration SEC] [--threads N] [--pairs N]
 *
 * Keeps a table of connected pairs and, from several threads, calls random
 * operations on random ends with random flags, sizes and arguments, invalid
 * ones included: send/recv/sendmsg/recvmsg flags, ioctl SIOCINQ, SIOCOUTQ,
 * SIOCOUTQNSD, FIONREAD, FIONBIO, setsockopt/getsockopt of random levels and
 * options with random bytes, shutdown, splice to and from pipes with bad fds,
 * sendfile, poll, connect/listen/accept on connected sockets, close with and
 * without an RST, reconnect.  Every call is non-blocking (sockets are reset to
 * O_NONBLOCK after each call that may change it, SO_LINGER is cleared before
 * a close), so a call that blocks is a hang: an alarm fails the run naming
 * the call.  Results are not judged (the kernel may refuse anything); the run
 * must end, and afterwards the module's gauges must drain to zero (no leak)
 * and the kernel log must stay clean (the suite checks that).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tsutil.h"

#define MAX_PAIRS 64
#define BUF	  (1 << 20)

static struct {
	uint64_t seed;
	double duration;
	int threads, pairs, port;
} opt = {.duration = 20, .threads = 3, .pairs = 8, .port = TS_PORT_SPLICED + 9300};

struct pair {
	int fd[2];
	bool spliced;
};

static struct pair pairs[MAX_PAIRS];
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static int lfd[2];
static atomic_long n_ops, n_reopen, n_err;
static _Atomic(const char *) cur_op[16];
static int64_t t_end;

static void nonblock_again(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void unlinger_close(int fd)
{
	struct linger l = {0, 0};

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static int lport[2];

/*
 * A listener on the first free port from opt.port (spliced) or opt.port +
 * 10000 (plain) on: the random calls may have left a socket on a port.
 */
static int listener(bool spliced)
{
	for (int k = 0; k < 64; k++) {
		int port = (spliced ? opt.port : opt.port + 10000) + k, one = 1;
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons(port),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		if (fd < 0)
			ts_fail("socket: %m");
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 128) == 0) {
			lport[spliced] = port;
			return fd;
		}
		close(fd);
	}
	ts_fail("ts-chaos: no free port from %d on", spliced ? opt.port : opt.port + 10000);
}

/*
 * A fresh pair on the spliced (or, one time in four, the plain) port.  The
 * random calls may have shut the listener down: then it is made again.
 */
static void open_pair(struct pair *p, struct ts_rng *g)
{
	bool spliced = ts_rand_range(g, 0, 3) != 0;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(lport[spliced]),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = -1, acc = -1;

	for (int tries = 0; tries < 3 && acc < 0; tries++) {
		struct sockaddr_in mine, peer;
		socklen_t ml = sizeof(mine), pl = sizeof(peer);

		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    getsockname(fd, (struct sockaddr *)&mine, &ml) < 0)
			goto again;
		/* Random connect calls may have queued other connections: find ours. */
		for (int k = 0; k < 64 && acc < 0; k++) {
			if (!(ts_poll1(lfd[spliced], POLLIN, 5000) & POLLIN))
				break;
			acc = accept4(lfd[spliced], (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
			if (acc >= 0 && peer.sin_port != mine.sin_port) {
				unlinger_close(acc);
				acc = -1;
			}
		}
	again:
		if (acc < 0) {
			unlinger_close(fd);
			unlinger_close(lfd[spliced]);
			lfd[spliced] = listener(spliced);
			a.sin_port = htons(lport[spliced]);
		}
	}
	if (acc < 0)
		ts_fail("ts-chaos: cannot connect a new pair to port %d: %m", ntohs(a.sin_port));
	p->fd[0] = fd;
	p->fd[1] = acc;
	p->spliced = spliced;
	/* Start each direction on the ring now and then: bytes read once each way. */
	if (ts_rand_range(g, 0, 1)) {
		char b = 'w';

		/* One byte each way, read by the other end (errors are no concern here). */
		if (send(p->fd[0], &b, 1, MSG_NOSIGNAL) == 1 && ts_poll1(p->fd[1], POLLIN, 2000))
			(void)!recv(p->fd[1], &b, 1, MSG_DONTWAIT);
		if (send(p->fd[1], &b, 1, MSG_NOSIGNAL) == 1 && ts_poll1(p->fd[0], POLLIN, 2000))
			(void)!recv(p->fd[0], &b, 1, MSG_DONTWAIT);
	}
	ts_set_nonblock(p->fd[0], true);
	ts_set_nonblock(p->fd[1], true);
}

static void close_pair(struct pair *p, struct ts_rng *g)
{
	for (int i = 0; i < 2; i++) {
		if (ts_rand_range(g, 0, 3) == 0) {
			struct linger l = {1, 0}; /* RST */

			setsockopt(p->fd[i], SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			close(p->fd[i]);
		} else {
			unlinger_close(p->fd[i]);
		}
		p->fd[i] = -1;
	}
}

static int rand_flags(struct ts_rng *g)
{
	static const int known[] = {0,
				    MSG_PEEK,
				    MSG_WAITALL,
				    MSG_TRUNC,
				    MSG_OOB,
				    MSG_MORE,
				    MSG_EOR,
				    MSG_ZEROCOPY,
				    MSG_ERRQUEUE,
				    MSG_CONFIRM,
				    0x8000000 /* MSG_SPLICE_PAGES, internal */,
				    MSG_FASTOPEN};
	int f;

	if (ts_rand_range(g, 0, 3) == 0)
		f = (int)ts_rand(g); /* anything, invalid bits included */
	else
		f = known[ts_rand_range(g, 0, sizeof(known) / sizeof(known[0]) - 1)] |
		    known[ts_rand_range(g, 0, sizeof(known) / sizeof(known[0]) - 1)];
	return f | MSG_DONTWAIT | MSG_NOSIGNAL;
}

static size_t rand_size(struct ts_rng *g)
{
	switch (ts_rand_range(g, 0, 5)) {
	case 0:
		return 0;
	case 1:
		return ts_rand_range(g, 1, 16);
	case 2:
		return ts_rand_range(g, 1, 4096);
	case 3:
		return ts_rand_range(g, 1, 65536);
	default:
		return ts_rand_range(g, 1, BUF);
	}
}

/* A descriptor to act on: mostly a pair's end, sometimes something wrong. */
static int rand_fd(struct ts_rng *g, int pipefd, int memfd)
{
	switch (ts_rand_range(g, 0, 19)) {
	case 0:
		return -1;
	case 1:
		return 1000 + (int)ts_rand_range(g, 0, 1000); /* most likely not open */
	case 2:
		return pipefd;
	case 3:
		return memfd;
	case 4:
		return lfd[ts_rand_range(g, 0, 1)];
	default: {
		struct pair *p = &pairs[ts_rand_range(g, 0, opt.pairs - 1)];

		return p->fd[ts_rand_range(g, 0, 1)];
	}
	}
}

static void one_op(int self, struct ts_rng *g, char *buf, int pfd[2], int memfd)
{
	int fd = rand_fd(g, pfd[ts_rand_range(g, 0, 1)], memfd);
	int k = (int)ts_rand_range(g, 0, 15);
	size_t n = rand_size(g);
	long rc = 0;

	atomic_fetch_add(&n_ops, 1);
	switch (k) {
	case 0:
		cur_op[self] = "send";
		rc = send(fd, buf, n, rand_flags(g));
		break;
	case 1:
		cur_op[self] = "recv";
		rc = recv(fd, buf, n, rand_flags(g));
		break;
	case 2: {
		struct iovec iov[3] = {{buf, n / 3}, {buf + n / 3, n / 3}, {buf, n - 2 * (n / 3)}};
		char ctl[256];
		struct msghdr m = {.msg_iov = iov,
				   .msg_iovlen = ts_rand_range(g, 0, 3),
				   .msg_control = ts_rand_range(g, 0, 3) ? NULL : ctl,
				   .msg_controllen = ts_rand_range(g, 0, sizeof(ctl))};

		ts_fill(ts_rand(g), 0, ctl, sizeof(ctl));
		if (ts_rand_range(g, 0, 1)) {
			cur_op[self] = "sendmsg";
			rc = sendmsg(fd, &m, rand_flags(g));
		} else {
			cur_op[self] = "recvmsg";
			rc = recvmsg(fd, &m, rand_flags(g));
		}
		break;
	}
	case 3: {
		static const unsigned long req[] = {SIOCINQ, SIOCOUTQ, SIOCOUTQNSD, FIONREAD,
						    SIOCATMARK};
		int v = 0;

		cur_op[self] = "ioctl";
		if (ts_rand_range(g, 0, 5) == 0) { /* FIONBIO, set back right away */
			v = (int)ts_rand_range(g, 0, 1);
			rc = ioctl(fd, FIONBIO, &v);
			v = 1;
			ioctl(fd, FIONBIO, &v);
		} else if (ts_rand_range(g, 0, 7) == 0) { /* queries and nonsense only */
			static const unsigned long other[] = {SIOCGSTAMP_OLD, SIOCGSTAMPNS_OLD,
							      SIOCGIFNAME,    0x5401 /* TCGETS */,
							      0xdeadbeef,     0};

			rc = ioctl(fd, other[ts_rand_range(g, 0, 5)], buf);
		} else {
			rc = ioctl(fd, req[ts_rand_range(g, 0, 4)], &v);
		}
		break;
	}
	case 4:
	case 5: {
		static const int levels[] = {SOL_SOCKET, IPPROTO_TCP, IPPROTO_IP, IPPROTO_IPV6,
					     SOL_TCP + 1000};
		int level = levels[ts_rand_range(g, 0, 4)];
		int name = (int)ts_rand_range(g, 0, 80);
		socklen_t len = (socklen_t)ts_rand_range(g, 0, 64);

		ts_fill(ts_rand(g), 0, buf, 64);
		if (ts_rand_range(g, 0, 1))
			memset(buf, 0, 8); /* small values too */
		if (k == 4) {
			cur_op[self] = "setsockopt";
			/* Options that would make a later call block or close wait are left out. */
			if (level == SOL_SOCKET && (name == SO_LINGER || name == SO_RCVTIMEO_OLD ||
						    name == SO_SNDTIMEO_OLD))
				break;
			rc = setsockopt(fd, level, name, buf, len);
			nonblock_again(fd);
		} else {
			cur_op[self] = "getsockopt";
			len = (socklen_t)ts_rand_range(g, 0, 4096);
			rc = getsockopt(fd, level, name, buf, &len);
		}
		break;
	}
	case 6:
		cur_op[self] = "shutdown";
		rc = shutdown(fd, (int)ts_rand_range(g, 0, 4));
		break;
	case 7: {
		int other = rand_fd(g, pfd[ts_rand_range(g, 0, 1)], memfd);
		unsigned int fl = SPLICE_F_NONBLOCK | (unsigned int)ts_rand_range(g, 0, 15);

		cur_op[self] = "splice";
		if (ts_rand_range(g, 0, 1))
			rc = splice(fd, NULL, pfd[1], NULL, n, fl);
		else
			rc = splice(pfd[0], NULL, other, NULL, n, fl);
		break;
	}
	case 8: {
		off_t o = (off_t)ts_rand_range(g, 0, BUF);

		cur_op[self] = "sendfile";
		rc = sendfile(fd, memfd, ts_rand_range(g, 0, 3) ? &o : NULL, n);
		break;
	}
	case 9: {
		struct pollfd p = {.fd = fd, .events = (short)ts_rand(g)};

		cur_op[self] = "poll";
		rc = poll(&p, 1, 0);
		break;
	}
	case 10: {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons((uint16_t)ts_rand_range(g, 0, 65535)),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

		switch (ts_rand_range(g, 0, 3)) {
		case 0:
			cur_op[self] = "connect";
			rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
			break;
		case 1:
			cur_op[self] = "listen";
			rc = listen(fd, 1);
			break;
		case 2:
			cur_op[self] = "accept";
			rc = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (rc >= 0)
				unlinger_close((int)rc);
			break;
		default:
			cur_op[self] = "bind";
			rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
		}
		break;
	}
	case 11: /* drain the pipes so that splices keep moving */
		cur_op[self] = "pipe drain";
		while (read(pfd[0], buf, 65536) > 0)
			;
		break;
	case 12: { /* write/read the plain way */
		cur_op[self] = ts_rand_range(g, 0, 1) ? "write" : "read";
		if (cur_op[self][0] == 'w')
			rc = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			rc = recv(fd, buf, n, MSG_DONTWAIT);
		break;
	}
	default: /* read what is there, keep the rings from filling up for good */
		cur_op[self] = "drain";
		for (int i = 0; i < 16; i++)
			if (recv(fd, buf, BUF, MSG_DONTWAIT) <= 0)
				break;
		break;
	}
	if (rc < 0)
		atomic_fetch_add(&n_err, 1);
	cur_op[self] = NULL;
}

struct thr {
	int id;
	pthread_t t;
};

static void *chaos_thread(void *arg)
{
	struct thr *th = arg;
	struct ts_rng g;
	char *buf = malloc(BUF);
	int pfd[2], memfd;

	ts_rng_init(&g, ts_mix64(opt.seed + 17 * th->id));
	if (!buf || pipe2(pfd, O_NONBLOCK | O_CLOEXEC) < 0)
		ts_fail("set-up: %m");
	memfd = memfd_create("ts-chaos", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, BUF) < 0)
		ts_fail("memfd: %m");
	ts_fill(opt.seed, 0, buf, BUF);
	if (pwrite(memfd, buf, BUF, 0) != BUF)
		ts_fail("memfd write: %m");
	while (ts_now_us() < t_end) {
		if (ts_rand_range(&g, 0, 199) == 0) {
			struct pair *p = &pairs[ts_rand_range(&g, 0, opt.pairs - 1)];

			pthread_rwlock_wrlock(&table_lock);
			cur_op[th->id] = "reconnect";
			close_pair(p, &g);
			open_pair(p, &g);
			cur_op[th->id] = NULL;
			pthread_rwlock_unlock(&table_lock);
			atomic_fetch_add(&n_reopen, 1);
			continue;
		}
		pthread_rwlock_rdlock(&table_lock);
		one_op(th->id, &g, buf, pfd, memfd);
		pthread_rwlock_unlock(&table_lock);
	}
	close(pfd[0]);
	close(pfd[1]);
	close(memfd);
	free(buf);
	return NULL;
}

static void on_alarm(int sig)
{
	char msg[256];
	int k;

	(void)sig;
	k = snprintf(msg, sizeof(msg), "FAIL ts-chaos seed=%" PRIu64 ": hang:", opt.seed);
	for (int i = 0; i < opt.threads; i++) {
		const char *op = cur_op[i];

		k += snprintf(msg + k, sizeof(msg) - k, " thread %d in %s;", i, op ? op : "-");
	}
	msg[sizeof(msg) - 2] = '\n';
	k = k < (int)sizeof(msg) - 1 ? k : (int)sizeof(msg) - 2;
	msg[k++] = '\n';
	if (write(1, msg, k) < 0)
		_exit(3);
	_exit(1);
}

static long long cval(const struct ts_counters *c, const char *name)
{
	bool f;
	long long v = ts_counter(c, name, &f);

	return f ? v : 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"seed", 1, 0, 's'},	   {"duration", 1, 0, 'd'},
					   {"threads", 1, 0, 't'}, {"pairs", 1, 0, 'p'},
					   {"port", 1, 0, 'P'},	   {0, 0, 0, 0}};
	struct thr th[16];
	struct ts_counters before, after;
	struct ts_rng g;
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	opt.seed = (uint64_t)ts_now_us();
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			opt.seed = strtoull(optarg, NULL, 0);
			break;
		case 'd':
			opt.duration = atof(optarg);
			break;
		case 't':
			opt.threads = atoi(optarg);
			break;
		case 'p':
			opt.pairs = atoi(optarg);
			break;
		case 'P':
			opt.port = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: ts-chaos [--seed N] [--duration SEC] [--threads N] "
					"[--pairs N] [--port P]\n");
			return 2;
		}
	}
	if (opt.threads < 1 || opt.threads > 16 || opt.pairs < 1 || opt.pairs > MAX_PAIRS ||
	    opt.duration <= 0) {
		fprintf(stderr, "ts-chaos: threads 1..16, pairs 1..%d, duration > 0\n", MAX_PAIRS);
		return 2;
	}
	printf("seed %" PRIu64 "\n", opt.seed);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGURG, SIG_IGN);
	signal(SIGALRM, on_alarm);
	ts_counters_read(&before);
	lfd[1] = listener(true);
	lfd[0] = listener(false);
	ts_rng_init(&g, opt.seed);
	for (int i = 0; i < opt.pairs; i++)
		open_pair(&pairs[i], &g);
	/* Generous: the calls are all non-blocking, only a hang gets near it. */
	alarm((unsigned int)opt.duration + 120);
	t_end = ts_now_us() + (int64_t)(opt.duration * 1e6);
	for (int i = 0; i < opt.threads; i++) {
		th[i].id = i;
		pthread_create(&th[i].t, NULL, chaos_thread, &th[i]);
	}
	for (int i = 0; i < opt.threads; i++)
		pthread_join(th[i].t, NULL);
	for (int i = 0; i < opt.pairs; i++)
		close_pair(&pairs[i], &g);
	close(lfd[0]);
	close(lfd[1]);
	alarm(0);
	ts_counters_read(&after);
	printf("ts-chaos: %ld calls (%ld refused by the kernel), %ld reconnects, %d threads, "
	       "pairs_total +%lld, ring_bytes_tx +%lld\n",
	       atomic_load(&n_ops), atomic_load(&n_err), atomic_load(&n_reopen), opt.threads,
	       cval(&after, "pairs_total") - cval(&before, "pairs_total"),
	       cval(&after, "ring_bytes_tx") - cval(&before, "ring_bytes_tx"));
	if (after.present && cval(&after, "pairs_total") == cval(&before, "pairs_total")) {
		printf("FAIL ts-chaos: no connection was spliced\n");
		return 1;
	}
	return 0;
}
