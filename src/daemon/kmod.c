// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-spliced: the module is loaded with modprobe, so that it is found where
 * DKMS or a package installed it, with the parameters from the config; when
 * it is already loaded, modprobe ignores parameters, so they go to sysfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/ts-cleanup.h"
#include "kmod.h"
#include "log.h"

#define MODULE_NAME  "tcp_splice"
#define MODULE_SYSFS "/sys/module/" MODULE_NAME
#define PARAM_LEN    32

extern char **environ;

struct param {
	const char *name;
	char value[PARAM_LEN];
};

#define NPARAMS 6

static void params_of(const struct tsd_config *cfg, struct param p[NPARAMS])
{
	p[0].name = "ring_max_kb";
	snprintf(p[0].value, PARAM_LEN, "%u", cfg->ring_max_kb);
	p[1].name = "ring_mem_max_kb";
	snprintf(p[1].value, PARAM_LEN, "%lu", cfg->ring_mem_max_kb);
	p[2].name = "busy_poll_us";
	snprintf(p[2].value, PARAM_LEN, "%u", cfg->busy_poll_us);
	/* As sysfs shows a bool parameter, so that an unchanged one is left. */
	p[3].name = "early_wake";
	snprintf(p[3].value, PARAM_LEN, "%s", cfg->early_wake ? "Y" : "N");
	p[4].name = "early_wake_poll";
	snprintf(p[4].value, PARAM_LEN, "%s", cfg->early_wake_poll ? "Y" : "N");
	p[5].name = "relay_zerocopy";
	snprintf(p[5].value, PARAM_LEN, "%s", cfg->relay_zerocopy ? "Y" : "N");
}

static int run(char *const argv[])
{
	pid_t pid;
	int r, status;

	r = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
	if (r)
		return -r;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int read_param(const char *name, char *buf, size_t len)
{
	char path[128];
	_cleanup_fclose_ FILE *f = NULL;

	snprintf(path, sizeof(path), MODULE_SYSFS "/parameters/%s", name);
	f = fopen(path, "re");
	if (!f || !fgets(buf, (int)len, f))
		return -errno;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int write_param(const char *name, const char *value)
{
	char path[128];
	_cleanup_fclose_ FILE *f = NULL;

	snprintf(path, sizeof(path), MODULE_SYSFS "/parameters/%s", name);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	if (fputs(value, f) < 0 || fflush(f))
		return -errno;
	return 0;
}

int tsd_kmod_apply_params(const struct tsd_config *cfg)
{
	struct param p[NPARAMS];
	int ret = 0;

	params_of(cfg, p);
	for (size_t i = 0; i < ELEMENTSOF(p); i++) {
		char cur[PARAM_LEN];
		int r;

		if (!read_param(p[i].name, cur, sizeof(cur)) && !strcmp(cur, p[i].value))
			continue;
		r = write_param(p[i].name, p[i].value);
		if (r) {
			tsd_event(LOG_ERR, NULL, &(struct tsd_fields){.error = -r},
				  "setting module parameter %s=%s failed: %s", p[i].name,
				  p[i].value, strerror(-r));
			ret = r;
			continue;
		}
		tsd_log(LOG_INFO, "module parameter %s: %s -> %s", p[i].name, cur, p[i].value);
	}
	return ret;
}

static void log_missing(void)
{
	struct utsname u;

	uname(&u);
	tsd_event(LOG_ERR, TSD_MID_MODULE_MISSING, &(struct tsd_fields){.error = ENOENT},
		  "the " MODULE_NAME " kernel module is not installed for kernel %s: install the "
		  "tcp-splice-dkms package, or build it for this kernel with "
		  "'dkms autoinstall -k %s', then 'systemctl restart tcp-spliced'",
		  u.release, u.release);
}

int tsd_kmod_load(const struct tsd_config *cfg)
{
	char args[NPARAMS][PARAM_LEN * 2], shown[NPARAMS * (PARAM_LEN * 2 + 1)] = "";
	char *argv[2 + NPARAMS + 1] = {"modprobe", MODULE_NAME};
	struct param p[NPARAMS];
	size_t len = 0;
	int r;

	if (!access(MODULE_SYSFS "/parameters", F_OK))
		return tsd_kmod_apply_params(cfg);

	/* argv and the message both follow the parameter table; shown never truncates. */
	params_of(cfg, p);
	for (size_t i = 0; i < ELEMENTSOF(p); i++) {
		snprintf(args[i], sizeof(args[i]), "%s=%s", p[i].name, p[i].value);
		argv[2 + i] = args[i];
		len += (size_t)snprintf(shown + len, sizeof(shown) - len, " %s", args[i]);
	}
	r = run(argv);
	if (r < 0) {
		tsd_event(LOG_ERR, NULL, &(struct tsd_fields){.error = -r},
			  "running modprobe failed: %s", strerror(-r));
		return r;
	}
	if (r == 0)
		return 0;
	/* A dry run tells "not installed" from "installed but refused to load". */
	if (run((char *const[]){"modprobe", "--dry-run", "--quiet", MODULE_NAME, NULL}) != 0) {
		log_missing();
		return -ENOPKG;
	}
	tsd_event(LOG_ERR, NULL, &(struct tsd_fields){.error = EINVAL},
		  "modprobe " MODULE_NAME "%s failed (exit status %d): see its message above and "
		  "the kernel log",
		  shown, r);
	return -EINVAL;
}
