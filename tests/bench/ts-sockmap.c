// SPDX-License-Identifier: GPL-2.0
/*
 * ts-sockmap: load the benchmark's sockmap redirection (sockmap.bpf.c),
 * attach its sock_ops program to a cgroup and its sk_msg program to the
 * SOCKHASH, and pin both so that the tool can exit; detach undoes it.
 *
 *   ts-sockmap attach [--cgroup PATH] [--ports LO-HI]
 *   ts-sockmap detach
 *   ts-sockmap stats     redirected_bytes N, redirected_msgs N, passed_msgs N
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sockmap.skel.h"

#define PIN_DIR	  "/sys/fs/bpf/ts-bench-sockmap"
#define PIN_LINK  PIN_DIR "/link"
#define PIN_MSG	  PIN_DIR "/msg"
#define PIN_SOCKS PIN_DIR "/socks"
#define PIN_STATS PIN_DIR "/stats"

/* The layout of sockmap.bpf.c's stats value. */
struct counts {
	__u64 redirected_bytes, redirected_msgs, passed_msgs;
};

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("ts-sockmap: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(FILE *f)
{
	fputs("usage: ts-sockmap attach [--cgroup PATH] [--ports LO-HI]\n"
	      "       ts-sockmap detach\n"
	      "       ts-sockmap stats\n"
	      "attach: established IPv4 TCP sockets with a local or remote port in LO-HI\n"
	      "(default 30000-39999) of the cgroup PATH (default /sys/fs/cgroup) go into a\n"
	      "SOCKHASH, and what they send is redirected to their peer's receive queue.\n"
	      "Pinned in " PIN_DIR ".\n",
	      f);
}

static void parse_ports(const char *s, __u32 *lo, __u32 *hi)
{
	unsigned int a, b;
	char extra;

	if (sscanf(s, "%u-%u%c", &a, &b, &extra) != 2 || a < 1 || a > b || b > 65535)
		die("--ports takes LO-HI within 1-65535, not '%s'", s);
	*lo = a;
	*hi = b;
}

static void unpin(const char *path)
{
	if (unlink(path) && errno != ENOENT)
		die("removing %s: %s", path, strerror(errno));
}

static int detach(void)
{
	int prog = bpf_obj_get(PIN_MSG), map = bpf_obj_get(PIN_SOCKS);

	if (prog >= 0 && map >= 0 && bpf_prog_detach2(prog, map, BPF_SK_MSG_VERDICT))
		fprintf(stderr, "ts-sockmap: detaching the sk_msg program: %s\n", strerror(errno));
	if (prog >= 0)
		close(prog);
	if (map >= 0)
		close(map);
	/* The cgroup attachment goes with the link's last reference. */
	unpin(PIN_LINK);
	unpin(PIN_MSG);
	unpin(PIN_SOCKS);
	unpin(PIN_STATS);
	if (rmdir(PIN_DIR) && errno != ENOENT)
		die("removing %s: %s", PIN_DIR, strerror(errno));
	return 0;
}

static int attach(const char *cgroup, __u32 lo, __u32 hi)
{
	struct sockmap *skel;
	struct bpf_link *link;
	int cg, err;

	if (!access(PIN_DIR, F_OK))
		die("%s exists: already attached (ts-sockmap detach first)", PIN_DIR);
	skel = sockmap__open();
	if (!skel)
		die("opening the BPF object: %s", strerror(errno));
	skel->rodata->port_lo = lo;
	skel->rodata->port_hi = hi;
	err = sockmap__load(skel);
	if (err)
		die("loading the BPF programs: %s", strerror(-err));
	cg = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		die("cgroup %s: %s", cgroup, strerror(errno));
	if (bpf_prog_attach(bpf_program__fd(skel->progs.sockmap_redirect),
			    bpf_map__fd(skel->maps.socks), BPF_SK_MSG_VERDICT, 0))
		die("attaching the sk_msg program to the SOCKHASH: %s", strerror(errno));
	link = bpf_program__attach_cgroup(skel->progs.sockmap_sockops, cg);
	if (!link)
		die("attaching the sock_ops program to %s: %s", cgroup, strerror(errno));
	if (mkdir(PIN_DIR, 0700) && errno != EEXIST)
		die("mkdir %s: %s (is bpffs mounted at /sys/fs/bpf?)", PIN_DIR, strerror(errno));
	if (bpf_link__pin(link, PIN_LINK) ||
	    bpf_program__pin(skel->progs.sockmap_redirect, PIN_MSG) ||
	    bpf_map__pin(skel->maps.socks, PIN_SOCKS) ||
	    bpf_map__pin(skel->maps.stats, PIN_STATS)) {
		err = errno;
		detach();
		die("pinning in %s: %s", PIN_DIR, strerror(err));
	}
	bpf_link__disconnect(link);
	bpf_link__destroy(link);
	close(cg);
	sockmap__destroy(skel);
	return 0;
}

static int stats(void)
{
	int fd = bpf_obj_get(PIN_STATS);
	struct counts c;
	__u32 key = 0;

	if (fd < 0)
		die("%s: %s (not attached?)", PIN_STATS, strerror(errno));
	if (bpf_map_lookup_elem(fd, &key, &c))
		die("reading %s: %s", PIN_STATS, strerror(errno));
	printf("redirected_bytes %llu\nredirected_msgs %llu\npassed_msgs %llu\n",
	       (unsigned long long)c.redirected_bytes, (unsigned long long)c.redirected_msgs,
	       (unsigned long long)c.passed_msgs);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"cgroup", required_argument, NULL, 'c'},
		{"ports", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *cgroup = "/sys/fs/cgroup", *cmd;
	__u32 lo = 30000, hi = 39999;
	int c;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cgroup = optarg;
			break;
		case 'p':
			parse_ports(optarg, &lo, &hi);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
	if (!strcmp(cmd, "attach"))
		return attach(cgroup, lo, hi);
	if (strcmp(cmd, "detach") && strcmp(cmd, "stats"))
		die("unknown command '%s': attach, detach or stats", cmd);
	if (cgroup != NULL && (strcmp(cgroup, "/sys/fs/cgroup") || lo != 30000 || hi != 39999))
		die("%s takes no options", cmd);
	return !strcmp(cmd, "detach") ? detach() : stats();
}
