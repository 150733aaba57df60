# SPDX-License-Identifier: GPL-2.0
# libtcpsplice's versions, read by its Makefile and by the top Makefile's
# install: SOVERSION is the ABI (the soname libtcpsplice.so.$(SOVERSION)),
# bumped only by an incompatible change; LIBVERSION names the file and grows
# with each release that changes the library.
SOVERSION  := 0
LIBVERSION := $(SOVERSION).1.0
