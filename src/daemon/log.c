// SPDX-License-Identifier: GPL-2.0
/* tcp-spliced: journal logging (see log.h). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <systemd/sd-journal.h>

#include "../lib/ts-cleanup.h"
#include "log.h"

#define TSD_IDENT	 "tcp-spliced"
#define MAX_ENTRY_FIELDS 14

static int log_level = LOG_INFO;

void tsd_log_set_level(int level)
{
	log_level = level;
}

struct entry {
	struct iovec iov[MAX_ENTRY_FIELDS];
	char *owned[MAX_ENTRY_FIELDS];
	int n;
};

static void entry_add(struct entry *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void entry_add(struct entry *e, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int len;

	if (e->n == MAX_ENTRY_FIELDS)
		return;
	va_start(ap, fmt);
	len = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	e->owned[e->n] = s;
	e->iov[e->n].iov_base = s;
	e->iov[e->n].iov_len = (size_t)len;
	e->n++;
}

static void entry_free(struct entry *e)
{
	for (int i = 0; i < e->n; i++)
		free(e->owned[i]);
}

static void entry_add_fields(struct entry *e, const struct tsd_fields *f)
{
	if (f->policy)
		entry_add(e, "TS_POLICY=%s", f->policy);
	if (f->cgroup)
		entry_add(e, "TS_CGROUP=/%s", f->cgroup);
	if (f->cgroup_id)
		entry_add(e, "TS_CGROUP_ID=%" PRIu64, f->cgroup_id);
	if (f->config_file)
		entry_add(e, "CONFIG_FILE=%s", f->config_file);
	if (f->config_line > 0)
		entry_add(e, "CONFIG_LINE=%d", f->config_line);
	if (f->error > 0)
		entry_add(e, "ERRNO=%d", f->error);
}

/*
 * Also on stderr when run from a terminal, or when there is no journal (a
 * shell in a container, early boot): sd_journal_sendv() then succeeds
 * without sending anything, so its status does not tell.
 */
static bool stderr_too(void)
{
	static int v = -1;

	if (v < 0)
		v = isatty(STDERR_FILENO) || access("/run/systemd/journal/socket", F_OK) != 0;
	return v;
}

void tsd_log_at(const char *file, int line, const char *func, int prio, const char *message_id,
		const struct tsd_fields *fields, const char *fmt, ...)
{
	struct entry e = {.n = 0};
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	int r;

	if (prio > log_level)
		return;
	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;

	entry_add(&e, "MESSAGE=%s", msg);
	entry_add(&e, "PRIORITY=%d", prio);
	entry_add(&e, "SYSLOG_IDENTIFIER=" TSD_IDENT);
	if (message_id)
		entry_add(&e, "MESSAGE_ID=%s", message_id);
	if (fields)
		entry_add_fields(&e, fields);
	entry_add(&e, "CODE_FILE=%s", file);
	entry_add(&e, "CODE_LINE=%d", line);
	entry_add(&e, "CODE_FUNC=%s", func);
	r = sd_journal_sendv(e.iov, e.n);
	entry_free(&e);
	if (r < 0 || stderr_too())
		fprintf(stderr, TSD_IDENT ": %s\n", msg);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	_cleanup_free_ char *msg = NULL;
	int prio = level == LIBBPF_WARN ? LOG_WARNING : LOG_DEBUG;
	size_t len;

	if (prio > log_level || vasprintf(&msg, fmt, ap) < 0)
		return 0;
	len = strlen(msg);
	while (len && msg[len - 1] == '\n')
		msg[--len] = '\0';
	tsd_log(prio, "%s", msg);
	return 0;
}

void tsd_log_setup_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
