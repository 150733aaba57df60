/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-splice: cleanup attributes, so that every resource has one free path
 * and error returns stay one line (daemon, CLI and library alike).
 */
#ifndef TS_CLEANUP_H
#define TS_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void ts_freep(void *p)
{
	free(*(void **)p);
}

static inline void ts_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void ts_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_free_	 __attribute__((cleanup(ts_freep)))
#define _cleanup_close_	 __attribute__((cleanup(ts_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(ts_fclosep)))

/* Hand a resource over: the cleanup of the variable then does nothing. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) take_ = (p);                                                         \
		(p) = NULL;                                                                        \
		take_;                                                                             \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int take_ = (fd);                                                                  \
		(fd) = -1;                                                                         \
		take_;                                                                             \
	})

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

#endif /* TS_CLEANUP_H */
