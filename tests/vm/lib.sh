# SPDX-License-Identifier: GPL-2.0
# Shared helpers of the test bed scripts (sourced, not run).

TB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TB_CACHE=${TCP_SPLICE_CACHE:-/var/cache/tcp-splice-testbed}
TB_T0=${TB_T0:-$(date +%s)}

tb_say() { printf '[testbed %4ss] %s\n' "$(($(date +%s) - TB_T0))" "$*" >&2; }
tb_die() { printf 'testbed: %s\n' "$*" >&2; exit 2; }


# The mirror is read from the host's apt configuration: no registry host name
# is ever written into the repository.
tb_mirror() {
	local m
	m=$(awk '/^URIs:/ { u = $2 } /^Suites:/ { if ($0 !~ /security/ && u != "") { print u; exit } }' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null)
	[ -n "$m" ] || m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
	[ -n "$m" ] || tb_die "no Debian mirror found in the host's apt sources (/etc/apt/sources.list.d/*.sources)"
	printf '%s\n' "${m%/}"
}

# The cache key covers everything that shapes the root: build-root holds the
# package list and the in-root files.
tb_key() {
	sha256sum <"$TB_TOP/tests/vm/build-root" | cut -c1-12
}

tb_rootdir() { printf '%s/root-%s\n' "$TB_CACHE" "$(tb_key)"; }

tb_need_root() {
	local d
	d=$(tb_rootdir)
	[ -f "$d/complete" ] ||
		tb_die "no test root at $d: run 'make testbed' (or tests/vm/build-root) first"
}

# tb_kver 6.12|7|FULL-VERSION: the installed kernel of the matrix it names.
tb_kver() {
	local want=$1 d v
	d=$(tb_rootdir)
	case "$want" in
	6.12 | 7 | 7.*) ;;
	[0-9]*.*-*) [ -d "$d/root/lib/modules/$want" ] && { echo "$want"; return; } ;;
	*) tb_die "unknown kernel '$want': use --kernel 6.12 or --kernel 7 (see $d/kernels)" ;;
	esac
	v=$(awk -v w="$want" 'index($1, w ".") == 1 { print $1 }' "$d/kernels" | tail -n1)
	[ -n "$v" ] || tb_die "kernel '$want' is not in the test root ($(tr '\n' ' ' <"$d/kernels")): rebuild with 'make testbed'"
	echo "$v"
}

# tb_chroot CMD...: run CMD in the root with /proc, /sys, /dev and the
# repository (at /src) mounted, in a private mount namespace so that nothing
# stays mounted when it exits.  The root itself is not written: /tmp is a tmpfs.
tb_chroot() {
	local d
	d=$(tb_rootdir)/root
	unshare -m --propagation private bash -c '
		set -e
		r=$1; src=$2; shift 2
		mount -t proc proc "$r/proc"
		mount --rbind /sys "$r/sys"
		mount --rbind /dev "$r/dev"
		mount -t tmpfs tmpfs "$r/tmp"
		mkdir -p "$r/src"
		mount --bind "$src" "$r/src"
		exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
	' tb-chroot "$d" "$TB_TOP" "$@"
}
