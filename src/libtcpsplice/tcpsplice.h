/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libtcpsplice: relay splicing with the tcp_splice kernel module, in the
 * manner of OpenBSD's SO_SPLICE.  What a connected TCP or UDP socket (the
 * source) receives is moved inside the kernel to another connected socket of
 * the same protocol (the drain), one way, until the splice ends; a relay
 * splices twice, once per direction.  See tcpsplice(3).
 *
 * Each call returns 0, or -1 with errno set; ENODEV means that the tcp_splice
 * module is not loaded (there is no /dev/tcp-splice).  The calls are
 * thread-safe.
 */
#ifndef TCPSPLICE_H
#define TCPSPLICE_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Splice @source to @drain (connected sockets of the caller).  The splice ends
 * after @max_bytes bytes moved (0: no limit) with EFBIG, or after
 * @idle_timeout_us microseconds without a byte moved (0: never) with
 * ETIMEDOUT; the error of an ended splice is left on @source
 * (getsockopt(SO_ERROR)).
 */
int tcpsplice(int source, int drain, uint64_t max_bytes, uint64_t idle_timeout_us);

/* End the splice of @source, if it has one; bytes not yet moved stay in it. */
int tcpunsplice(int source);

/*
 * Bytes moved by the current or the last splice of @source into *@bytes, and
 * into *@active whether it is spliced now; either pointer may be NULL.
 */
int tcpsplice_moved(int source, uint64_t *bytes, bool *active);

#ifdef __cplusplus
}
#endif

#endif /* TCPSPLICE_H */
