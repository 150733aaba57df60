// SPDX-License-Identifier: GPL-2.0
/* tcp-splice: describing a policy (see ts-policy.h). */
#include <stdio.h>

#include "ts-policy.h"

const char *ts_scope_name(unsigned int scope)
{
	switch (scope) {
	case TS_SCOPE_LOOPBACK:
		return "loopback";
	case TS_SCOPE_LOCAL:
		return "local";
	case TS_SCOPE_ANY:
		return "any";
	}
	return "?";
}

const char *ts_family_name(unsigned int family_mask)
{
	if (family_mask == TS_FAMILY_IPV4)
		return "ipv4";
	if (family_mask == TS_FAMILY_IPV6)
		return "ipv6";
	return "ipv4+ipv6";
}

void ts_ports_format(const struct ts_policy *p, char *buf, size_t len)
{
	size_t off = 0;

	if (len)
		buf[0] = '\0';
	if (!p->nports) {
		snprintf(buf, len, "any");
		return;
	}
	for (__u32 i = 0; i < p->nports && i < TS_MAX_PORT_RANGES && off < len; i++) {
		const struct ts_port_range *r = &p->ports[i];
		int n;

		if (r->lo == r->hi)
			n = snprintf(buf + off, len - off, "%s%u", i ? "," : "", r->lo);
		else
			n = snprintf(buf + off, len - off, "%s%u-%u", i ? "," : "", r->lo, r->hi);
		if (n < 0)
			return;
		off += (size_t)n;
	}
}

void ts_policy_describe(const struct ts_policy *p, char *buf, size_t len)
{
	char ports[TS_MAX_PORT_RANGES * 12 + 1];

	ts_ports_format(p, ports, sizeof(ports));
	snprintf(buf, len, "scope %s, %s, ports %s", ts_scope_name(p->scope),
		 ts_family_name(p->family_mask), ports);
}
