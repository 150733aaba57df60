// SPDX-License-Identifier: GPL-2.0
/*
 * ts-hold PORT: hold one spliced pair open for the module lifecycle checks of
 * suite-module.  It connects over 127.0.0.1:PORT, leaves bytes unread in both
 * rings, prints "ready", and waits until its standard input is closed; then it
 * checks that the pair still carries bytes in order and exits (status 0 if so).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tsutil.h"

#define PENDING 3000

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 0, lfd, c, s;
	struct ts_rng g = {7};
	struct ts_conn ci;
	char b;

	if (port <= 0 || port > 65535) {
		fprintf(stderr, "usage: ts-hold PORT\n");
		return 2;
	}
	lfd = ts_listen(AF_INET, port);
	c = ts_connect(AF_INET, port);
	s = ts_accept(lfd, 5000);
	close(lfd);
	ts_warm_up(c, s);
	ts_send_stream(c, 1, 0, PENDING, 1000, &g);
	ts_send_stream(s, 2, 0, PENDING, 1000, &g);
	ts_sleep_ms(50);
	if (ts_conn_of_fd(c, &ci) != 1 || strcmp(ci.state, "paired")) {
		fprintf(stderr, "ts-hold: the pair on port %d is not spliced\n", port);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (read(0, &b, 1) > 0)
		;
	/* Still one stream each way, pending bytes first. */
	ts_recv_stream(s, 1, 0, PENDING, 5000, &g);
	ts_recv_stream(c, 2, 0, PENDING, 5000, &g);
	ts_transfer(c, s, 1, PENDING, 100000);
	ts_transfer(s, c, 2, PENDING, 100000);
	close(c);
	close(s);
	printf("done\n");
	return 0;
}
