/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-spliced: keeping the local_prefixes map equal to what "local" means on
 * this host right now.
 *
 * Local is every address of the host (as a host prefix) and the prefix of
 * every main-table route that leaves only through local interfaces: veth,
 * dummy, and bridges whose ports are all such (container bridges).  A bridge
 * with a physical or tap port leads off the host and is not local.
 */
#ifndef TSD_NETWATCH_H
#define TSD_NETWATCH_H

#include <stddef.h>

#include <systemd/sd-event.h>

struct tsd_netwatch;

/* Dump links, addresses and routes, fill map_fd, and follow changes.  0 or -errno. */
int tsd_netwatch_new(sd_event *event, int map_fd, struct tsd_netwatch **out);
void tsd_netwatch_free(struct tsd_netwatch *w);

/* How many prefixes the map holds. */
size_t tsd_netwatch_count(const struct tsd_netwatch *w);

#endif /* TSD_NETWATCH_H */
