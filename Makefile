# SPDX-License-Identifier: GPL-2.0
# tcp-splice: top-level build.  `make help` lists the targets.

PREFIX     ?= /usr
# libtcpsplice: the library and its pkg-config file under LIBDIR (Debian's
# package: /usr/lib/<multiarch>; the rpm: %{_libdir}), the header under INCLUDEDIR.
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BUILD      ?= $(CURDIR)/build
# Kernel release to build the module for; in the test root: both of the matrix.
KVER       ?= $(shell uname -r)
KDIR       ?= /lib/modules/$(KVER)/build
# The release: dkms.conf holds it; debian/changelog and rpm/tcp-splice.spec
# say the same (make check compares them).
PKG_VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)
PKG        := $(BUILD)/pkg

export BUILD

.PHONY: all install install-dkms deb rpm bpf lib daemon cli benchprog tools progs module modules sparse testbed check demo bench clean help \
	style stress libtcpsplice examples install-tools install-libtcpsplice install-libtcpsplice-dev

all: bpf lib daemon cli tools progs benchprog libtcpsplice examples

help:
	@echo 'tcp-splice make targets'
	@echo '  make               user-space parts and the BPF object (into build/)'
	@echo '  make install       daemon, CLI, unit, man pages, config, libtcpsplice (DESTDIR, PREFIX,'
	@echo '                     LIBDIR, INCLUDEDIR); in parts: install-tools, install-libtcpsplice'
	@echo '                     (the shared library) and install-libtcpsplice-dev (header, .a, .so'
	@echo '                     link, libtcpsplice.pc, tcpsplice(3))'
	@echo '  make libtcpsplice  the relay splicing library, into build/libtcpsplice'
	@echo '  make examples      the relays of examples/relay on it, into build/examples'
	@echo '  make module KVER=  the kernel module for kernel KVER (headers of KDIR)'
	@echo '  make install-dkms  module sources and dkms.conf into /usr/src/tcp-splice-$(PKG_VERSION)'
	@echo '  make deb           the .debs into build/pkg/ (dpkg-buildpackage): tcp-splice, tcp-splice-dkms,'
	@echo '                     libtcpsplice0, libtcpsplice-dev'
	@echo '  make rpm           source and binary rpms into build/pkg/ (rpmbuild)'
	@echo '  make testbed       build or reuse the cached Debian trixie test root'
	@echo '  make check         host unit tests and every VM test on both kernels'
	@echo '  make stress        the stress suite long on both kernels (DURATION=10m, e.g. 30m)'
	@echo '  make demo          the packages installed in the test VM: plain TCP vs spliced side by side'
	@echo '  make bench         benchmarks in the test VM on both kernels: build/bench/results.md'
	@echo '                     and charts; BENCH_KERNELS="6.12 7", BENCH_QUICK=1 (fewer sizes),'
	@echo '                     BENCH_SECONDS, BENCH_WARMUP, BENCH_RUNS, BENCH_ONLY (see tests/vm/bench),'
	@echo '                     BENCH_CPU (max,-erms), BENCH_APPEND (guest kernel command line),'
	@echo '                     BENCH_DIR (build/bench; see tests/bench/make-bench)'
	@echo '  make style         checkpatch --strict and clang-format checks'
	@echo '  make sparse KVER=  the module through sparse (C=2) against KVER'
	@echo '  make clean         remove build/'

bpf:
	$(MAKE) -C src/bpf

install: install-tools install-libtcpsplice install-libtcpsplice-dev

install-tools: daemon cli
	install -D -m 755 $(BUILD)/daemon/tcp-spliced $(DESTDIR)$(PREFIX)/sbin/tcp-spliced
	install -D -m 755 $(BUILD)/cli/tcp-splice $(DESTDIR)$(PREFIX)/bin/tcp-splice
	install -D -m 644 systemd/tcp-spliced.service $(DESTDIR)$(PREFIX)/lib/systemd/system/tcp-spliced.service
	install -D -m 644 man/tcp-spliced.8 $(DESTDIR)$(PREFIX)/share/man/man8/tcp-spliced.8
	install -D -m 644 man/tcp-splice.8 $(DESTDIR)$(PREFIX)/share/man/man8/tcp-splice.8
	install -D -m 644 man/tcp-splice.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/tcp-splice.conf.5
	test -e $(DESTDIR)/etc/tcp-splice.conf || install -D -m 644 etc/tcp-splice.conf $(DESTDIR)/etc/tcp-splice.conf

# libtcpsplice's run-time part (what programs linked with it need), and the
# rest, for building programs with it.
include src/libtcpsplice/version.mk
install-libtcpsplice: libtcpsplice
	install -D -m 644 $(BUILD)/libtcpsplice/libtcpsplice.so.$(LIBVERSION) \
		$(DESTDIR)$(LIBDIR)/libtcpsplice.so.$(LIBVERSION)
	ln -sf libtcpsplice.so.$(LIBVERSION) $(DESTDIR)$(LIBDIR)/libtcpsplice.so.$(SOVERSION)
	if [ -z "$(DESTDIR)" ]; then ldconfig || true; fi

install-libtcpsplice-dev: libtcpsplice
	install -D -m 644 src/libtcpsplice/tcpsplice.h $(DESTDIR)$(INCLUDEDIR)/tcpsplice.h
	install -D -m 644 $(BUILD)/libtcpsplice/libtcpsplice.a $(DESTDIR)$(LIBDIR)/libtcpsplice.a
	ln -sf libtcpsplice.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libtcpsplice.so
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(LIBVERSION)|' src/libtcpsplice/libtcpsplice.pc.in \
		>$(DESTDIR)$(LIBDIR)/pkgconfig/libtcpsplice.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/libtcpsplice.pc
	install -D -m 644 man/tcpsplice.3 $(DESTDIR)$(PREFIX)/share/man/man3/tcpsplice.3
	install -m 644 man/tcpunsplice.3 man/tcpsplice_moved.3 $(DESTDIR)$(PREFIX)/share/man/man3/

# The DKMS source tree: what dkms.conf's build needs and nothing else.
install-dkms:
	install -d $(DESTDIR)$(PREFIX)/src/tcp-splice-$(PKG_VERSION)
	install -m 644 dkms.conf src/module/Kbuild src/module/*.c src/module/*.h \
		$(DESTDIR)$(PREFIX)/src/tcp-splice-$(PKG_VERSION)/
	install -D -m 644 src/module/uapi/tcp_splice_relay.h \
		$(DESTDIR)$(PREFIX)/src/tcp-splice-$(PKG_VERSION)/uapi/tcp_splice_relay.h
	install -m 755 src/module/build-ko src/module/check-btf src/module/vmlinux-btf \
		$(DESTDIR)$(PREFIX)/src/tcp-splice-$(PKG_VERSION)/

# Packages are built from a copy of the tree (without build/ and .git) under
# build/pkg/deb or build/pkg/rpm (never with this tree's BUILD: the package
# builds its own); the packages end up in build/pkg.
pkg_tree = rm -rf $(PKG)/$(1) && mkdir -p $(PKG)/$(1)/tcp-splice-$(PKG_VERSION) && \
	tar -c --exclude=./build --exclude=./.git . | tar -x -C $(PKG)/$(1)/tcp-splice-$(PKG_VERSION)

# The source package too (from the clean tree), so that lintian sees debian/.
deb:
	@$(call pkg_tree,deb)
	cd $(PKG)/deb && dpkg-source -b tcp-splice-$(PKG_VERSION)
	cd $(PKG)/deb/tcp-splice-$(PKG_VERSION) && env -u BUILD dpkg-buildpackage -us -uc -b
	@rm -f $(PKG)/*.deb $(PKG)/*.dsc && mv $(PKG)/deb/*.deb $(PKG)/deb/*.dsc $(PKG)/deb/*.tar.* \
		$(PKG)/deb/*.changes $(PKG)/deb/*.buildinfo $(PKG)/
	@ls $(PKG)/*.deb

# rpmbuild on Debian cannot see the build dependencies (they are in dpkg's
# database, not rpm's): --nodeps skips only that check.
rpm:
	@$(call pkg_tree,rpm)
	tar -czf $(PKG)/rpm/tcp-splice-$(PKG_VERSION).tar.gz -C $(PKG)/rpm tcp-splice-$(PKG_VERSION)
	env -u BUILD rpmbuild -ba --nodeps --define '_topdir $(PKG)/rpm' --define '_sourcedir $(PKG)/rpm' \
		--define '_srcrpmdir $(PKG)' --define '_rpmdir $(PKG)' \
		--define '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm' \
		rpm/tcp-splice.spec
	@ls $(PKG)/*.rpm

lib:
	$(MAKE) -C src/lib

libtcpsplice:
	$(MAKE) -C src/libtcpsplice

examples: libtcpsplice
	$(MAKE) -C examples/relay

daemon: bpf lib
	$(MAKE) -C src/daemon

cli: lib
	$(MAKE) -C src/cli

tools: bpf
	$(MAKE) -C tests/tools

benchprog: libtcpsplice
	$(MAKE) -C tests/bench

progs:
	$(MAKE) -C tests/vm/progs

# The module is built in a copy under build/module/KVER so that the source tree
# stays clean and several kernels can be built side by side.  src/module/build-ko
# is the build DKMS runs too: plain split BTF against KVER's own BTF (KDIR's
# vmlinux, else /boot/vmlinuz-KVER), then check-btf.
module:
	@test -d $(KDIR) || { echo "no kernel headers at $(KDIR): install linux-headers-$(KVER) or pass KDIR=" >&2; exit 2; }
	@rm -rf $(BUILD)/module/$(KVER) && mkdir -p $(BUILD)/module/$(KVER)
	@cp -r src/module/*.c src/module/*.h src/module/uapi src/module/Kbuild $(BUILD)/module/$(KVER)/
	src/module/build-ko --kdir $(KDIR) $(KVER) $(BUILD)/module/$(KVER)

sparse:
	@rm -rf $(BUILD)/sparse/$(KVER) && mkdir -p $(BUILD)/sparse/$(KVER)
	@cp -r src/module/*.c src/module/*.h src/module/uapi src/module/Kbuild $(BUILD)/sparse/$(KVER)/
	$(MAKE) -s -C $(KDIR) M=$(BUILD)/sparse/$(KVER) C=2 W=1 MODULE_PAHOLE_FLAGS= RESOLVE_BTFIDS_FLAGS= modules

# Every kernel of the matrix installed in the test root.
modules:
	@for k in $$(ls /lib/modules); do $(MAKE) --no-print-directory module KVER=$$k || exit 1; done

testbed:
	tests/vm/build-root

check:
	tests/check

# The stress, fault and hostile-input suite at full size: DURATION of
# randomized stress per kernel, 10 000 open connections, 100 000 of churn.
DURATION ?= 10m
stress: testbed
	tests/vm/chroot make -s all modules
	tests/vm/stress $(DURATION)

# The README's first command, run from the host as root: the packages built in
# the test root and installed into a fresh image as a user would, the service
# enabled with the demo's policy, one boot of DEMO_KERNEL (tests/vm/demo-packages).
DEMO_KERNEL ?= 7
demo: testbed
	@mkdir -p $(BUILD)
	@echo "building user space and the .debs in the test root (log: $(BUILD)/demo-build.log)"
	@tests/vm/chroot make -s all deb >$(BUILD)/demo-build.log 2>&1 || { tail -n 30 $(BUILD)/demo-build.log; exit 1; }
	@ls $(PKG)/tcp-splice_*.deb $(PKG)/tcp-splice-dkms_*.deb | sed 's/^/        /'
	tests/vm/demo-packages --kernel $(DEMO_KERNEL)

# One boot per kernel; the tables and charts are made in the test root (gnuplot).
bench: testbed
	tests/bench/make-bench

style:
	tests/style

clean:
	rm -rf $(BUILD)
