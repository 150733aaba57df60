/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-spliced: the manager owns the daemon's state and its event sources:
 * the config, the loaded programs, the attachments, the cgroup and network
 * watchers, and the signal, status and watchdog handling of the service.
 */
#ifndef TSD_MANAGER_H
#define TSD_MANAGER_H

struct tsd_manager;

/* Exit statuses beyond 0/1, so that the unit need not restart into them. */
#define TSD_EXIT_NOT_INSTALLED	5 /* the module is missing (LSB "not installed") */
#define TSD_EXIT_NOT_CONFIGURED 6 /* the config is unusable (LSB "not configured") */

/* Read the config (errors go to the journal).  0 or -errno. */
int tsd_manager_new(const char *config_path, struct tsd_manager **out);
/*
 * Load the module, the programs and the local prefixes, take over the pins
 * of a previous run, attach, and tell systemd READY=1.  0 or -errno
 * (-ENOPKG: the module is not installed).
 */
int tsd_manager_start(struct tsd_manager *m);
/* The event loop, until SIGTERM (0) or a fatal error (-errno). */
int tsd_manager_run(struct tsd_manager *m);
/* Frees the state; attachments stay pinned (a stop detaches before). */
void tsd_manager_free(struct tsd_manager *m);

#endif /* TSD_MANAGER_H */
