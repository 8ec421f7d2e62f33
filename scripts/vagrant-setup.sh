#!/usr/bin/env bash
# What the vagrant-libvirt Molecule scenario needs on this machine, from Debian's packages, and
# libvirt's daemons started without systemd (PID 1 here is not systemd, so nothing would start them).
#
#   scripts/vagrant-setup.sh          install what is missing, start virtlogd and libvirtd (idempotent)
#   scripts/vagrant-setup.sh stop     stop the virtlogd and libvirtd this script started (by pidfile)
#
# The VMs must reach nothing but each other and the controller, so libvirt's NAT network `default`
# (defined with autostart by libvirt-daemon-config-network) is removed before libvirtd first reads
# its configuration, and the root namespace's ip_forward must be 0 before and after.
set -euo pipefail

readonly PACKAGES=(
  vagrant vagrant-libvirt                      # Vagrant 2.3 and its libvirt provider, as Debian ships them
  libvirt-daemon-system libvirt-clients        # libvirtd, virtlogd, virsh, the libvirt-qemu user
  qemu-system-x86 qemu-utils                   # the emulator (TCG without KVM) and qemu-img for the box
  dnsmasq-base                                 # DHCP on the isolated network: vagrant-libvirt finds VMs by lease
  debootstrap extlinux syslinux-common fdisk   # the box: Debian 12 root file system, its bootloader, sfdisk
)
readonly RUN_DIR=/run/vipadm-vagrant
readonly VIRTLOGD_PIDFILE=$RUN_DIR/virtlogd.pid
readonly LIBVIRTD_PIDFILE=$RUN_DIR/libvirtd.pid
readonly NO_KVM=$RUN_DIR/no-kvm
readonly QEMU_CONF=$RUN_DIR/qemu.conf
readonly NETWORKS_DIR=/etc/libvirt/qemu/networks

die() { echo "vagrant-setup: $*" >&2; exit 1; }

assert_no_forwarding() {
  local forwarding
  forwarding=$(cat /proc/sys/net/ipv4/ip_forward)
  [[ $forwarding == 0 ]] || die "net.ipv4.ip_forward is $forwarding in the root namespace $1; set it back to 0 (sysctl -w net.ipv4.ip_forward=0) and find what turned it on."
}

# Our daemon is running when its pidfile names a live process of the expected program.
running() {
  local pidfile=$1 program=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ -r /proc/$pid/comm && $(</proc/"$pid"/comm) == "$program" ]]
}

stop_daemon() {
  local pidfile=$1 program=$2 pid
  if running "$pidfile" "$program"; then
    pid=$(<"$pidfile")
    kill "$pid"
    for _ in $(seq 50); do [[ -d /proc/$pid ]] || break; sleep 0.2; done
    [[ ! -d /proc/$pid ]] || die "$program (pid $pid) did not stop within 10 s; look at it and kill it by pid."
    echo "stopped $program (pid $pid)"
  fi
  rm -f "$pidfile"
}

install_packages() {
  local missing=() package
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
  done
  if ((${#missing[@]})); then
    local started=$SECONDS
    # Debian's policy-rc.d here refuses to start services; without it, we keep the daemons down
    # ourselves anyway because the network `default` must go before libvirtd starts.
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    echo "installed ${missing[*]} in $((SECONDS - started)) s"
  fi
}

# The network `default` NATs the VMs to the uplink; it must never run here. Removing its files is
# undefining it while libvirtd is down; when libvirtd is up (started by us earlier), ask it.
remove_default_network() {
  if running "$LIBVIRTD_PIDFILE" libvirtd; then
    if virsh -c qemu:///system net-info default >/dev/null 2>&1; then
      virsh -c qemu:///system net-destroy default >/dev/null 2>&1 || true
      virsh -c qemu:///system net-undefine default >/dev/null
    fi
  else
    rm -f "$NETWORKS_DIR/autostart/default.xml" "$NETWORKS_DIR/default.xml"
  fi
}

# Run a command with only stdin, stdout and stderr open. A daemon otherwise keeps every descriptor its
# caller had, such as the lock of `flock /tmp/vipadm-real-lab.lock make test-vagrant`: libvirtd then held
# the lab lock until `stop`, and every later lab run waited for it.
without_inherited_fds() {
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec "$@"
  )
}

start_daemons() {
  mkdir -p "$RUN_DIR"
  if pgrep -x libvirtd >/dev/null && ! running "$LIBVIRTD_PIDFILE" libvirtd; then
    die "a libvirtd not started by this script is running; stop it (or use it) before running vagrant-setup."
  fi
  running "$VIRTLOGD_PIDFILE" virtlogd || without_inherited_fds virtlogd --daemon --pid-file "$VIRTLOGD_PIDFILE"
  if ! running "$LIBVIRTD_PIDFILE" libvirtd; then
    # The VMs' QEMU processes are libvirtd's children and inherit its niceness: software-emulated
    # VMs keep the CPUs busy, and other work on the machine (timing-sensitive tests) comes first.
    local start_libvirtd=(nice -n "${VIPADM_VAGRANT_NICE:-10}" libvirtd --daemon --pid-file "$LIBVIRTD_PIDFILE")
    if [[ -e /dev/kvm && ${VIPADM_VAGRANT_HIDE_KVM:-1} == 1 ]]; then
      # This machine's /dev/kvm (root only, and stock kernels hang on it) made libvirt's QEMU probe as
      # root see KVM while its check as libvirt-qemu did not: the capabilities cache was stale at every
      # call and re-probed (about 4.5 s each, 80 s per `vagrant up` of one VM). In a mount namespace of
      # its own, libvirtd sees an empty, unreadable file there: no KVM on both counts, the cache holds.
      # Its qemu.conf there turns off the VMs' private /dev, which would try to move that mount into it.
      : >"$NO_KVM"
      chmod 000 "$NO_KVM"
      { cat /etc/libvirt/qemu.conf; echo 'namespaces = []'; } >"$QEMU_CONF"
      # shellcheck disable=SC2016  # $0, $1 and $@ are the inner shell's
      without_inherited_fds unshare --mount --propagation slave sh -c \
        'mount --bind "$0" /dev/kvm && mount --bind "$1" /etc/libvirt/qemu.conf && shift && exec "$@"' \
        "$NO_KVM" "$QEMU_CONF" "${start_libvirtd[@]}"
    else
      without_inherited_fds "${start_libvirtd[@]}"
    fi
    for _ in $(seq 100); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  virsh -c qemu:///system version >/dev/null 2>&1 || die "libvirtd did not answer within 10 s; see /var/log/libvirt/ and run libvirtd in the foreground to read its error."
  echo "virtlogd pid $(<"$VIRTLOGD_PIDFILE"), libvirtd pid $(<"$LIBVIRTD_PIDFILE")"
}

[[ $EUID == 0 ]] || die "run as root: it installs packages and starts libvirtd."
assert_no_forwarding "before setup"
case ${1:-start} in
  start)
    install_packages
    remove_default_network
    start_daemons
    remove_default_network
    ;;
  stop)
    stop_daemon "$LIBVIRTD_PIDFILE" libvirtd
    stop_daemon "$VIRTLOGD_PIDFILE" virtlogd
    ;;
  *) die "unknown action '$1'; use start (the default) or stop." ;;
esac
assert_no_forwarding "after setup"
