// SPDX-License-Identifier: GPL-2.0
/* tcp-spliced: the manager (see manager.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "../lib/ts-cleanup.h"
#include "../lib/ts-cgroup.h"
#include "../lib/ts-policy.h"
#include "../lib/ts-stats.h"
#include "attach.h"
#include "cgwatch.h"
#include "config.h"
#include "kmod.h"
#include "log.h"
#include "manager.h"
#include "netwatch.h"
#include "progs.h"

#define USEC_PER_SEC 1000000ULL

struct tsd_manager {
	sd_event *event;
	char *config_path;
	struct tsd_config config;
	struct tsd_progs progs;
	struct tsd_attachments att;
	struct tsd_cgwatch *cgw;
	struct tsd_netwatch *nw;
	int prefix_fd;
	char cgroup_root[PATH_MAX];
	sd_event_source *status_timer;
	bool reload_rejected; /* the running config is older than the file */
};

/* ---- config ---- */

/* Each "file:line: message" the parser wrote becomes one journal entry. */
static void log_config_errors(const char *path, char *text)
{
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		struct tsd_fields f = {.config_file = path};
		size_t plen = strlen(path);

		if (!strncmp(line, path, plen) && line[plen] == ':')
			f.config_line = atoi(line + plen + 1);
		tsd_event(LOG_ERR, TSD_MID_CONFIG_REJECTED, &f, "%s", line);
	}
}

static int read_config(const char *path, struct tsd_config *cfg)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	FILE *errs;
	int r;

	errs = open_memstream(&text, &len);
	if (!errs)
		return -ENOMEM;
	tsd_config_defaults(cfg);
	r = tsd_config_parse_file(path, cfg, errs);
	fclose(errs);
	if (r) {
		log_config_errors(path, text ? text : (char[]){""});
		return -EINVAL;
	}
	return 0;
}

/* ---- status ---- */

static void notify_status(struct tsd_manager *m, const char *extra)
{
	struct ts_counters c = {0};
	char pairs[32] = "?";
	int64_t v;

	if (!ts_counters_read(NULL, &c) && !ts_counters_get(&c, "pairs_active", &v))
		snprintf(pairs, sizeof(pairs), "%lld", (long long)v);
	ts_counters_free(&c);
	sd_notifyf(0, "%sSTATUS=%zu policies, %zu cgroups attached, %s pairs active%s", extra,
		   m->progs.n, m->att.n, pairs,
		   m->reload_rejected ? " (last reload rejected, see the journal)" : "");
}

/* ---- which cgroup runs which program ---- */

/*
 * The first policy matching the cgroup, unless the nearest claimed ancestor
 * has the same one: its program already runs for this subtree (cgroup
 * programs are inherited), and a second copy would only offer every socket
 * twice.
 */
static const struct tsd_prog *desired(const struct tsd_manager *m, const char *cgroup)
{
	const struct tsd_prog *p = tsd_progs_match(&m->progs, cgroup);
	char parent[PATH_MAX];

	if (!p || !*cgroup ||
	    (size_t)snprintf(parent, sizeof(parent), "%s", cgroup) >= sizeof(parent))
		return p;
	for (;;) {
		char *slash = strrchr(parent, '/');
		const struct tsd_prog *q;

		if (slash)
			*slash = '\0';
		else
			parent[0] = '\0';
		q = tsd_progs_match(&m->progs, parent);
		if (q)
			return q == p ? NULL : p;
		if (!parent[0])
			return p;
	}
}

static int visit(int dirfd, const char *cgroup, void *data)
{
	struct tsd_manager *m = data;
	uint64_t id;

	/* Watch before the walk lists the children: a child made now is an event. */
	tsd_cgwatch_add(m->cgw, cgroup);
	if (ts_cgroup_id(dirfd, &id))
		return 0;
	tsd_attach_set(&m->att, dirfd, id, cgroup, desired(m, cgroup));
	return 0;
}

static void reconcile_all(struct tsd_manager *m)
{
	int r;

	tsd_attach_unmark(&m->att);
	r = ts_cgroup_walk(m->cgroup_root, visit, m);
	if (r) {
		/* Unswept: a partial walk must not look like removed cgroups. */
		tsd_log(LOG_ERR, "walking %s failed: %s", m->cgroup_root, strerror(-r));
		return;
	}
	tsd_attach_sweep(&m->att);
}

static void on_cgroup_added(const char *cgroup, void *data)
{
	struct tsd_manager *m = data;
	size_t n = m->att.n;

	ts_cgroup_walk_from(m->cgroup_root, cgroup, visit, m);
	if (m->att.n != n)
		notify_status(m, "");
}

static void on_cgroup_removed(const char *cgroup, void *data)
{
	struct tsd_manager *m = data;
	size_t n = m->att.n;

	tsd_attach_cgroup_gone(&m->att, cgroup);
	if (m->att.n != n)
		notify_status(m, "");
}

static void on_cgroup_events_lost(void *data)
{
	reconcile_all(data);
}

static const struct tsd_cgwatch_ops cgwatch_ops = {
	.added = on_cgroup_added,
	.removed = on_cgroup_removed,
	.lost = on_cgroup_events_lost,
};

/* ---- the periodic status and the log of what was applied ---- */

static int on_status_timer(sd_event_source *s, uint64_t usec, void *data)
{
	struct tsd_manager *m = data;

	(void)usec;
	notify_status(m, "");
	sd_event_source_set_time_relative(s, m->config.stats_interval_s * USEC_PER_SEC);
	return 0;
}

static int arm_status_timer(struct tsd_manager *m)
{
	uint64_t interval = m->config.stats_interval_s * USEC_PER_SEC;
	int r;

	if (!m->status_timer) {
		r = sd_event_add_time_relative(m->event, &m->status_timer, CLOCK_MONOTONIC,
					       interval ? interval : USEC_PER_SEC,
					       USEC_PER_SEC / 10, on_status_timer, m);
		if (r < 0)
			return r;
	}
	if (!interval)
		return sd_event_source_set_enabled(m->status_timer, SD_EVENT_OFF);
	r = sd_event_source_set_time_relative(m->status_timer, interval);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(m->status_timer, SD_EVENT_ON);
}

static void log_applied(struct tsd_manager *m)
{
	for (size_t i = 0; i < m->config.npolicies; i++) {
		const struct tsd_policy *pol = &m->config.policies[i];

		if (!pol->enabled)
			tsd_log(LOG_INFO, "policy %s is disabled", pol->name);
	}
	for (size_t i = 0; i < m->progs.n; i++) {
		const struct tsd_prog *p = &m->progs.v[i];
		char desc[256];

		ts_policy_describe(&p->policy, desc, sizeof(desc));
		tsd_event(LOG_INFO, TSD_MID_POLICY_APPLIED,
			  &(struct tsd_fields){.policy = p->name,
					       .config_file = m->config_path,
					       .config_line = p->line},
			  "policy %s applied to cgroups '/%s': %s", p->name, p->cgroup, desc);
	}
}

/* ---- reload and stop ---- */

static uint64_t now_usec(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * All or nothing: a config that does not parse, or whose programs do not
 * load, leaves the running policies in place.  Live spliced connections never
 * notice either way; new connections see the new programs.
 */
static void reload(struct tsd_manager *m)
{
	struct tsd_progs progs, old;
	struct tsd_config cfg;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading %s",
		   (unsigned long long)now_usec(CLOCK_MONOTONIC), m->config_path);
	if (read_config(m->config_path, &cfg))
		goto rejected;
	if (tsd_progs_build(&cfg, m->config_path, &m->progs, m->prefix_fd, &progs)) {
		tsd_config_free(&cfg);
		goto rejected;
	}
	old = m->progs;
	m->progs = progs;
	tsd_config_free(&m->config);
	m->config = cfg;
	tsd_log_set_level(cfg.log_level);
	reconcile_all(m);
	tsd_progs_free(&old); /* no link runs them any more */
	tsd_kmod_apply_params(&m->config);
	m->reload_rejected = false;
	log_applied(m);
	arm_status_timer(m);
	tsd_log(LOG_INFO, "configuration reloaded: %zu policies, %zu cgroups attached", m->progs.n,
		m->att.n);
	notify_status(m, "READY=1\n");
	return;
rejected:
	m->reload_rejected = true;
	tsd_event(LOG_ERR, TSD_MID_CONFIG_REJECTED,
		  &(struct tsd_fields){.config_file = m->config_path},
		  "%s rejected: keeping the running configuration (%zu policies)", m->config_path,
		  m->progs.n);
	notify_status(m, "READY=1\n");
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *data)
{
	(void)s;
	(void)si;
	reload(data);
	return 0;
}

/* A stop detaches (new connections stay plain TCP); a crash leaves the pins. */
static int on_terminate(sd_event_source *s, const struct signalfd_siginfo *si, void *data)
{
	struct tsd_manager *m = data;
	size_t n = m->att.n;

	(void)si;
	sd_notify(0, "STOPPING=1\nSTATUS=Detaching");
	tsd_attach_detach_all(&m->att);
	tsd_event(LOG_INFO, TSD_MID_STOPPED, NULL,
		  "stopped: %zu cgroups detached, spliced connections keep running", n);
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* ---- life cycle ---- */

int tsd_manager_new(const char *config_path, struct tsd_manager **out)
{
	struct tsd_manager *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->prefix_fd = -1;
	m->config_path = strdup(config_path);
	if (!m->config_path) {
		free(m);
		return -ENOMEM;
	}
	r = read_config(config_path, &m->config);
	if (r) {
		free(m->config_path);
		free(m);
		return r;
	}
	tsd_log_set_level(m->config.log_level);
	*out = m;
	return 0;
}

static int setup_event(struct tsd_manager *m)
{
	int r;

	r = sd_event_default(&m->event);
	if (r < 0)
		return r;
	r = sd_event_add_signal(m->event, NULL, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, on_terminate,
				m);
	if (r >= 0)
		r = sd_event_add_signal(m->event, NULL, SIGINT | SD_EVENT_SIGNAL_PROCMASK,
					on_terminate, m);
	if (r >= 0)
		r = sd_event_add_signal(m->event, NULL, SIGHUP | SD_EVENT_SIGNAL_PROCMASK,
					on_sighup, m);
	if (r >= 0)
		r = sd_event_set_watchdog(m->event, true);
	return r < 0 ? r : 0;
}

int tsd_manager_start(struct tsd_manager *m)
{
	struct tsd_progs none = {0};
	int r;

	r = tsd_kmod_load(&m->config);
	if (r)
		return r;
	r = setup_event(m);
	if (r) {
		tsd_log(LOG_ERR, "setting up the event loop failed: %s", strerror(-r));
		return r;
	}
	r = ts_cgroup_root(m->cgroup_root, sizeof(m->cgroup_root));
	if (r) {
		tsd_log(LOG_ERR, "no cgroup2 file system is mounted: %s", strerror(-r));
		return r;
	}
	m->prefix_fd = tsd_prefix_map_create();
	if (m->prefix_fd < 0) {
		r = m->prefix_fd;
		tsd_log(LOG_ERR, "creating the local prefix map failed: %s", strerror(-r));
		return r;
	}
	/* Local prefixes are in place before any program can look them up. */
	r = tsd_netwatch_new(m->event, m->prefix_fd, &m->nw);
	if (r) {
		tsd_log(LOG_ERR, "watching links, addresses and routes failed: %s", strerror(-r));
		return r;
	}
	r = tsd_progs_build(&m->config, m->config_path, &none, m->prefix_fd, &m->progs);
	if (r)
		return r;
	r = tsd_attach_adopt(&m->att);
	if (r)
		tsd_log(LOG_WARNING, "reading the pins of a previous run failed: %s", strerror(-r));
	r = tsd_cgwatch_new(m->event, m->cgroup_root, &cgwatch_ops, m, &m->cgw);
	if (r) {
		tsd_log(LOG_ERR, "watching %s failed: %s", m->cgroup_root, strerror(-r));
		return r;
	}
	reconcile_all(m);
	log_applied(m);
	r = arm_status_timer(m);
	if (r < 0)
		return r;
	tsd_event(LOG_INFO, TSD_MID_STARTED, &(struct tsd_fields){.config_file = m->config_path},
		  "started: %zu policies, %zu cgroups attached, %zu local prefixes", m->progs.n,
		  m->att.n, tsd_netwatch_count(m->nw));
	notify_status(m, "READY=1\n");
	return 0;
}

int tsd_manager_run(struct tsd_manager *m)
{
	return sd_event_loop(m->event);
}

void tsd_manager_free(struct tsd_manager *m)
{
	if (!m)
		return;
	tsd_cgwatch_free(m->cgw);
	tsd_netwatch_free(m->nw);
	sd_event_source_disable_unref(m->status_timer);
	tsd_progs_free(&m->progs);
	tsd_attach_free(&m->att);
	tsd_config_free(&m->config);
	if (m->prefix_fd >= 0)
		close(m->prefix_fd);
	sd_event_unref(m->event);
	free(m->config_path);
	free(m);
}
