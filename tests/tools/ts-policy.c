// SPDX-License-Identifier: GPL-2.0
/*
 * ts-policy: load the tcp-splice sock_ops program for the VM tests, set its
 * policy, attach it to a cgroup and pin it, so that the tool can exit.
 *
 *   ts-policy attach [--cgroup PATH] [--scope loopback|local|any]
 *                    [--ports LO-HI,...] [--family 4|6|any] [--prefix CIDR]...
 *   ts-policy set    [the same policy options, plus --on | --off]
 *   ts-policy detach
 *   ts-policy stats
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>

#include "tcp_splice_policy.h"
#include "tcp_splice.skel.h"

#define PIN_DIR	     "/sys/fs/bpf/tcp-splice-test"
#define PIN_LINK     PIN_DIR "/link"
#define PIN_POLICY   PIN_DIR "/policy"
#define PIN_PREFIXES PIN_DIR "/local_prefixes"
#define PIN_STATS    PIN_DIR "/stats"
#define MODULE_BTF   "/sys/kernel/btf/tcp_splice"

/* A per-CPU value is copied out in 8-byte slots, one per possible CPU. */
_Static_assert(sizeof(struct ts_stats) % 8 == 0, "ts_stats must fill 8-byte slots");

struct options {
	const char *cgroup;
	struct ts_policy policy;
	bool cgroup_set, scope_set, family_set, ports_set, enabled_set;
	struct ts_prefix_key prefixes[TS_MAX_LOCAL_PREFIXES];
	unsigned int nprefixes;
};

static bool verbose;

static void err_msg(const char *fmt, ...)
{
	va_list ap;

	fputs("ts-policy: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* libbpf's warnings carry the verifier log; its debug chatter only with -v. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void usage(FILE *f)
{
	fputs("usage: ts-policy attach [--cgroup PATH] [POLICY...]\n"
	      "       ts-policy set [POLICY...] [--on | --off]\n"
	      "       ts-policy detach\n"
	      "       ts-policy stats\n"
	      "POLICY:\n"
	      "  --scope loopback|local|any  addresses both ends must have (default loopback)\n"
	      "  --ports LO-HI,PORT,...      local or remote port, up to 16 ranges (default any)\n"
	      "  --family 4|6|any            address family (default any)\n"
	      "  --prefix ADDR[/LEN]         add a local prefix for --scope local (repeatable)\n"
	      "Options: -v (libbpf debug output), -h.  The program and its maps are pinned\n"
	      "under " PIN_DIR ".\n",
	      f);
}

static int parse_u16(const char *s, const char *end, __u16 *out)
{
	unsigned long v;
	char *e;

	if (s == end || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &e, 10);
	if (errno || e != end || v > 65535)
		return -1;
	*out = (__u16)v;
	return 0;
}

/* "10000-19999,8080" into policy->ports; "any" clears the list. */
static int parse_ports(const char *arg, struct ts_policy *p)
{
	const char *s = arg;

	p->nports = 0;
	if (!strcmp(arg, "any"))
		return 0;
	for (;;) {
		const char *end = s + strcspn(s, ",");
		const char *dash = memchr(s, '-', (size_t)(end - s));
		struct ts_port_range r;

		if (p->nports == TS_MAX_PORT_RANGES) {
			err_msg("--ports: at most %d ranges", TS_MAX_PORT_RANGES);
			return -1;
		}
		if (dash ? parse_u16(s, dash, &r.lo) || parse_u16(dash + 1, end, &r.hi)
			 : parse_u16(s, end, &r.lo)) {
			err_msg("--ports: '%.*s' is not a port or LO-HI range (0..65535)",
				(int)(end - s), s);
			return -1;
		}
		if (!dash)
			r.hi = r.lo;
		if (r.lo > r.hi) {
			err_msg("--ports: range %u-%u is empty", r.lo, r.hi);
			return -1;
		}
		p->ports[p->nports++] = r;
		if (!*end)
			return 0;
		s = end + 1;
	}
}

static int parse_scope(const char *arg, struct ts_policy *p)
{
	static const char *const names[] = {
		[TS_SCOPE_LOOPBACK] = "loopback",
		[TS_SCOPE_LOCAL] = "local",
		[TS_SCOPE_ANY] = "any",
	};
	__u32 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(arg, names[i])) {
			p->scope = i;
			return 0;
		}
	}
	err_msg("--scope: '%s' is not loopback, local or any", arg);
	return -1;
}

static int parse_family(const char *arg, struct ts_policy *p)
{
	if (!strcmp(arg, "4")) {
		p->family_mask = TS_FAMILY_IPV4;
	} else if (!strcmp(arg, "6")) {
		p->family_mask = TS_FAMILY_IPV6;
	} else if (!strcmp(arg, "any")) {
		p->family_mask = 0;
	} else {
		err_msg("--family: '%s' is not 4, 6 or any", arg);
		return -1;
	}
	return 0;
}

/* ADDR[/LEN] into an LPM key; IPv4 goes v4-mapped, as the program looks it up. */
static int parse_prefix(const char *arg, struct ts_prefix_key *key)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(arg, '/');
	size_t alen = slash ? (size_t)(slash - arg) : strlen(arg);
	unsigned long len, max;
	char *e;

	memset(key, 0, sizeof(*key));
	if (alen >= sizeof(addr))
		goto bad;
	memcpy(addr, arg, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, &key->addr32[3]) == 1) {
		key->addr32[2] = htonl(0xffff);
		max = 32;
	} else if (inet_pton(AF_INET6, addr, key->addr) == 1) {
		max = 128;
	} else {
		goto bad;
	}
	len = max;
	if (slash) {
		errno = 0;
		len = strtoul(slash + 1, &e, 10);
		if (errno || e == slash + 1 || *e || len > max)
			goto bad;
	}
	key->prefixlen = (__u32)(128 - max + len);
	return 0;
bad:
	err_msg("--prefix: '%s' is not ADDR or ADDR/LEN (IPv4 or IPv6)", arg);
	return -1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"cgroup", required_argument, NULL, 'c'}, {"scope", required_argument, NULL, 's'},
		{"ports", required_argument, NULL, 'p'},  {"family", required_argument, NULL, 'f'},
		{"prefix", required_argument, NULL, 'P'}, {"on", no_argument, NULL, '1'},
		{"off", no_argument, NULL, '0'},	  {"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},	  {0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->cgroup = optarg;
			o->cgroup_set = true;
			break;
		case 's':
			if (parse_scope(optarg, &o->policy))
				return -1;
			o->scope_set = true;
			break;
		case 'p':
			if (parse_ports(optarg, &o->policy))
				return -1;
			o->ports_set = true;
			break;
		case 'f':
			if (parse_family(optarg, &o->policy))
				return -1;
			o->family_set = true;
			break;
		case 'P':
			if (o->nprefixes == TS_MAX_LOCAL_PREFIXES) {
				err_msg("--prefix: at most %d prefixes", TS_MAX_LOCAL_PREFIXES);
				return -1;
			}
			if (parse_prefix(optarg, &o->prefixes[o->nprefixes]))
				return -1;
			o->nprefixes++;
			break;
		case '1':
		case '0':
			o->policy.enabled = c == '1';
			o->enabled_set = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		err_msg("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return 0;
}

static int add_prefixes(int map_fd, const struct options *o)
{
	__u8 one = 1;
	unsigned int i;

	for (i = 0; i < o->nprefixes; i++) {
		if (bpf_map_update_elem(map_fd, &o->prefixes[i], &one, BPF_ANY)) {
			err_msg("adding a local prefix failed: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int check_bpffs(void)
{
	struct statfs st;

	if (statfs("/sys/fs/bpf", &st) || st.f_type != BPF_FS_MAGIC) {
		err_msg("/sys/fs/bpf is not a BPF file system (mount -t bpf bpf /sys/fs/bpf)");
		return -1;
	}
	return 0;
}

static void unpin_all(void)
{
	unlink(PIN_LINK);
	unlink(PIN_POLICY);
	unlink(PIN_PREFIXES);
	unlink(PIN_STATS);
	rmdir(PIN_DIR);
}

static void explain_load_error(int err)
{
	if (access(MODULE_BTF, F_OK)) {
		err_msg("cannot resolve the kfunc bpf_tcp_splice_established: "
			"is the tcp_splice module loaded? (no " MODULE_BTF ")");
		return;
	}
	err_msg("loading the BPF program failed: %s%s", strerror(-err),
		err == -EPERM ? " (are you root?)" : " (the verifier log is above)");
}

static int pin_all(struct tcp_splice *skel, struct bpf_link *link)
{
	if (mkdir(PIN_DIR, 0700) && errno != EEXIST) {
		err_msg("mkdir %s: %s", PIN_DIR, strerror(errno));
		return -1;
	}
	if (bpf_link__pin(link, PIN_LINK) || bpf_map__pin(skel->maps.policy, PIN_POLICY) ||
	    bpf_map__pin(skel->maps.local_prefixes, PIN_PREFIXES) ||
	    bpf_map__pin(skel->maps.stats, PIN_STATS)) {
		err_msg("pinning under %s failed: %s", PIN_DIR, strerror(errno));
		return -1;
	}
	return 0;
}

static int cmd_attach(const struct options *o)
{
	struct tcp_splice *skel = NULL;
	struct bpf_link *link = NULL;
	__u32 key = 0;
	int cg = -1, err, ret = 1;

	if (check_bpffs())
		return 1;
	if (!access(PIN_LINK, F_OK)) {
		err_msg("already attached (%s exists): run 'ts-policy detach' first", PIN_LINK);
		return 1;
	}
	cg = open(o->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		err_msg("cgroup %s: %s", o->cgroup, strerror(errno));
		return 1;
	}
	skel = tcp_splice__open();
	if (!skel) {
		err_msg("opening the BPF object failed: %s", strerror(errno));
		goto out;
	}
	err = tcp_splice__load(skel);
	if (err) {
		explain_load_error(err);
		goto out;
	}
	/* The policy is in place before the first connection can see it. */
	if (bpf_map__update_elem(skel->maps.policy, &key, sizeof(key), &o->policy,
				 sizeof(o->policy), BPF_ANY)) {
		err_msg("writing the policy failed: %s", strerror(errno));
		goto out;
	}
	if (add_prefixes(bpf_map__fd(skel->maps.local_prefixes), o))
		goto out;
	link = bpf_program__attach_cgroup(skel->progs.tcp_splice_sockops, cg);
	if (!link) {
		err_msg("attaching to cgroup %s failed: %s", o->cgroup, strerror(errno));
		goto out;
	}
	if (pin_all(skel, link)) {
		unpin_all();
		goto out;
	}
	/* The pin keeps the link attached once this process exits. */
	bpf_link__disconnect(link);
	printf("attached to %s, pinned under %s\n", o->cgroup, PIN_DIR);
	ret = 0;
out:
	bpf_link__destroy(link);
	tcp_splice__destroy(skel);
	close(cg);
	return ret;
}

static int cmd_set(const struct options *o)
{
	struct ts_policy p;
	__u32 key = 0;
	int fd, ret = 1;

	fd = bpf_obj_get(PIN_POLICY);
	if (fd < 0) {
		err_msg("not attached (%s: %s): run 'ts-policy attach' first", PIN_POLICY,
			strerror(errno));
		return 1;
	}
	if (bpf_map_lookup_elem(fd, &key, &p)) {
		err_msg("reading the policy failed: %s", strerror(errno));
		goto out;
	}
	if (o->enabled_set)
		p.enabled = o->policy.enabled;
	if (o->scope_set)
		p.scope = o->policy.scope;
	if (o->family_set)
		p.family_mask = o->policy.family_mask;
	if (o->ports_set) {
		p.nports = o->policy.nports;
		memcpy(p.ports, o->policy.ports, sizeof(p.ports));
	}
	if (bpf_map_update_elem(fd, &key, &p, BPF_ANY)) {
		err_msg("writing the policy failed: %s", strerror(errno));
		goto out;
	}
	close(fd);
	fd = bpf_obj_get(PIN_PREFIXES);
	if (fd < 0) {
		err_msg("%s: %s", PIN_PREFIXES, strerror(errno));
		return 1;
	}
	if (add_prefixes(fd, o))
		goto out;
	ret = 0;
out:
	close(fd);
	return ret;
}

static int cmd_detach(void)
{
	bool found = false;
	int fd;

	fd = bpf_obj_get(PIN_LINK);
	if (fd >= 0) {
		/* Detach now, even if something else still holds the link. */
		if (bpf_link_detach(fd))
			err_msg("detaching the link failed: %s (unpinning anyway)",
				strerror(errno));
		close(fd);
		found = true;
	}
	found |= !access(PIN_POLICY, F_OK) || !access(PIN_STATS, F_OK);
	unpin_all();
	if (!found) {
		err_msg("nothing to detach: %s is not pinned", PIN_LINK);
		return 1;
	}
	printf("detached\n");
	return 0;
}

static int cmd_stats(void)
{
	struct ts_stats sum = {0}, *per_cpu = NULL;
	__u32 key = 0;
	int fd, ncpus, i, ret = 1;

	fd = bpf_obj_get(PIN_STATS);
	if (fd < 0) {
		err_msg("not attached (%s: %s): run 'ts-policy attach' first", PIN_STATS,
			strerror(errno));
		return 1;
	}
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		err_msg("counting the possible CPUs failed: %s", strerror(-ncpus));
		goto out;
	}
	per_cpu = calloc((size_t)ncpus, sizeof(*per_cpu));
	if (!per_cpu) {
		err_msg("out of memory");
		goto out;
	}
	if (bpf_map_lookup_elem(fd, &key, per_cpu)) {
		err_msg("reading the counters failed: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < ncpus; i++) {
		sum.calls += per_cpu[i].calls;
		sum.allowed += per_cpu[i].allowed;
		sum.denied += per_cpu[i].denied;
		sum.kfunc_ok += per_cpu[i].kfunc_ok;
		sum.kfunc_err += per_cpu[i].kfunc_err;
	}
	printf("calls %llu\nallowed %llu\ndenied %llu\nkfunc_ok %llu\nkfunc_err %llu\n",
	       (unsigned long long)sum.calls, (unsigned long long)sum.allowed,
	       (unsigned long long)sum.denied, (unsigned long long)sum.kfunc_ok,
	       (unsigned long long)sum.kfunc_err);
	ret = 0;
out:
	free(per_cpu);
	close(fd);
	return ret;
}

static int bad_option(const char *cmd, const char *what)
{
	err_msg("'%s' does not take %s", cmd, what);
	return 2;
}

int main(int argc, char **argv)
{
	static struct options o = {
		.cgroup = "/sys/fs/cgroup",
		.policy = {.enabled = 1, .scope = TS_SCOPE_LOOPBACK},
	};
	bool policy_opts;
	const char *cmd;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return 0;
	}
	libbpf_set_print(libbpf_print);

	if (strcmp(cmd, "attach") && strcmp(cmd, "set") && strcmp(cmd, "detach") &&
	    strcmp(cmd, "stats")) {
		err_msg("unknown command '%s'", cmd);
		usage(stderr);
		return 2;
	}
	if (parse_options(argc - 1, argv + 1, &o))
		return 2;
	policy_opts = o.scope_set || o.ports_set || o.family_set || o.nprefixes;
	if (!strcmp(cmd, "attach")) {
		if (o.enabled_set)
			return bad_option(cmd, "--on/--off");
		return cmd_attach(&o);
	}
	if (o.cgroup_set)
		return bad_option(cmd, "--cgroup");
	if (!strcmp(cmd, "set"))
		return cmd_set(&o);
	if (policy_opts || o.enabled_set)
		return bad_option(cmd, "policy options");
	return !strcmp(cmd, "detach") ? cmd_detach() : cmd_stats();
}
