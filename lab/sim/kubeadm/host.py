"""Facts about the node kubeadm runs on, behind one object so that tests can replace them."""

import errno
import os
import shutil
import socket
import struct
import subprocess


def listen_fails(port):
    """kubeadm's PortOpenCheck: ``net.Listen("tcp", ":port")``, as Go does it: dual-stack ``[::]``
    when the node has IPv6 (else ``0.0.0.0``) and SO_REUSEADDR, so connections left in TIME_WAIT
    (e.g. after ``kubeadm reset``) do not count; only a socket bound or listening on the port does."""
    for family, address in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 in this kernel: Go listens on 0.0.0.0
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((address, port))
            sock.listen(1)
            return False
        except OSError as exc:
            if family == socket.AF_INET6 and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                continue  # IPv6 disabled in this network namespace: Go falls back to IPv4
            return True
        finally:
            sock.close()
    return False


class Host:
    """The real node: effective user, ports, binaries in PATH, services, network addresses."""

    def is_root(self):
        return os.geteuid() == 0

    def port_in_use(self, port):
        return listen_fails(port)

    def which(self, binary):
        return shutil.which(binary)

    def service_enabled(self, name):
        return self.systemctl("is-enabled", name, quiet=True) == 0

    def systemctl(self, *args, quiet=False):
        try:
            result = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.last_systemctl_error = str(exc)
            return 1
        self.last_systemctl_error = (result.stderr or result.stdout).strip()
        return result.returncode

    def hostname(self):
        return socket.gethostname().lower()

    def default_address(self):
        """The IPv4 address of the interface holding the default route (kubeadm's ChooseHostInterface)."""
        try:
            with open("/proc/net/route", encoding="ascii") as handle:
                rows = [line.split() for line in handle.read().splitlines()[1:]]
        except OSError:
            rows = []
        for row in rows:
            if len(row) > 2 and row[1] == "00000000":
                gateway = socket.inet_ntoa(struct.pack("<L", int(row[2], 16)))
                probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    probe.connect((gateway, 9))  # UDP connect sends nothing; it only picks a source
                    return probe.getsockname()[0]
                except OSError:
                    continue
                finally:
                    probe.close()
        raise OSError("unable to select an IP from default routes.")

    def resolve(self, name):
        return socket.gethostbyname(name)
