// SPDX-License-Identifier: GPL-2.0
/*
 * ts-fallback: features the ring cannot carry leave the connection (or one
 * direction) on plain TCP, are counted, and keep their TCP semantics:
 * SO_ZEROCOPY before connect, urgent data before the handoff, TCP_REPAIR;
 * a ULP (kTLS) on a spliced socket is refused with EOPNOTSUPP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tsutil.h"

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif

static const char *res(ssize_t n, int e)
{
	static __thread char buf[64];

	if (n >= 0)
		snprintf(buf, sizeof(buf), "n=%zd", n);
	else
		snprintf(buf, sizeof(buf), "-1 %s", strerrorname_np(e) ? strerrorname_np(e) : "E?");
	return buf;
}

static void send_at(int fd, uint64_t seed, uint64_t off, size_t len)
{
	char *buf = malloc(len);

	ts_fill(seed, off, buf, len);
	ts_write_all(fd, buf, len);
	free(buf);
}

/* The module's view of a socket: "paired", "parked", ..., or "untracked". */
static const char *splice_state(int fd, struct ts_conn *c)
{
	static __thread char st[16];
	struct ts_conn tmp;
	int rc = ts_conn_of_fd(fd, c ? c : &tmp);

	if (rc < 0)
		return "no-listing";
	if (rc == 0)
		return "untracked";
	snprintf(st, sizeof(st), "%.15s", (c ? c : &tmp)->state);
	return st;
}

/* A connected pair on the run's port without the "must be spliced" check. */
static void raw_pair(struct ts_run *r, int cfd, int *cli, int *srv)
{
	int lfd = ts_listen(r->family, r->port);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (cfd < 0) {
		*cli = ts_connect(r->family, r->port);
	} else {
		TS_SYS(getsockname(lfd, (struct sockaddr *)&ss, &sl));
		if (connect(cfd, (struct sockaddr *)&ss, sl) < 0)
			ts_fail("connect: %m");
		*cli = cfd;
	}
	*srv = ts_accept(lfd, 5000);
	close(lfd);
}

/* ---- zero-copy ---- */

/* Sends len bytes with MSG_ZEROCOPY in `calls` sends; waits for every completion. */
static void zerocopy_send(int fd, uint64_t seed, size_t len, int calls)
{
	char *buf = malloc(len);
	size_t per = len / calls, done = 0;
	uint32_t completed = 0;
	int64_t end;

	ts_fill(seed, 0, buf, len);
	for (int i = 0; i < calls; i++) {
		size_t n = i == calls - 1 ? len - done : per;
		ssize_t k = send(fd, buf + done, n, MSG_ZEROCOPY | MSG_NOSIGNAL);

		if (k != (ssize_t)n)
			ts_fail("send(MSG_ZEROCOPY) %d: %s", i, res(k, errno));
		done += n;
	}
	end = ts_now_us() + 5000000;
	while (completed < (uint32_t)calls && ts_now_us() < end) {
		char cbuf[256];
		struct msghdr m = {.msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
		struct cmsghdr *cm;

		if (recvmsg(fd, &m, MSG_ERRQUEUE) < 0) {
			if (errno != EAGAIN)
				ts_fail("recvmsg(MSG_ERRQUEUE): %m");
			ts_poll1(fd, 0, 100);
			continue;
		}
		for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
			struct sock_extended_err *e = (void *)CMSG_DATA(cm);

			if (e->ee_origin == SO_EE_ORIGIN_ZEROCOPY)
				completed += e->ee_data - e->ee_info + 1;
		}
	}
	ts_note("MSG_ZEROCOPY: %u of %d completions", completed, calls);
	TS_ASSERT(completed == (uint32_t)calls, "%u of %d MSG_ZEROCOPY completions after 5 s",
		  completed, calls);
	free(buf);
}

struct receiver {
	int fd;
	uint64_t seed, len;
};

static void *receive(void *arg)
{
	struct receiver *a = arg;

	ts_recv_stream(a->fd, a->seed, 0, a->len, 65536, &(struct ts_rng){1});
	return NULL;
}

/* Zero-copy send with the peer reading (completions come once the bytes are delivered). */
static void zerocopy_transfer(int c, int s, uint64_t seed, size_t len)
{
	struct receiver a = {s, seed, len};
	unsigned long t = ts_spawn(receive, &a);

	zerocopy_send(c, seed, len, 10);
	ts_join(t);
}

static void scen_zerocopy_before_connect(struct ts_run *r)
{
	int fd = TS_SYS(socket(r->family, SOCK_STREAM, 0)), c, s;

	ts_set_int(fd, SOL_SOCKET, SO_ZEROCOPY, 1);
	raw_pair(r, fd, &c, &s);
	ts_sleep_ms(50);
	ts_log("client %s, server %s", splice_state(c, NULL), splice_state(s, NULL));
	TS_ASSERT(strcmp(splice_state(c, NULL), "paired") &&
			  strcmp(splice_state(s, NULL), "paired"),
		  "a socket with SO_ZEROCOPY set before connect was paired");
	zerocopy_transfer(c, s, r->seed, 200000);
	ts_transfer(s, c, r->seed, 0, 100000);
	ts_note("bytes intact both ways");
	close(c);
	close(s);
}

static void t_zerocopy_before_connect(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_zerocopy_before_connect,
		.want = "refused_zerocopy>=1 pairs_total=0 ring_bytes_tx=0",
	});
}

/* SO_ZEROCOPY on a spliced socket: MSG_ZEROCOPY sends complete as over TCP. */
static void scen_zerocopy_spliced(struct ts_run *r)
{
	bool after_handoff = *(bool *)r->arg;
	int c, s;

	ts_pair(&c, &s);
	if (after_handoff) {
		send_at(c, r->seed ^ 1, 0, 1000);
		ts_recv_stream(s, r->seed ^ 1, 0, 1000, 1000, &(struct ts_rng){1});
	}
	ts_set_int(c, SOL_SOCKET, SO_ZEROCOPY, 1);
	zerocopy_transfer(c, s, r->seed, 200000);
	ts_note("bytes intact");
	close(c);
	close(s);
}

static void t_zerocopy_before_handoff(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_zerocopy_spliced,
		.arg = &(bool){false},
		.want = "pairs_total>=1",
	});
}

static void t_zerocopy_after_handoff(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_zerocopy_spliced,
		.arg = &(bool){true},
		.want = "pairs_total>=1 ring_bytes_tx>0",
	});
}

/* ---- urgent data ---- */

/* Reads the normal stream in small steps, noting the urgent mark and MSG_OOB reads. */
static void read_urgent(int s, size_t total)
{
	char buf[64];
	size_t got = 0;
	int atmark;

	while (got < total) {
		ssize_t n;

		TS_SYS(ioctl(s, SIOCATMARK, &atmark));
		if (atmark) {
			char b = 0;

			n = recv(s, &b, 1, MSG_OOB | MSG_DONTWAIT);
			ts_note("at mark (offset %zu): recv(MSG_OOB) %s '%c'", got, res(n, errno),
				n == 1 ? b : '-');
		}
		n = recv(s, buf, sizeof(buf), 0);
		if (n <= 0) {
			ts_note("recv at %zu: %s", got, res(n, errno));
			return;
		}
		ts_note("recv %zd at %zu: '%.*s'", n, got, (int)(n < 8 ? n : 8), buf);
		got += n;
	}
}

static void scen_oob(struct ts_run *r)
{
	int mode = *(int *)r->arg; /* 0: OOB first, 1: OOB first + OOBINLINE, 2: OOB after data */
	static const char data[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	struct ts_conn ci;
	char b;
	int c, s;

	ts_pair(&c, &s);
	if (mode == 1)
		ts_set_int(s, SOL_SOCKET, SO_OOBINLINE, 1);
	if (mode == 2) {
		ts_write_all(c, data, 40);
		ts_read_full(s, (char[40]){0}, 40);
	}
	TS_ASSERT(send(c, "X", 1, MSG_OOB) == 1, "send(MSG_OOB): %m");
	ts_write_all(c, data, 30);
	ts_sleep_ms(50);
	TS_ASSERT(send(c, "Y", 1, MSG_OOB) == 1, "send(MSG_OOB): %m");
	ts_write_all(c, data + 30, 30);
	ts_sleep_ms(100);
	if (mode != 1) {
		ssize_t n = recv(s, &b, 1, MSG_OOB);

		ts_note("recv(MSG_OOB): %s '%c'", res(n, errno), n == 1 ? b : '-');
	}
	read_urgent(s, mode == 1 ? 62 : 60);
	/* The other direction is unaffected and uses the ring. */
	ts_transfer(s, c, r->seed, 0, 50000);
	ts_note("reverse direction intact");
	if (r->splice && mode != 2) {
		TS_ASSERT(ts_conn_of_fd(c, &ci) == 1, "client socket no longer listed");
		TS_ASSERT(ci.ring_tx == 0,
			  "urgent data before the handoff, yet %llu bytes went "
			  "through the client's ring",
			  ci.ring_tx);
	}
	close(c);
	close(s);
}

static void t_oob_before_handoff(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_oob,
		.arg = &(int){0},
		.want = "pairs_total>=1 tx_never_oob>=1 ring_bytes_tx>0",
	});
}

static void t_oob_inline(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_oob,
		.arg = &(int){1},
		.want = "pairs_total>=1 tx_never_oob>=1 ring_bytes_tx>0",
	});
}

static void t_oob_after_handoff(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_oob,
		.arg = &(int){2},
		.want = "pairs_total>=1 ring_bytes_tx>0",
	});
}

/* ---- TCP_REPAIR: two sockets restored as each other's peer, without a handshake ---- */

static int repaired(const char *addr, uint32_t snd, uint32_t rcv)
{
	int fd = TS_SYS(socket(strchr(addr, ':') ? AF_INET6 : AF_INET, SOCK_STREAM, 0));
	int q;

	ts_set_int(fd, IPPROTO_TCP, TCP_REPAIR, 1);
	q = TCP_SEND_QUEUE;
	TS_SYS(setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)));
	TS_SYS(setsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &snd, sizeof(snd)));
	q = TCP_RECV_QUEUE;
	TS_SYS(setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)));
	TS_SYS(setsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &rcv, sizeof(rcv)));
	return fd;
}

static void repair_connect(int fd, const char *addr, int lport, int rport)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(lport)};
	int one = 1;

	inet_pton(AF_INET, addr, &a.sin_addr);
	TS_SYS(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		ts_fail("bind port %d: %m", lport);
	a.sin_port = htons(rport);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		ts_fail("repair connect: %m");
	/* What the handshake would have negotiated: MSS and window scaling, 7 both ways. */
	struct tcp_repair_opt opts[] = {
		{TCPOPT_MAXSEG, 65483},
		{TCPOPT_WINDOW, 7 | (7 << 16)},
	};
	TS_SYS(setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts, sizeof(opts)));
}

static void scen_repair(struct ts_run *r)
{
	const uint32_t sa = 1000000, sb = 7000000;
	int a, b;

	a = repaired("127.0.0.1", sa, sb);
	b = repaired("127.0.0.1", sb, sa);
	repair_connect(a, "127.0.0.1", r->port, r->port + 1);
	repair_connect(b, "127.0.0.1", r->port + 1, r->port);
	ts_set_int(a, IPPROTO_TCP, TCP_REPAIR, 0);
	ts_set_int(b, IPPROTO_TCP, TCP_REPAIR, 0);
	ts_sleep_ms(50);
	ts_log("a %s, b %s", splice_state(a, NULL), splice_state(b, NULL));
	TS_ASSERT(strcmp(splice_state(a, NULL), "paired"), "a repaired socket was paired");
	ts_transfer(a, b, r->seed, 0, 100000);
	ts_transfer(b, a, r->seed, 0, 100000);
	ts_note("repaired pair carries bytes both ways");
	close(a);
	close(b);
}

static void t_repair(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_repair,
		.want = "refused_repair>=1 pairs_total=0 ring_bytes_tx=0",
	});
}

/* ---- a ULP on a spliced socket ---- */

static void scen_ulp(struct ts_run *r)
{
	int c, s, rc[2], e[2];

	ts_pair(&c, &s);
	send_at(c, r->seed, 0, 1000);
	ts_recv_stream(s, r->seed, 0, 1000, 1000, &(struct ts_rng){1});
	rc[0] = setsockopt(c, IPPROTO_TCP, TCP_ULP, "tls", 3);
	e[0] = errno;
	rc[1] = setsockopt(s, IPPROTO_TCP, TCP_ULP, "tls", 3);
	e[1] = errno;
	ts_log("TCP_ULP tls: client %s, server %s", res(rc[0], e[0]), res(rc[1], e[1]));
	for (int i = 0; i < 2; i++) {
		if (r->splice)
			TS_ASSERT(rc[i] < 0 && e[i] == EOPNOTSUPP,
				  "TCP_ULP \"tls\" on a spliced %s: %s, not EOPNOTSUPP",
				  i ? "server" : "client", res(rc[i], e[i]));
		else if (rc[i] < 0 && e[i] == ENOENT)
			ts_skip("no tls module in this kernel");
		else
			TS_ASSERT(rc[i] == 0, "plain TCP: TCP_ULP \"tls\": %s", res(rc[i], e[i]));
	}
	if (r->splice) {
		/* Still spliced, still carrying bytes. */
		ts_transfer(c, s, r->seed, 1000, 100000);
		ts_expect_spliced(c);
		ts_expect_spliced(s);
	}
	close(c);
	close(s);
}

static void t_ulp_tls(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_ulp,
		.want = "pairs_total>=1 ring_bytes_tx>0 ulp_refused>=2",
		.no_compare = true,
	});
}

/* ---- socket filters: they see TCP segments only, so they keep TCP ---- */

/* A classic BPF filter that accepts every packet whole. */
static void attach_accept_all(int fd)
{
	struct sock_filter insn = BPF_STMT(BPF_RET | BPF_K, 0xffffffff);
	struct sock_fprog prog = {.len = 1, .filter = &insn};

	TS_SYS(setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)));
}

static void scen_filter_before_connect(struct ts_run *r)
{
	int fd = TS_SYS(socket(r->family, SOCK_STREAM, 0)), c, s;

	attach_accept_all(fd);
	raw_pair(r, fd, &c, &s);
	ts_sleep_ms(50);
	ts_log("client %s, server %s", splice_state(c, NULL), splice_state(s, NULL));
	TS_ASSERT(strcmp(splice_state(c, NULL), "paired"),
		  "a socket with a filter attached before connect was paired");
	ts_transfer(s, c, r->seed, 0, 200000);
	ts_transfer(c, s, r->seed, 0, 200000);
	ts_note("bytes intact both ways");
	close(c);
	close(s);
}

static void t_filter_before_connect(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_filter_before_connect,
		.want = "refused_filter>=1 pairs_total=0 ring_bytes_tx=0",
	});
}

/*
 * A filter attached to a spliced socket: the peer's next send closes that
 * direction's ring and TCP (which the filter sees) carries the rest; the
 * other direction keeps its ring.
 */
static void scen_filter_after_handoff(struct ts_run *r)
{
	struct ts_counters before, after;
	long long to_s, to_c;
	int c, s;

	ts_pair(&c, &s);
	ts_transfer(c, s, r->seed, 0, 100000);
	attach_accept_all(s);
	ts_counters_read(&before);
	ts_transfer(c, s, r->seed, 100000, 300000);
	ts_counters_read(&after);
	to_s = ts_counter(&after, "ring_bytes_rx", NULL) -
	       ts_counter(&before, "ring_bytes_rx", NULL);
	ts_transfer(s, c, r->seed, 0, 300000);
	ts_counters_read(&before);
	to_c = ts_counter(&before, "ring_bytes_rx", NULL) -
	       ts_counter(&after, "ring_bytes_rx", NULL);
	ts_log("%s: ring bytes after the filter: to the filtered end %lld, back %lld", r->label,
	       to_s, to_c);
	if (r->splice) {
		TS_ASSERT(to_s == 0, "%lld bytes reached the filtered socket through the ring",
			  to_s);
		TS_ASSERT(to_c == 300000, "the unfiltered direction left its ring (%lld)", to_c);
	}
	ts_note("bytes intact both ways");
	close(c);
	close(s);
}

static void t_filter_after_handoff(void)
{
	ts_differential(&(struct ts_diff){
		.fn = scen_filter_after_handoff,
		.want = "ring_closed_filter=1 ring_bytes_tx>0",
	});
}

/* ---- v4-mapped addresses: bytes right whichever way the module decides ---- */

static void scen_v4mapped(struct ts_run *r)
{
	int lfd = ts_listen(AF_INET, r->port);
	int c = ts_connect_at("::ffff:127.0.0.1", r->port, NULL, 0), s = ts_accept(lfd, 5000);

	close(lfd);
	ts_log("v4-mapped client %s, server %s", splice_state(c, NULL), splice_state(s, NULL));
	ts_transfer(c, s, r->seed, 0, 300000);
	ts_transfer(s, c, r->seed, 0, 300000);
	ts_note("bytes intact both ways");
	close(c);
	close(s);
}

static void t_v4mapped(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_v4mapped, .want = ""});
}

static const struct ts_test tests[] = {
	{"zerocopy-before-connect", t_zerocopy_before_connect, 0},
	{"zerocopy-before-handoff", t_zerocopy_before_handoff, 0},
	{"zerocopy-after-handoff", t_zerocopy_after_handoff, 0},
	{"oob-before-handoff", t_oob_before_handoff, 0},
	{"oob-inline", t_oob_inline, 0},
	{"oob-after-handoff", t_oob_after_handoff, 0},
	{"repair", t_repair, 0},
	{"ulp-tls", t_ulp_tls, 0},
	{"v4mapped", t_v4mapped, 0},
	{"filter-before-connect", t_filter_before_connect, 0},
	{"filter-after-handoff", t_filter_after_handoff, 0},
};

int main(int argc, char **argv)
{
	return ts_main(argc, argv, 1000, tests, sizeof(tests) / sizeof(tests[0]));
}
