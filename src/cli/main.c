// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-splice: what is spliced right now.
 *
 *   tcp-splice status [--json]   the daemon, the policies and their cgroups
 *                                (from the pins), and the module's counters
 *   tcp-splice list [--json] [-p]  the spliced sockets, like ss
 *
 * Everything it shows is read through src/lib, as the daemon reads it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "../lib/ts-cgroup.h"
#include "../lib/ts-pins.h"
#include "../lib/ts-policy.h"
#include "../lib/ts-stats.h"
#include "args.h"
#include "json.h"

#ifndef TS_VERSION
#define TS_VERSION "unknown"
#endif
#define SERVICE "tcp-spliced.service"

static void usage(FILE *f)
{
	fputs("usage: tcp-splice status [--json]\n"
	      "       tcp-splice list [--json] [-p|--processes]\n"
	      "  status  the daemon's state, the policies with their cgroups and counters\n"
	      "          (read from the pins under " TS_PIN_ROOT "), and the module's counters\n"
	      "  list    the sockets the module splices, one per line, like ss\n"
	      "  -j, --json       machine-readable output\n"
	      "  -p, --processes  (list) the processes holding each socket\n"
	      "  -h, --help       this text\n"
	      "  -V, --version    the version\n"
	      "Reading the pins and the programs needs root.  See tcp-splice(8).\n",
	      f);
}

static void err_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void err_msg(const char *fmt, ...)
{
	va_list ap;

	fputs("tcp-splice: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the daemon, as systemd sees it ---- */

struct daemon_state {
	bool known; /* systemctl answered */
	char active[32], sub[32], load[32];
	char status[512];
	long pid;
};

static void daemon_state_read(struct daemon_state *d)
{
	char line[1024];
	FILE *p;

	memset(d, 0, sizeof(*d));
	p = popen("systemctl show " SERVICE " --no-pager -p LoadState -p ActiveState -p SubState "
		  "-p StatusText -p MainPID 2>/dev/null",
		  "r");
	if (!p)
		return;
	while (fgets(line, sizeof(line), p)) {
		char *eq = strchr(line, '=');

		if (!eq)
			continue;
		*eq++ = '\0';
		eq[strcspn(eq, "\n")] = '\0';
		if (!strcmp(line, "ActiveState"))
			snprintf(d->active, sizeof(d->active), "%s", eq);
		else if (!strcmp(line, "SubState"))
			snprintf(d->sub, sizeof(d->sub), "%s", eq);
		else if (!strcmp(line, "LoadState"))
			snprintf(d->load, sizeof(d->load), "%s", eq);
		else if (!strcmp(line, "StatusText"))
			snprintf(d->status, sizeof(d->status), "%s", eq);
		else if (!strcmp(line, "MainPID"))
			d->pid = strtol(eq, NULL, 10);
	}
	d->known = pclose(p) == 0 && d->active[0];
}

/* ---- policies and cgroups, from the pins ---- */

struct cgroup_ref {
	uint64_t id;
	char *path; /* NULL: not found in the cgroup tree */
};

struct policy_state {
	char *name;
	bool have_policy;
	struct ts_policy policy; /* as its program's map holds it */
	bool have_stats;
	struct ts_stats stats;
	uint32_t prog_ids[8], map_ids[8];
	size_t nprogs, nmaps;
	struct cgroup_ref *cgroups;
	size_t ncgroups;
};

struct pins_state {
	int err; /* reading TS_PIN_ROOT: 0, -ENOENT (nothing pinned), -EACCES, ... */
	struct policy_state *v;
	size_t n;
};

static struct policy_state *policy_get(struct pins_state *s, const char *name)
{
	struct policy_state *v;

	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].name, name))
			return &s->v[i];
	v = realloc(s->v, (s->n + 1) * sizeof(*v));
	if (!v)
		return NULL;
	s->v = v;
	memset(&v[s->n], 0, sizeof(v[0]));
	v[s->n].name = strdup(name);
	return v[s->n].name ? &v[s->n++] : NULL;
}

static bool id_seen(uint32_t *ids, size_t *n, size_t max, uint32_t id)
{
	for (size_t i = 0; i < *n; i++)
		if (ids[i] == id)
			return true;
	if (*n < max)
		ids[(*n)++] = id;
	return false;
}

/* Policy and counters of one program; several programs of a policy share stats. */
static void read_program(struct policy_state *p, uint32_t prog_id)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info), key = 0;
	struct ts_stats st;
	int fd;

	if (id_seen(p->prog_ids, &p->nprogs, sizeof(p->prog_ids) / sizeof(p->prog_ids[0]), prog_id))
		return;
	fd = ts_prog_map_fd(prog_id, "policy");
	if (fd >= 0) {
		if (!p->have_policy && !bpf_map_lookup_elem(fd, &key, &p->policy))
			p->have_policy = true;
		close(fd);
	}
	fd = ts_prog_map_fd(prog_id, "stats");
	if (fd < 0)
		return;
	if (!bpf_map_get_info_by_fd(fd, &info, &len) &&
	    !id_seen(p->map_ids, &p->nmaps, sizeof(p->map_ids) / sizeof(p->map_ids[0]), info.id) &&
	    !ts_bpf_stats_read(fd, &st)) {
		ts_bpf_stats_add(&p->stats, &st);
		p->have_stats = true;
	}
	close(fd);
}

static int collect_pin(const struct ts_pin *pin, void *data)
{
	struct policy_state *p = policy_get(data, pin->policy);
	struct ts_link_state st = {.cgroup_id = pin->cgroup_id};
	struct cgroup_ref *cg;
	int fd;

	if (!p)
		return -ENOMEM;
	fd = bpf_obj_get(pin->path);
	if (fd >= 0) {
		if (!ts_link_state(fd, &st))
			read_program(p, st.prog_id);
		close(fd);
	}
	cg = realloc(p->cgroups, (p->ncgroups + 1) * sizeof(*cg));
	if (!cg)
		return -ENOMEM;
	p->cgroups = cg;
	cg[p->ncgroups++] = (struct cgroup_ref){.id = st.cgroup_id ? st.cgroup_id : pin->cgroup_id};
	return 0;
}

static int name_cgroup(int dirfd, const char *rel, void *data)
{
	struct pins_state *s = data;
	uint64_t id;

	if (ts_cgroup_id(dirfd, &id))
		return 0;
	for (size_t i = 0; i < s->n; i++)
		for (size_t k = 0; k < s->v[i].ncgroups; k++)
			if (s->v[i].cgroups[k].id == id && !s->v[i].cgroups[k].path)
				s->v[i].cgroups[k].path = strdup(rel);
	return 0;
}

static int cmp_policy(const void *a, const void *b)
{
	return strcmp(((const struct policy_state *)a)->name,
		      ((const struct policy_state *)b)->name);
}

static int cmp_cgroup(const void *a, const void *b)
{
	const struct cgroup_ref *x = a, *y = b;

	if (x->path && y->path)
		return strcmp(x->path, y->path);
	return x->path ? -1 : y->path ? 1 : (x->id > y->id) - (x->id < y->id);
}

static void pins_state_read(struct pins_state *s)
{
	char root[PATH_MAX];

	memset(s, 0, sizeof(*s));
	s->err = ts_pins_foreach(collect_pin, s);
	if (s->n && !ts_cgroup_root(root, sizeof(root)))
		ts_cgroup_walk(root, name_cgroup, s);
	qsort(s->v, s->n, sizeof(s->v[0]), cmp_policy);
	for (size_t i = 0; i < s->n; i++)
		qsort(s->v[i].cgroups, s->v[i].ncgroups, sizeof(s->v[i].cgroups[0]), cmp_cgroup);
}

static void pins_state_free(struct pins_state *s)
{
	for (size_t i = 0; i < s->n; i++) {
		for (size_t k = 0; k < s->v[i].ncgroups; k++)
			free(s->v[i].cgroups[k].path);
		free(s->v[i].cgroups);
		free(s->v[i].name);
	}
	free(s->v);
}

/* ---- status ---- */

static const char *pins_problem(int err)
{
	switch (err) {
	case 0:
	case -ENOENT:
		return NULL;
	case -EACCES:
	case -EPERM:
		return "permission denied (run as root)";
	default:
		return strerror(-err);
	}
}

static void status_text(const struct daemon_state *d, const struct pins_state *s,
			const struct ts_counters *c, int cerr)
{
	const char *problem = pins_problem(s->err);
	size_t width = 0;

	if (!d->known)
		printf("Daemon:   unknown (systemctl show " SERVICE " failed)\n");
	else if (!strcmp(d->load, "not-found"))
		printf("Daemon:   " SERVICE " is not installed\n");
	else if (d->pid)
		printf("Daemon:   %s (%s), pid %ld\n", d->active, d->sub, d->pid);
	else
		printf("Daemon:   %s (%s)\n", d->active, d->sub);
	if (d->status[0])
		printf("Status:   %s\n", d->status);

	if (problem)
		printf("Policies: unknown: %s: %s\n", TS_PIN_ROOT, problem);
	else if (!s->n)
		printf("Policies: none attached (nothing pinned under %s)\n", TS_PIN_ROOT);
	for (size_t i = 0; i < s->n; i++) {
		const struct policy_state *p = &s->v[i];
		char desc[256] = "policy unreadable";

		if (p->have_policy)
			ts_policy_describe(&p->policy, desc, sizeof(desc));
		printf("Policy %s: %s\n", p->name, desc);
		if (p->have_stats)
			printf("  connections: %llu seen, %llu allowed, %llu denied, %llu spliced, "
			       "%llu refused by the module\n",
			       (unsigned long long)p->stats.calls,
			       (unsigned long long)p->stats.allowed,
			       (unsigned long long)p->stats.denied,
			       (unsigned long long)p->stats.kfunc_ok,
			       (unsigned long long)p->stats.kfunc_err);
		for (size_t k = 0; k < p->ncgroups; k++) {
			const struct cgroup_ref *cg = &p->cgroups[k];

			printf("  %-9s ", k ? "" : "cgroups:");
			if (cg->path)
				printf("/%s (id %" PRIu64 ")\n", cg->path, cg->id);
			else
				printf("id %" PRIu64 " (removed)\n", cg->id);
		}
	}

	if (cerr) {
		printf("Module:   %s\n",
		       cerr == -ENOENT ? "not loaded (no " TS_PROC_COUNTERS ")" : strerror(-cerr));
		return;
	}
	printf("Module counters (" TS_PROC_COUNTERS "):\n");
	for (size_t i = 0; i < c->n; i++)
		if (strlen(c->v[i].name) > width)
			width = strlen(c->v[i].name);
	for (size_t i = 0; i < c->n; i++)
		printf("  %-*s %lld\n", (int)width, c->v[i].name, (long long)c->v[i].value);
}

static void status_json(const struct daemon_state *d, const struct pins_state *s,
			const struct ts_counters *c, int cerr)
{
	struct json j;

	json_init(&j, stdout);
	json_object_begin(&j, NULL);

	json_object_begin(&j, "daemon");
	json_string(&j, "unit", SERVICE);
	json_string(&j, "load_state", d->known ? d->load : NULL);
	json_string(&j, "active_state", d->known ? d->active : NULL);
	json_string(&j, "sub_state", d->known ? d->sub : NULL);
	json_string(&j, "status", d->known ? d->status : NULL);
	json_int(&j, "main_pid", d->pid);
	json_object_end(&j);

	json_string(&j, "pins_error", pins_problem(s->err));
	json_array_begin(&j, "policies");
	for (size_t i = 0; i < s->n; i++) {
		const struct policy_state *p = &s->v[i];
		char ports[TS_MAX_PORT_RANGES * 12 + 1];

		json_object_begin(&j, NULL);
		json_string(&j, "name", p->name);
		if (p->have_policy) {
			ts_ports_format(&p->policy, ports, sizeof(ports));
			json_string(&j, "scope", ts_scope_name(p->policy.scope));
			json_string(&j, "family", ts_family_name(p->policy.family_mask));
			json_string(&j, "ports", ports);
		}
		if (p->have_stats) {
			json_object_begin(&j, "counters");
			json_uint(&j, "calls", p->stats.calls);
			json_uint(&j, "allowed", p->stats.allowed);
			json_uint(&j, "denied", p->stats.denied);
			json_uint(&j, "kfunc_ok", p->stats.kfunc_ok);
			json_uint(&j, "kfunc_err", p->stats.kfunc_err);
			json_object_end(&j);
		}
		json_array_begin(&j, "cgroups");
		for (size_t k = 0; k < p->ncgroups; k++) {
			char path[PATH_MAX + 1];

			json_object_begin(&j, NULL);
			json_uint(&j, "id", p->cgroups[k].id);
			if (p->cgroups[k].path)
				snprintf(path, sizeof(path), "/%s", p->cgroups[k].path);
			json_string(&j, "path", p->cgroups[k].path ? path : NULL);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_object_end(&j);
	}
	json_array_end(&j);

	json_bool(&j, "module_loaded", !cerr);
	json_object_begin(&j, "counters");
	for (size_t i = 0; i < c->n; i++)
		json_int(&j, c->v[i].name, c->v[i].value);
	json_object_end(&j);

	json_object_end(&j);
	json_finish(&j);
}

static int cmd_status(bool json)
{
	struct daemon_state d;
	struct pins_state s;
	struct ts_counters c = {0};
	int cerr;

	daemon_state_read(&d);
	pins_state_read(&s);
	cerr = ts_counters_read(NULL, &c);
	if (json)
		status_json(&d, &s, &c, cerr);
	else
		status_text(&d, &s, &c, cerr);
	ts_counters_free(&c);
	pins_state_free(&s);
	return 0;
}

/* ---- list ---- */

struct owner {
	uint64_t inode;
	long pid;
	int fd;
	char comm[32];
};

struct owners {
	struct owner *v;
	size_t n;
};

static bool listed(const struct ts_conns *c, uint64_t inode)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].inode == inode)
			return true;
	return false;
}

static void owners_of_pid(const struct ts_conns *c, const char *pid, struct owners *o)
{
	char dir[64], path[PATH_MAX], link[64], comm[32] = "?";
	struct dirent *de;
	FILE *f;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
	d = opendir(dir);
	if (!d)
		return;
	snprintf(path, sizeof(path), "/proc/%s/comm", pid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	while ((de = readdir(d))) {
		unsigned long long inode;
		struct owner *v;
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (sscanf(link, "socket:[%llu]", &inode) != 1 || !listed(c, inode))
			continue;
		v = realloc(o->v, (o->n + 1) * sizeof(*v));
		if (!v)
			break;
		o->v = v;
		v[o->n] = (struct owner){.inode = inode, .pid = atol(pid), .fd = atoi(de->d_name)};
		snprintf(v[o->n].comm, sizeof(v[o->n].comm), "%s", comm);
		o->n++;
	}
	closedir(d);
}

static void owners_read(const struct ts_conns *c, struct owners *o)
{
	struct dirent *de;
	DIR *d = opendir("/proc");

	memset(o, 0, sizeof(*o));
	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
			owners_of_pid(c, de->d_name, o);
	closedir(d);
}

/* ss's notation: users:(("name",pid=1,fd=3),...). */
static void owners_format(const struct owners *o, uint64_t inode, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < o->n && off < len; i++) {
		int n;

		if (o->v[i].inode != inode)
			continue;
		n = snprintf(buf + off, len - off, "%s(\"%s\",pid=%ld,fd=%d)",
			     off ? "," : "users:(", o->v[i].comm, o->v[i].pid, o->v[i].fd);
		if (n < 0)
			return;
		off += (size_t)n;
	}
	if (off && off < len - 1)
		snprintf(buf + off, len - off, ")");
}

static void list_text(const struct ts_conns *c, const struct owners *o, bool procs)
{
	char local[TS_ENDPOINT_STRLEN], remote[TS_ENDPOINT_STRLEN], users[512];
	int wl = (int)strlen("Local"), wr = (int)strlen("Peer");

	for (size_t i = 0; i < c->n; i++) {
		int l = (int)strlen(ts_endpoint_format(&c->v[i].local, local, sizeof(local)));
		int r = (int)strlen(ts_endpoint_format(&c->v[i].remote, remote, sizeof(remote)));

		wl = l > wl ? l : wl;
		wr = r > wr ? r : wr;
	}
	printf("%-7s %-*s %-*s %10s %12s %12s %10s %10s%s\n", "State", wl, "Local", wr, "Peer",
	       "Inode", "Ring-Tx", "Ring-Rx", "Rx-Queue", "Rx-Ring", procs ? " Process" : "");
	for (size_t i = 0; i < c->n; i++) {
		const struct ts_conn *s = &c->v[i];

		users[0] = '\0';
		if (procs)
			owners_format(o, s->inode, users, sizeof(users));
		printf("%-7s %-*s %-*s %10" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10" PRIu64
		       " %10" PRIu64 "%s%s\n",
		       s->state, wl, ts_endpoint_format(&s->local, local, sizeof(local)), wr,
		       ts_endpoint_format(&s->remote, remote, sizeof(remote)), s->inode, s->ring_tx,
		       s->ring_rx, s->rx_fill, s->rx_size, procs ? " " : "", users);
	}
}

static void json_endpoint(struct json *j, const char *key, const struct ts_endpoint *ep)
{
	char addr[INET6_ADDRSTRLEN] = "?";

	inet_ntop(ep->family, ep->addr, addr, sizeof(addr));
	json_object_begin(j, key);
	json_string(j, "address", addr);
	json_uint(j, "port", ep->port);
	json_object_end(j);
}

static void list_json(const struct ts_conns *c, const struct owners *o, bool procs)
{
	struct json j;

	json_init(&j, stdout);
	json_array_begin(&j, NULL);
	for (size_t i = 0; i < c->n; i++) {
		const struct ts_conn *s = &c->v[i];

		json_object_begin(&j, NULL);
		json_string(&j, "state", s->state);
		json_endpoint(&j, "local", &s->local);
		json_endpoint(&j, "remote", &s->remote);
		json_uint(&j, "inode", s->inode);
		json_uint(&j, "ring_tx", s->ring_tx);
		json_uint(&j, "ring_rx", s->ring_rx);
		json_uint(&j, "rx_fill", s->rx_fill);
		json_uint(&j, "rx_size", s->rx_size);
		if (procs) {
			json_array_begin(&j, "processes");
			for (size_t k = 0; k < o->n; k++) {
				if (o->v[k].inode != s->inode)
					continue;
				json_object_begin(&j, NULL);
				json_string(&j, "comm", o->v[k].comm);
				json_int(&j, "pid", o->v[k].pid);
				json_int(&j, "fd", o->v[k].fd);
				json_object_end(&j);
			}
			json_array_end(&j);
		}
		json_object_end(&j);
	}
	json_array_end(&j);
	json_finish(&j);
}

static int cmd_list(bool json, bool procs)
{
	struct owners o = {0};
	struct ts_conns c;
	int r;

	r = ts_conns_read(NULL, &c);
	if (r) {
		if (r == -ENOENT)
			err_msg("the tcp_splice module is not loaded (no " TS_PROC_CONNS ")");
		else
			err_msg(TS_PROC_CONNS ": %s", r == -EPROTO ? "unknown format (module and "
								     "tool versions differ?)"
								   : strerror(-r));
		return 1;
	}
	if (procs)
		owners_read(&c, &o);
	if (json)
		list_json(&c, &o, procs);
	else
		list_text(&c, &o, procs);
	free(o.v);
	ts_conns_free(&c);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli_args a;

	switch (cli_parse_args(argc, argv, &a)) {
	case CLI_HELP:
		usage(stdout);
		return 0;
	case CLI_VERSION:
		printf("tcp-splice %s\n", TS_VERSION);
		return 0;
	case CLI_STATUS:
		return cmd_status(a.json);
	case CLI_LIST:
		return cmd_list(a.json, a.procs);
	case CLI_USAGE:
		break;
	}
	err_msg("%s", a.err);
	usage(stderr);
	return 2;
}
