#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install everything kiln's build, tests, benchmarks and the KVM box need, from Debian's archive.
# Fast no-op when all packages are present.
set -euo pipefail
pkgs=(build-essential meson ninja-build pkg-config libcmocka-dev liburing-dev python3 python3-pytest
      qemu-system-x86 qemu-utils busybox-static acpica-tools cpio lz4 xz-utils zstd gzip kmod strace
      util-linux fdisk grub-pc-bin grub-efi-amd64-bin dosfstools mtools ovmf binutils e2fsprogs clang
      libclang-rt-14-dev fio libslirp-dev libglib2.0-dev
      iperf3 iproute2 ethtool libjansson-dev libmicrohttpd-dev curl zlib1g-dev libseccomp-dev libgnutls28-dev
      gnutls-bin memtest86+ ovmf)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
lists=/var/lib/apt/lists
if [ -z "$(find "$lists" -maxdepth 1 -name '*Packages*' -mmin -360 2>/dev/null | head -n1)" ]; then
	apt-get update -q >/dev/null
fi
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
