// SPDX-License-Identifier: GPL-2.0
/*
 * ts-keypin: hold the networking static keys that socket options switch on,
 * for the whole test-bed boot.
 *
 *   ts-keypin [--foreground]
 *
 * Why: under qemu TCG with several vCPU threads, a kernel static key that is
 * switched while another vCPU runs the patched code can leave that vCPU
 * executing the int3 of the patching protocol after the kernel has finished
 * it: "Oops: int3" and a panic in the receive path (netif_rx_internal,
 * __netif_receive_skb_core, ip_local_deliver_finish).  ts-keyflip reproduces
 * it in seconds with no tcp-splice module loaded, on qemu 7.2 and 10.0; it
 * does not happen with a single TCG thread.  Tests that set random socket
 * options (ts-chaos) flip these keys all the time, so the test bed keeps them
 * switched on from boot: a key that is already on is not patched again.
 *
 *   ts-keypin --once
 *
 * only switches the kernel's run-once keys (see warm_once_keys()) and exits;
 * the test bed runs that in boots without the pins (tests/vm/run --no-keypin).
 *
 * Pinned: netstamp_needed_key (SO_TIMESTAMP), tcp_md5_needed (TCP_MD5SIG),
 * ip4_min_ttl (IP_MINTTL) and tcp_tx_delay_enabled (TCP_TX_DELAY); the last
 * two are never switched off again, pinning only moves their one switch to
 * boot.  Each pin that fails is reported on stderr; the process then detaches
 * and sleeps until the VM powers off.
 *
 * Before pinning, it switches the run-once keys of the networking code
 * (DO_ONCE, net_get_random_once()): the secrets of ephemeral ports, ISNs,
 * SYN cookies and the connection hashes are made at their first use, and the
 * key that guards each is switched off from a work item right after, which
 * is the same hazard when traffic runs then (seen: "Oops: int3" in
 * secure_ipv6_port_ephemeral while ts-stress ran).  A TCP connection with a
 * byte each way, a SYN cookie and a UDP datagram, over IPv4 and IPv6
 * loopback, make them all while nothing else runs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef TCP_TX_DELAY
#define TCP_TX_DELAY 37
#endif

/* One TCP connection with a byte each way, then a UDP datagram, over @family. */
static void warm_family(int family)
{
	struct sockaddr_storage a = {.ss_family = (sa_family_t)family};
	socklen_t alen =
		family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int l = -1, c = -1, s = -1, u1 = -1, u2 = -1;
	char b = 'x';

	if (family == AF_INET)
		((struct sockaddr_in *)&a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&a)->sin6_addr = in6addr_loopback;
	l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, alen) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &alen))
		goto fail;
	c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, alen))
		goto fail;
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0 || write(c, &b, 1) != 1 || read(s, &b, 1) != 1 || write(s, &b, 1) != 1 ||
	    read(c, &b, 1) != 1)
		goto fail;
	u1 = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	u2 = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (family == AF_INET)
		((struct sockaddr_in *)&a)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&a)->sin6_port = 0;
	if (u1 < 0 || u2 < 0 || bind(u1, (struct sockaddr *)&a, alen) ||
	    getsockname(u1, (struct sockaddr *)&a, &alen) ||
	    connect(u2, (struct sockaddr *)&a, alen) || write(u2, &b, 1) != 1 ||
	    read(u1, &b, 1) != 1)
		goto fail;
	goto out;
fail:
	fprintf(stderr, "ts-keypin: warming the run-once keys over %s: %s\n",
		family == AF_INET ? "IPv4" : "IPv6", strerror(errno));
out:
	if (l >= 0)
		close(l);
	if (c >= 0)
		close(c);
	if (s >= 0)
		close(s);
	if (u1 >= 0)
		close(u1);
	if (u2 >= 0)
		close(u2);
}

/*
 * Make the networking run-once secrets now, SYN cookies included (one
 * connection per family with tcp_syncookies=2, "always"), and give the work
 * items that switch their keys off time to run.
 */
static void warm_once_keys(void)
{
	static const char *sysctl = "/proc/sys/net/ipv4/tcp_syncookies";
	char old[16] = "";
	FILE *f = fopen(sysctl, "r+");

	if (f && fgets(old, sizeof(old), f) && fseek(f, 0, SEEK_SET) == 0 && fputs("2\n", f) >= 0 &&
	    fflush(f) == 0) {
		warm_family(AF_INET);
		warm_family(AF_INET6);
		if (fseek(f, 0, SEEK_SET) || fputs(old, f) < 0 || fflush(f))
			fprintf(stderr, "ts-keypin: restoring %s: %s\n", sysctl, strerror(errno));
	} else {
		fprintf(stderr, "ts-keypin: no SYN cookies warmed: %s: %s\n", sysctl,
			strerror(errno));
	}
	if (f)
		fclose(f);
	warm_family(AF_INET);
	warm_family(AF_INET6);
	usleep(300 * 1000);
}

static int pin(int fd, int level, int name, const void *val, socklen_t len, const char *what)
{
	if (setsockopt(fd, level, name, val, len) == 0)
		return 0;
	fprintf(stderr, "ts-keypin: %s not pinned: %s\n", what, strerror(errno));
	return -1;
}

int main(int argc, char **argv)
{
	int fg = argc > 1 && strcmp(argv[1], "--foreground") == 0;
	int once = argc > 1 && strcmp(argv[1], "--once") == 0;
	struct tcp_md5sig md5 = {.tcpm_keylen = 4};
	struct sockaddr_in *peer = (struct sockaddr_in *)&md5.tcpm_addr;
	int one = 1, fd;

	if (argc > 2 || (argc > 1 && !fg && !once)) {
		fprintf(stderr, "usage: ts-keypin [--foreground | --once]\n");
		return 2;
	}
	warm_once_keys();
	if (once)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("ts-keypin: socket");
		return 1;
	}
	peer->sin_family = AF_INET;
	peer->sin_addr.s_addr = htonl(0x7f0000fe); /* 127.0.0.254: a key nobody uses */
	memcpy(md5.tcpm_key, "pin!", 4);
	pin(fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one), "netstamp_needed_key (SO_TIMESTAMP)");
	pin(fd, IPPROTO_TCP, TCP_MD5SIG, &md5, sizeof(md5), "tcp_md5_needed (TCP_MD5SIG)");
	pin(fd, IPPROTO_IP, IP_MINTTL, &one, sizeof(one), "ip4_min_ttl (IP_MINTTL)");
	pin(fd, IPPROTO_TCP, TCP_TX_DELAY, &one, sizeof(one),
	    "tcp_tx_delay_enabled (TCP_TX_DELAY)");
	if (!fg && daemon(0, 1) < 0) {
		perror("ts-keypin: daemon");
		return 1;
	}
	for (;;)
		pause();
}
