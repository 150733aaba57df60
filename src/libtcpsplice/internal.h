/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libtcpsplice's test hook: not part of the library's interface (the shared
 * library does not export it; see libtcpsplice.map).
 */
#ifndef TCPSPLICE_INTERNAL_H
#define TCPSPLICE_INTERNAL_H

/*
 * The device the library opens, TCP_SPLICE_DEVICE unless a unit test points it
 * elsewhere before the first call (tests/unit/c/test_libtcpsplice.c).
 */
extern const char *tcpsplice__device_path __attribute__((visibility("hidden")));

#endif /* TCPSPLICE_INTERNAL_H */
