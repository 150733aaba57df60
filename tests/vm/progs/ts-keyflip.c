// SPDX-License-Identifier: GPL-2.0
/*
 * ts-keyflip: reproduce the test bed's emulator defect that ts-keypin works
 * around, with no tcp-splice module involved.
 *
 *   ts-keyflip [SECONDS]      (default 60)
 *
 * Two loopback TCP pairs ping-pong one byte on their own threads while the
 * main thread opens a socket, sets SO_TIMESTAMP and closes it every 2 ms, so
 * that netstamp_needed_key is switched on and off (through its deferred work)
 * under receive traffic.  Under qemu TCG with thread=multi the guest kernel
 * dies within seconds with "Oops: int3" in the receive path.  Boot without the
 * pin to see it:
 *   tests/vm/run --kernel 6.12 --no-keypin -- build/tests/ts-keyflip 60
 * Exit status 0 when the time is over (with the pins held, or one TCG thread).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void *ping_pong(void *arg)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((unsigned short)(29800 + (long)arg)),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1, c, s;
	char b[64] = {0};
	long n = 0;

	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (void *)&a, sizeof(a)) || listen(lfd, 1))
		die("ts-keyflip: bind/listen");
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (void *)&a, sizeof(a)))
		die("ts-keyflip: connect");
	s = accept(lfd, NULL, NULL);
	if (s < 0)
		die("ts-keyflip: accept");
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (!atomic_load(&stop)) {
		if (write(c, b, 1) != 1 || read(s, b, sizeof(b)) != 1 || write(s, b, 1) != 1 ||
		    read(c, b, sizeof(b)) != 1)
			die("ts-keyflip: ping-pong");
		n++;
	}
	printf("ts-keyflip: pair %ld: %ld round trips\n", (long)arg, n);
	close(c);
	close(s);
	close(lfd);
	return NULL;
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 60, one = 1;
	time_t end = time(NULL) + secs;
	pthread_t t[2];
	long flips = 0;

	if (secs <= 0) {
		fprintf(stderr, "usage: ts-keyflip [SECONDS]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (long i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, ping_pong, (void *)i);
	while (time(NULL) < end) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one));
		close(fd);
		flips++;
		usleep(2000);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("ts-keyflip: %ld SO_TIMESTAMP sockets opened and closed in %d s\n", flips, secs);
	return 0;
}
