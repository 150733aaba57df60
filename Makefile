# SPDX-License-Identifier: GPL-2.0
# tcp-splice: top-level build.  `make help` lists the targets.

PREFIX     ?= /usr
BUILD      ?= $(CURDIR)/build
# Kernel release to build the module for; in the test root: both of the matrix.
KVER       ?= $(shell uname -r)
KDIR       ?= /lib/modules/$(KVER)/build

export BUILD

.PHONY: all install bpf lib daemon cli benchprog tools progs module modules sparse testbed check demo clean help \
	style

all: bpf lib daemon cli tools progs benchprog

help:
	@echo 'tcp-splice make targets'
	@echo '  make               user-space parts and the BPF object (into build/)'
	@echo '  make install       daemon, CLI, unit, man pages, config (DESTDIR, PREFIX)'
	@echo '  make module KVER=  the kernel module for kernel KVER (headers of KDIR)'
	@echo '  make testbed       build or reuse the cached Debian trixie test root'
	@echo '  make check         host unit tests and every VM test on both kernels'
	@echo '  make demo          plain TCP vs spliced vs AF_UNIX side by side in the test VM'
	@echo '  make style         checkpatch --strict and clang-format checks'
	@echo '  make sparse KVER=  the module through sparse (C=2) against KVER'
	@echo '  make clean         remove build/'

bpf:
	$(MAKE) -C src/bpf

install: daemon cli
	install -D -m 755 $(BUILD)/daemon/tcp-spliced $(DESTDIR)$(PREFIX)/sbin/tcp-spliced
	install -D -m 755 $(BUILD)/cli/tcp-splice $(DESTDIR)$(PREFIX)/bin/tcp-splice
	install -D -m 644 systemd/tcp-spliced.service $(DESTDIR)$(PREFIX)/lib/systemd/system/tcp-spliced.service
	install -D -m 644 man/tcp-spliced.8 $(DESTDIR)$(PREFIX)/share/man/man8/tcp-spliced.8
	install -D -m 644 man/tcp-splice.8 $(DESTDIR)$(PREFIX)/share/man/man8/tcp-splice.8
	install -D -m 644 man/tcp-splice.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/tcp-splice.conf.5
	test -e $(DESTDIR)/etc/tcp-splice.conf || install -D -m 644 etc/tcp-splice.conf $(DESTDIR)/etc/tcp-splice.conf

lib:
	$(MAKE) -C src/lib

daemon: bpf lib
	$(MAKE) -C src/daemon

cli: lib
	$(MAKE) -C src/cli

tools: bpf
	$(MAKE) -C tests/tools

benchprog:
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
	@cp src/module/*.c src/module/*.h src/module/Kbuild $(BUILD)/module/$(KVER)/
	src/module/build-ko --kdir $(KDIR) $(KVER) $(BUILD)/module/$(KVER)

sparse:
	@rm -rf $(BUILD)/sparse/$(KVER) && mkdir -p $(BUILD)/sparse/$(KVER)
	@cp src/module/*.c src/module/*.h src/module/Kbuild $(BUILD)/sparse/$(KVER)/
	$(MAKE) -s -C $(KDIR) M=$(BUILD)/sparse/$(KVER) C=2 W=1 MODULE_PAHOLE_FLAGS= RESOLVE_BTFIDS_FLAGS= modules

# Every kernel of the matrix installed in the test root.
modules:
	@for k in $$(ls /lib/modules); do $(MAKE) --no-print-directory module KVER=$$k || exit 1; done

testbed:
	tests/vm/build-root

check:
	tests/check

# Runs the test VM from the host (as root): build in the test root first.
DEMO_KERNEL ?= 7
demo: testbed
	tests/vm/chroot make -s all modules
	tests/vm/run --kernel $(DEMO_KERNEL) -- tests/vm/demo

style:
	tests/style

clean:
	rm -rf $(BUILD)
