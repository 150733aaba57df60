/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * tcp-splice relay splicing: the ioctl interface of /dev/tcp-splice.
 *
 * Splicing moves what a connected source socket receives to a connected drain
 * socket inside the kernel, one way, until it is undone; a relay calls it once
 * per direction.  Semantics follow OpenBSD's SO_SPLICE; libtcpsplice
 * (tcpsplice.h, tcpsplice(3)) wraps these calls.
 */
#ifndef _UAPI_TCP_SPLICE_RELAY_H
#define _UAPI_TCP_SPLICE_RELAY_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define TCP_SPLICE_DEVICE "/dev/tcp-splice"

/*
 * TCP_SPLICE_IOC_SPLICE: splice @source to @drain (file descriptors of the
 * caller), or undo the splice of @source if @drain is -1.
 * @max: bytes to move before the splice ends with EFBIG (0: no limit).
 * @idle_us: the splice ends with ETIMEDOUT after this long without moving a
 *           byte (0: never).
 * @flags, @reserved: must be 0.
 */
struct tcp_splice_relay {
	__s32 source;
	__s32 drain;
	__u64 max;
	__u64 idle_us;
	__u32 flags;
	__u32 reserved;
};

/*
 * TCP_SPLICE_IOC_INFO: about @source (in).  @moved (out): bytes moved by its
 * current or last splice; @flags (out): TCP_SPLICE_INFO_ACTIVE while spliced.
 */
struct tcp_splice_relay_info {
	__s32 source;
	__u32 flags;
	__u64 moved;
};

#define TCP_SPLICE_INFO_ACTIVE	0x1

#define TCP_SPLICE_IOC_MAGIC	0xb7
#define TCP_SPLICE_IOC_SPLICE	_IOW(TCP_SPLICE_IOC_MAGIC, 1, struct tcp_splice_relay)
#define TCP_SPLICE_IOC_INFO	_IOWR(TCP_SPLICE_IOC_MAGIC, 2, struct tcp_splice_relay_info)

#endif
