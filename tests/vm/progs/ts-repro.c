// SPDX-License-Identifier: GPL-2.0
/*
 * ts-repro: minimal reproducers of module bugs found by the stress suite,
 * each run over a plain port and a spliced one; the spliced run must behave
 * as the plain one.  A reproducer runs in a child process: one that does not
 * come back within 10 s is reported as a hang (the child may stay stuck in
 * the kernel).
 *
 *   ts-repro [NAME...]     default: all;  -l lists them
 *
 * peek-off-past-fin: the peer sent bytes and shut down; the receiver peeks
 * every byte (SO_PEEK_OFF moves past them), then peeks again with
 * MSG_DONTWAIT.  TCP returns 0 (EOF at the peek offset).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsutil.h"

#define PEEK_BYTES 100

/* Returns what the final peek returned, as "rc errno". */
static void peek_off_past_fin(int port, char *out, size_t n)
{
	int lfd = ts_listen_at("127.0.0.1", port, 8, 0);
	int c = ts_connect(AF_INET, port), s = ts_accept(lfd, 5000);
	char buf[PEEK_BYTES];
	ssize_t r;

	close(lfd);
	ts_warm_up(c, s);
	ts_fill(1, 0, buf, sizeof(buf));
	ts_write_all(c, buf, sizeof(buf));
	shutdown(c, SHUT_WR);
	ts_poll1(s, POLLIN, 5000);
	ts_set_int(s, SOL_SOCKET, SO_PEEK_OFF, 0);
	r = recv(s, buf, sizeof(buf), MSG_PEEK | MSG_WAITALL);
	if (r != PEEK_BYTES)
		ts_fail("first peek: %zd", r);
	r = recv(s, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	snprintf(out, n, "%zd %s", r, r < 0 ? strerror(errno) : "-");
	close(c);
	close(s);
}

struct repro {
	const char *name;
	void (*fn)(int port, char *out, size_t n);
};

static const struct repro repros[] = {
	{"peek-off-past-fin", peek_off_past_fin},
};

/* Runs fn in a child; its answer in out, or "hang". */
static bool run(const struct repro *r, int port, char *out, size_t n)
{
	int pfd[2], st;
	pid_t pid;
	ssize_t got;

	if (pipe(pfd) < 0)
		return false;
	pid = fork();
	if (pid == 0) {
		char res[128] = "";

		close(pfd[0]);
		r->fn(port, res, sizeof(res));
		if (write(pfd[1], res, strlen(res) + 1) < 0)
			_exit(3);
		_exit(0);
	}
	close(pfd[1]);
	if (!(ts_poll1(pfd[0], POLLIN, 10000) & (POLLIN | POLLHUP))) {
		snprintf(out, n, "hang (no answer in 10 s; pid %d left behind)", pid);
		kill(pid, SIGKILL);
		close(pfd[0]);
		return false;
	}
	got = read(pfd[0], out, n - 1);
	out[got > 0 ? got : 0] = 0;
	close(pfd[0]);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		snprintf(out, n, "child failed (status 0x%x)", st);
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	int fails = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "-l")) {
		for (size_t i = 0; i < sizeof(repros) / sizeof(repros[0]); i++)
			printf("%s\n", repros[i].name);
		return 0;
	}
	for (size_t i = 0; i < sizeof(repros) / sizeof(repros[0]); i++) {
		const struct repro *r = &repros[i];
		char plain[160], spliced[160];
		struct ts_counters before, after;
		long long pairs;
		bool sel = argc < 2;

		for (int k = 1; k < argc; k++)
			sel |= !strcmp(argv[k], r->name);
		if (!sel)
			continue;
		if (!run(r, TS_PORT_PLAIN + 9500 + (int)i, plain, sizeof(plain))) {
			printf("FAIL %s: plain TCP run: %s\n", r->name, plain);
			fails++;
			continue;
		}
		ts_counters_read(&before);
		run(r, TS_PORT_SPLICED + 9500 + (int)i, spliced, sizeof(spliced));
		ts_counters_read(&after);
		pairs = ts_counter(&after, "pairs_total", NULL) -
			ts_counter(&before, "pairs_total", NULL);
		if (!after.present || pairs < 1) {
			/* Not a reproduction without the module pairing the connection. */
			printf("FAIL %s: the spliced run was not spliced (pairs_total +%lld): "
			       "module loaded, ports 10000-19999 in the policy?\n",
			       r->name, after.present ? pairs : 0);
			fails++;
		} else if (strcmp(plain, spliced)) {
			printf("FAIL %s: spliced: %s; plain TCP: %s\n", r->name, spliced, plain);
			fails++;
		} else {
			printf("PASS %s\n", r->name);
		}
	}
	return fails ? 1 : 0;
}
