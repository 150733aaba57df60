/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-splice: the maps shared by the sock_ops program and user space.
 *
 * Included by the BPF program (after vmlinux.h) and by user-space C (which
 * gets the __u* types from <linux/types.h>).  Every layout here is ABI between
 * a loaded program and the daemon that writes its maps: append, never reorder.
 */
#ifndef TCP_SPLICE_POLICY_H
#define TCP_SPLICE_POLICY_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define TS_MAX_PORT_RANGES	16
#define TS_MAX_LOCAL_PREFIXES	1024

/* Which addresses a connection may have to be spliced. */
enum ts_scope {
	TS_SCOPE_LOOPBACK = 0,	/* both ends on 127/8, ::1 or ::ffff:127/104 */
	TS_SCOPE_LOCAL = 1,	/* both ends loopback or in local_prefixes */
	TS_SCOPE_ANY = 2,	/* no address test (the kernel still pairs local ends only) */
};

/* Bits of ts_policy.family_mask; 0 admits both. */
#define TS_FAMILY_IPV4		0x1U
#define TS_FAMILY_IPV6		0x2U

/* Inclusive port range, host byte order. */
struct ts_port_range {
	__u16 lo;
	__u16 hi;
};

/* The one entry (key 0) of the "policy" array. */
struct ts_policy {
	__u32 enabled;			/* 0: splice nothing */
	__u32 scope;			/* enum ts_scope */
	__u32 family_mask;		/* TS_FAMILY_*, 0 for both */
	__u32 nports;			/* used entries of ports[]; 0: any port */
	struct ts_port_range ports[TS_MAX_PORT_RANGES];	/* local OR remote port */
};

/*
 * Key of the "local_prefixes" LPM trie.  IPv4 prefixes are stored v4-mapped
 * (::ffff:a.b.c.d, prefixlen 96 + n), so that one trie serves both families.
 */
struct ts_prefix_key {
	__u32 prefixlen;		/* bits of addr that count, 0..128 */
	union {				/* network byte order */
		__u8 addr[16];
		__u32 addr32[4];
	};
};

/* The one entry (key 0) of the per-CPU "stats" array: sum over the CPUs. */
struct ts_stats {
	__u64 calls;		/* established callbacks seen */
	__u64 allowed;		/* ... that the policy admitted */
	__u64 denied;		/* ... that it refused (or policy disabled) */
	__u64 kfunc_ok;		/* bpf_tcp_splice_established() returned 0 */
	__u64 kfunc_err;	/* ... returned an error: the socket stays plain TCP */
};

#endif /* TCP_SPLICE_POLICY_H */
