/* SPDX-License-Identifier: GPL-2.0 */
/* tcp-splice: a struct ts_policy in words, the same in the journal and the CLI. */
#ifndef TS_POLICY_H
#define TS_POLICY_H

#include <stddef.h>

#include "../bpf/tcp_splice_policy.h"

/* "loopback", "local", "any" ("?" for a value this version does not know). */
const char *ts_scope_name(unsigned int scope);
/* "ipv4", "ipv6" or "ipv4+ipv6". */
const char *ts_family_name(unsigned int family_mask);
/* "10000-19999,8080" or "any". */
void ts_ports_format(const struct ts_policy *p, char *buf, size_t len);
/* "scope loopback, ipv4+ipv6, ports 10000-19999". */
void ts_policy_describe(const struct ts_policy *p, char *buf, size_t len);

#endif /* TS_POLICY_H */
