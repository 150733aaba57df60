// SPDX-License-Identifier: GPL-2.0
/*
 * libtcpsplice: the ioctls of /dev/tcp-splice (src/module/uapi/
 * tcp_splice_relay.h) as tcpsplice(), tcpunsplice() and tcpsplice_moved().
 *
 * The device is opened on the first call that needs it and kept open (close on
 * exec) for the life of the process; the ioctls act on the caller's file
 * descriptors, so one descriptor serves every thread, and a child after fork()
 * too.  An open that fails is tried again by the next call: a program started
 * before the module was loaded works once it is.
 */
#define _GNU_SOURCE /* O_CLOEXEC */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../module/uapi/tcp_splice_relay.h"
#include "internal.h"
#include "tcpsplice.h"

const char *tcpsplice__device_path = TCP_SPLICE_DEVICE;

/* The device's descriptor, -1 until an open succeeded. */
static atomic_int device_fd = -1;

/*
 * The device's descriptor, opened on first use; or -1 with errno: ENODEV when
 * there is no such device (the module is not loaded), else open()'s error.
 * Threads racing on the first use each open it; one descriptor wins, the
 * others are closed.
 */
static int device(void)
{
	int fd = atomic_load_explicit(&device_fd, memory_order_acquire);
	int none = -1;

	if (fd >= 0)
		return fd;
	fd = open(tcpsplice__device_path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		/* No node (ENOENT), or a node without its driver (ENXIO, ENODEV). */
		if (errno == ENOENT || errno == ENXIO)
			errno = ENODEV;
		return -1;
	}
	if (!atomic_compare_exchange_strong_explicit(&device_fd, &none, fd, memory_order_acq_rel,
						     memory_order_acquire)) {
		close(fd);
		fd = none;
	}
	return fd;
}

/* One SPLICE ioctl: drain -1 undoes the splice of source. */
static int splice_ioctl(int source, int drain, uint64_t max_bytes, uint64_t idle_timeout_us)
{
	struct tcp_splice_relay r;
	int fd = device();

	if (fd < 0)
		return -1;
	memset(&r, 0, sizeof(r));
	r.source = source;
	r.drain = drain;
	r.max = max_bytes;
	r.idle_us = idle_timeout_us;
	return ioctl(fd, TCP_SPLICE_IOC_SPLICE, &r) < 0 ? -1 : 0;
}

int tcpsplice(int source, int drain, uint64_t max_bytes, uint64_t idle_timeout_us)
{
	/*
	 * A drain of -1 would be the ioctl's unsplice: a drain that is no
	 * descriptor (a failed socket() or accept()) is EBADF here.
	 */
	if (drain < 0) {
		errno = EBADF;
		return -1;
	}
	return splice_ioctl(source, drain, max_bytes, idle_timeout_us);
}

int tcpunsplice(int source)
{
	return splice_ioctl(source, -1, 0, 0);
}

int tcpsplice_moved(int source, uint64_t *bytes, bool *active)
{
	struct tcp_splice_relay_info info;
	int fd = device();

	if (fd < 0)
		return -1;
	memset(&info, 0, sizeof(info));
	info.source = source;
	if (ioctl(fd, TCP_SPLICE_IOC_INFO, &info) < 0)
		return -1;
	if (bytes)
		*bytes = info.moved;
	if (active)
		*active = info.flags & TCP_SPLICE_INFO_ACTIVE;
	return 0;
}
