"""kubeadm's Port-N preflight check on real sockets (no root, loopback of the test's namespace)."""

import socket

from lab.sim.kubeadm.host import listen_fails


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def time_wait_on(port):
    """A connection accepted on ``port`` and closed by the server first: TIME_WAIT on the server side,
    as an API server leaves behind when ``kubeadm reset`` stops it."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # active close: this end goes to TIME_WAIT
    client.recv(1)
    client.close()
    listener.close()


def test_a_listener_on_the_port_fails_the_check():
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        assert listen_fails(port)
    assert not listen_fails(port)


def test_time_wait_left_by_a_stopped_server_does_not_fail_the_check():
    port = free_port()
    time_wait_on(port)
    # A bind without SO_REUSEADDR would fail here (what the check did before it bound like Go).
    with socket.socket() as naive:
        try:
            naive.bind(("127.0.0.1", port))
            naive_failed = False
        except OSError:
            naive_failed = True
    assert naive_failed
    assert not listen_fails(port)
