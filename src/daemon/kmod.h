/* SPDX-License-Identifier: GPL-2.0 */
/* tcp-spliced: loading the tcp_splice module and setting its parameters. */
#ifndef TSD_KMOD_H
#define TSD_KMOD_H

#include "config.h"

/*
 * modprobe the module with cfg's parameters, or, if it is loaded already,
 * write them to sysfs.  0; -ENOPKG if the module is not installed for the
 * running kernel (logged with what to install); another -errno otherwise.
 */
int tsd_kmod_load(const struct tsd_config *cfg);

/* Write cfg's parameters to the loaded module where they differ.  0 or -errno. */
int tsd_kmod_apply_params(const struct tsd_config *cfg);

#endif /* TSD_KMOD_H */
