#!/usr/bin/env bash
# Builds the Vagrant box of the vagrant-libvirt Molecule scenario: Debian 12 from debootstrap, on a
# disk that boots by itself (MBR + extlinux, no host path in the box), systemd inside, sshd, and a
# user vagrant that logs in with a key made here. Prints the box file's path on its last line.
#
#   scripts/vagrant-box.sh            build the box unless the cache has it; print its path
#
# Cached like the lab's components: $VIPADM_CACHE_DIR (default ~/.cache/vipadm)/vagrant/, one box per
# key, the key hashing this script (the recipe and its package list), the suite and the public key.
# Built in tmp/ and renamed into place when whole, under a lock per key. Debian's archive moves on
# (point releases, security updates) without changing the key: delete the box to rebuild it.
set -euo pipefail

readonly SUITE=bookworm
# What the VMs need with no registry or mirror reachable: what node_prep's bundle mode would install
# from the node's repositories (containerd, conntrack, iptables, iproute2, ethtool, socat), the CNI
# plugins, and what Ansible and Vagrant use (python3, sudo, sshd).
readonly BOX_PACKAGES=(
  linux-image-amd64 systemd-sysv udev kmod dbus procps openssh-server sudo python3 iproute2
  containerd runc containernetworking-plugins conntrack iptables ethtool socat
)
readonly DISK_SIZE_GIB=20
readonly CACHE_DIR=${VIPADM_CACHE_DIR:-$HOME/.cache/vipadm}/vagrant

die() { echo "vagrant-box: $*" >&2; exit 1; }

[[ $EUID == 0 ]] || die "run as root: debootstrap and the loop device need it."
for program in debootstrap extlinux qemu-img; do
  command -v "$program" >/dev/null || die "$program is missing; run scripts/vagrant-setup.sh first."
done

# The machine's own Debian mirror (from apt's sources), so that no host is written here.
debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [[ -n $uri ]] || uri=$(awk '$1 == "deb" && $3 == "'"$SUITE"'" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [[ -n $uri ]] || die "no Debian mirror found in apt's sources; set VIPADM_DEBIAN_MIRROR to one."
  echo "$uri"
}

mkdir -p "$CACHE_DIR/tmp" "$CACHE_DIR/ssh"
# The scenario's key: made once, kept with the boxes; the box's authorized_keys holds its public half.
[[ -s $CACHE_DIR/ssh/vagrant_ed25519 ]] \
  || ssh-keygen -q -t ed25519 -N '' -C vipadm-vagrant -f "$CACHE_DIR/ssh/vagrant_ed25519"
key=$( { cat "$0"; echo "$SUITE"; cat "$CACHE_DIR/ssh/vagrant_ed25519.pub"; } | sha256sum | cut -c1-12)
readonly BOX=$CACHE_DIR/debian12-$key.box
if [[ -s $BOX ]]; then echo "$BOX"; exit 0; fi

exec 9>"$CACHE_DIR/tmp/debian12-$key.lock"
flock 9
if [[ -s $BOX ]]; then echo "$BOX"; exit 0; fi

started=$SECONDS
work=$(mktemp -d "$CACHE_DIR/tmp/debian12-$key.XXXXXX")
root=$work/root
loop=""
cleanup() {
  mountpoint -q "$root" && umount -R "$root"
  [[ -n $loop ]] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT

# One partition from 1 MiB to the end, marked active for the MBR code; its file system is made on a
# loop device over that range of the file, so no partition device (udev) is needed.
truncate -s "${DISK_SIZE_GIB}G" "$work/disk.raw"
echo 'start=2048, type=83, bootable' | sfdisk -q "$work/disk.raw"
loop=$(losetup --find --show --offset $((2048 * 512)) "$work/disk.raw")
# extlinux reads ext4 without the 64bit feature (needed only above 16 TiB).
mkfs.ext4 -q -O ^64bit -L root "$loop"
uuid=$(blkid -s UUID -o value "$loop")
mkdir "$root"
mount "$loop" "$root"

mirror=${VIPADM_DEBIAN_MIRROR:-$(debian_mirror)}
packages=$(IFS=,; echo "${BOX_PACKAGES[*]}")
debootstrap --variant=minbase --include="$packages" "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (its log is above); check that the Debian mirror $mirror answers."; }
echo "debootstrap: $((SECONDS - started)) s" >&2

kernel=$(cd "$root/boot" && ls vmlinuz-*)
initrd=$(cd "$root/boot" && ls initrd.img-*)
cat >"$root/etc/fstab" <<EOF
UUID=$uuid / ext4 errors=remount-ro 0 1
EOF
echo box >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 box\n' >"$root/etc/hosts"
# eth0 (names from net.ifnames=0, the same in every VM) is Vagrant's management network, by DHCP;
# Vagrant writes the others' files itself (its Debian guest uses systemd-networkd when it is enabled).
cat >"$root/etc/systemd/network/10-eth0.network" <<'EOF'
[Match]
Name=eth0

[Network]
DHCP=ipv4
EOF
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
# Names resolve from /etc/hosts only: there is no DNS server to reach.
ln -sf /dev/null "$root/etc/systemd/system/systemd-resolved.service"
chroot "$root" useradd --create-home --shell /bin/bash vagrant
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"
install -d -m 0700 -o "$(chroot "$root" id -u vagrant)" -g "$(chroot "$root" id -g vagrant)" "$root/home/vagrant/.ssh"
install -m 0600 -o "$(chroot "$root" id -u vagrant)" -g "$(chroot "$root" id -g vagrant)" \
  "$CACHE_DIR/ssh/vagrant_ed25519.pub" "$root/home/vagrant/.ssh/authorized_keys"
# sshd's host keys are made at the first boot, so that no two VMs share them; only an Ed25519 key,
# because an RSA key takes minutes of software-emulated CPU when several VMs boot at once.
rm -f "$root"/etc/ssh/ssh_host_*
echo 'HostKey /etc/ssh/ssh_host_ed25519_key' >"$root/etc/ssh/sshd_config.d/host-key.conf"
cat >"$root/etc/systemd/system/ssh-host-keys.service" <<'EOF'
[Unit]
Description=Make sshd's host key on the first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=multi-user.target
EOF
chroot "$root" systemctl enable ssh-host-keys.service >/dev/null 2>&1
# Each VM gets its own machine-id at first boot (systemd makes one when the file is empty).
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# The serial console shows the boot in libvirt's log; reverse DNS lookups would only time out.
echo 'UseDNS no' >"$root/etc/ssh/sshd_config.d/vagrant.conf"
chroot "$root" apt-get clean

install -d "$root/boot/extlinux"
cat >"$root/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
TIMEOUT 1
LABEL debian
  LINUX /boot/$kernel
  INITRD /boot/$initrd
  APPEND root=UUID=$uuid ro net.ifnames=0 console=tty0 console=ttyS0,115200
EOF
extlinux --install "$root/boot/extlinux" >/dev/null 2>&1
umount "$root"
losetup -d "$loop"
loop=""
dd if=/usr/lib/EXTLINUX/mbr.bin of="$work/disk.raw" bs=440 count=1 conv=notrunc status=none

qemu-img convert -c -O qcow2 "$work/disk.raw" "$work/box.img"
rm "$work/disk.raw"
cat >"$work/metadata.json" <<EOF
{"provider": "libvirt", "format": "qcow2", "virtual_size": $DISK_SIZE_GIB}
EOF
# The box logs in with the scenario's key (kept inside the box, like Vagrant's own insecure key in its
# boxes), never with Vagrant's public insecure key.
install -m 0600 "$CACHE_DIR/ssh/vagrant_ed25519" "$work/vagrant_ed25519"
cat >"$work/Vagrantfile" <<'EOF'
Vagrant.configure("2") do |config|
  config.ssh.username = "vagrant"
  config.ssh.private_key_path = File.join(__dir__, "vagrant_ed25519")
  config.ssh.insert_key = false
  config.vm.synced_folder ".", "/vagrant", disabled: true
end
EOF
tar -C "$work" -cf "$work/box.tar" metadata.json Vagrantfile vagrant_ed25519 box.img
mv "$work/box.tar" "$BOX"
echo "built $BOX: $(du -h "$BOX" | cut -f1) in $((SECONDS - started)) s" >&2
echo "$BOX"
