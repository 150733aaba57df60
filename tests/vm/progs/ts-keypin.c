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
 * Pinned: netstamp_needed_key (SO_TIMESTAMP), tcp_md5_needed (TCP_MD5SIG),
 * ip4_min_ttl (IP_MINTTL) and tcp_tx_delay_enabled (TCP_TX_DELAY); the last
 * two are never switched off again, pinning only moves their one switch to
 * boot.  Each pin that fails is reported on stderr; the process then detaches
 * and sleeps until the VM powers off.
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
	struct tcp_md5sig md5 = {.tcpm_keylen = 4};
	struct sockaddr_in *peer = (struct sockaddr_in *)&md5.tcpm_addr;
	int one = 1, fd;

	if (argc > 1 && !fg) {
		fprintf(stderr, "usage: ts-keypin [--foreground]\n");
		return 2;
	}
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
