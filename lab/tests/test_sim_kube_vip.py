"""kube-vip stand-in: env as each version reads it, client-go leader election, the ARP frame."""

import io
import socket
import struct

import pytest

import test_sim_api_support  # noqa: F401  (puts the repository on sys.path)
from lab.sim import kube_vip, pods

ARP_ENV = {
    "vip_arp": "true", "port": "6443", "vip_interface": "eth0", "vip_cidr": "32",
    "cp_enable": "true", "cp_namespace": "kube-system", "vip_leaderelection": "true",
    "vip_leasename": "custom-lock", "vip_leaseduration": "7", "vip_renewdeadline": "5",
    "vip_retryperiod": "2", "vip_nodename": "cp1", "address": "198.51.100.254",
}


@pytest.mark.parametrize("version, lease_name, node_name", [
    ("v0.6.0", "plndr-cp-lock", "host"),   # vip_leasename arrived in v0.6.1, vip_nodename in v0.8.0
    ("v0.6.4", "custom-lock", "host"),
    ("v0.8.9", "custom-lock", "cp1"),
])
def test_version_decides_which_env_is_read(version, lease_name, node_name):
    settings = kube_vip.parse_settings(ARP_ENV, version, "host")
    assert (settings.lease_name, settings.node_name) == (lease_name, node_name)


def test_vip_cidr_is_ignored_from_v0_9_0():
    env = dict(ARP_ENV, vip_cidr="24")
    assert kube_vip.parse_settings(env, "v0.8.10", "h").prefix_len == 24
    assert kube_vip.parse_settings(env, "v0.9.2", "h").prefix_len == 32
    assert kube_vip.parse_settings(dict(env, vip_subnet="28"), "v0.9.2", "h").prefix_len == 28


@pytest.mark.parametrize("version, expected", [("v0.8.9", (5, 3, 1)), ("v1.0.4", (5, 3, 1)),
                                               ("v1.1.0", (15, 10, 2)), ("v1.2.3", (15, 10, 2))])
def test_lease_defaults_follow_the_version(version, expected):
    env = {k: v for k, v in ARP_ENV.items() if not k.startswith(("vip_lease", "vip_renew", "vip_retry"))}
    s = kube_vip.parse_settings(env, version, "h")
    assert (s.lease_duration, s.renew_deadline, s.retry_period) == expected


def test_address_wins_over_vip_address():
    env = dict(ARP_ENV, vip_address="198.51.100.200")
    assert kube_vip.parse_settings(env, "v0.8.9", "h").address == "198.51.100.254"
    del env["address"]
    assert kube_vip.parse_settings(env, "v0.8.9", "h").address == "198.51.100.200"


@pytest.mark.parametrize("change, message", [
    ({"vip_leaseduration": "five"}, 'strconv.Atoi: parsing "five": invalid syntax'),
    ({"vip_arp": "yes"}, 'strconv.ParseBool: parsing "yes": invalid syntax'),
    ({"address": "", "vip_address": ""}, "no address is specified for kube-vip to expose services on"),
    ({"address": "vip.example"}, "dial tcp: lookup vip.example on 127.0.0.1:53: no such host"),
    ({"vip_cidr": "40"}, "invalid CIDR address: 198.51.100.254/40"),
])
def test_unusable_env_is_an_error(change, message):
    with pytest.raises(kube_vip.SettingsError) as info:
        kube_vip.parse_settings(dict(ARP_ENV, **change), "v0.8.9", "h")
    assert str(info.value) == message


def test_main_crashes_with_a_log_line_on_bad_env(capsys):
    env = dict(ARP_ENV, vip_leaseduration="x", **{pods.IMAGE_ENV: "ghcr.io/kube-vip/kube-vip:v0.8.9"})
    assert kube_vip.main(["manager"], env) == 1
    assert 'level=fatal msg="strconv.Atoi: parsing "x": invalid syntax"' in capsys.readouterr().err


def test_log_format_changes_at_v0_8_10():
    old, new = io.StringIO(), io.StringIO()
    kube_vip.Log((0, 8, 9), old)("info", "hello")
    kube_vip.Log((0, 8, 10), new)("info", "hello")
    assert old.getvalue().startswith('time="') and 'level=info msg="hello"' in old.getvalue()
    assert new.getvalue().startswith("time=") and 'level=INFO msg="hello"' in new.getvalue()


# -- leader election ----------------------------------------------------------------------------

class NotFound(Exception):
    status = 404


class Conflict(Exception):
    status = 409


class Forbidden(Exception):
    status = 403


class LeaseApi:
    """An API server's Lease storage: resourceVersion compare-and-swap, 404, optional 403."""

    def __init__(self):
        self.objects = {}
        self.revision = 0
        self.forbidden = False

    def _store(self, path, obj):
        self.revision += 1
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.revision)}}
        self.objects[path] = obj
        return obj

    def get(self, path):
        if self.forbidden:
            raise Forbidden("forbidden")
        if path not in self.objects:
            raise NotFound(path)
        return self.objects[path]

    def create(self, path, obj):
        full = f"{path}/{obj['metadata']['name']}"
        if full in self.objects:
            raise Conflict("exists")
        return self._store(full, obj)

    def update(self, path, obj):
        if self.objects[path]["metadata"]["resourceVersion"] != obj["metadata"].get("resourceVersion"):
            raise Conflict("the object has been modified")
        return self._store(path, obj)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def elector(api, clock, identity):
    return kube_vip.LeaderElector(api, "kube-system", "plndr-cp-lock", identity, 5,
                                  clock=clock, wallclock=lambda: 1_700_000_000 + clock.now)


def test_first_candidate_creates_the_lease_and_renews_it():
    api, clock = LeaseApi(), Clock()
    cp1 = elector(api, clock, "cp1")
    assert cp1.try_acquire_or_renew() and cp1.is_leader
    lease = api.objects["/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/plndr-cp-lock"]
    assert lease["spec"]["holderIdentity"] == "cp1"
    assert lease["spec"]["leaseDurationSeconds"] == 5
    acquired = lease["spec"]["acquireTime"]
    clock.now += 1
    assert cp1.try_acquire_or_renew()
    spec = api.objects[cp1.path]["spec"]
    assert spec["acquireTime"] == acquired and spec["renewTime"] != acquired
    assert spec["leaseTransitions"] == 0


def test_follower_waits_lease_duration_from_its_own_observation():
    api, clock = LeaseApi(), Clock()
    cp1, cp2 = elector(api, clock, "cp1"), elector(api, clock, "cp2")
    cp1.try_acquire_or_renew()
    assert not cp2.try_acquire_or_renew()
    clock.now += 4.9  # the leader stopped renewing; not yet expired for cp2
    assert not cp2.try_acquire_or_renew()
    clock.now += 0.2
    assert cp2.try_acquire_or_renew() and cp2.is_leader
    assert api.objects[cp2.path]["spec"]["leaseTransitions"] == 1
    # The old leader's next renewal attempt finds it lost the lease.
    assert not cp1.try_acquire_or_renew() and not cp1.is_leader


def test_renewals_keep_followers_out():
    api, clock = LeaseApi(), Clock()
    cp1, cp2 = elector(api, clock, "cp1"), elector(api, clock, "cp2")
    cp1.try_acquire_or_renew()
    for _ in range(10):
        clock.now += 1
        assert cp1.try_acquire_or_renew()
        assert not cp2.try_acquire_or_renew()


def test_release_lets_a_follower_take_over_at_once():
    api, clock = LeaseApi(), Clock()
    cp1, cp2 = elector(api, clock, "cp1"), elector(api, clock, "cp2")
    cp1.try_acquire_or_renew()
    assert not cp2.try_acquire_or_renew()
    assert cp1.release()
    assert api.objects[cp1.path]["spec"]["holderIdentity"] == ""
    assert api.objects[cp1.path]["spec"]["leaseDurationSeconds"] == 1
    assert cp2.try_acquire_or_renew()


def test_a_write_between_read_and_update_makes_the_update_fail():
    api, clock = LeaseApi(), Clock()
    cp1, cp2 = elector(api, clock, "cp1"), elector(api, clock, "cp2")
    cp1.try_acquire_or_renew()
    cp1.release()
    original_get = api.get

    def racing_get(path):
        lease = original_get(path)
        api.get = original_get
        cp1.try_acquire_or_renew()  # cp1 takes the lease between cp2's read and cp2's write
        return lease

    api.get = racing_get
    with pytest.raises(Conflict):
        cp2.try_acquire_or_renew()
    assert not cp2.is_leader
    assert api.objects[cp1.path]["spec"]["holderIdentity"] == "cp1"


def test_forbidden_is_raised_to_the_caller_and_never_leads():
    api, clock = LeaseApi(), Clock()
    api.forbidden = True
    cp1 = elector(api, clock, "cp1")
    with pytest.raises(Forbidden):
        cp1.try_acquire_or_renew()
    assert not cp1.is_leader


# -- ARP ------------------------------------------------------------------------------------------

def test_gratuitous_arp_frame_is_a_broadcast_request_for_the_vip():
    mac = bytes.fromhex("021ab000000b")
    frame = kube_vip.gratuitous_arp_frame(mac, "198.51.100.254")
    assert len(frame) == 42
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac
    assert struct.unpack("!H", frame[12:14])[0] == 0x0806
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)
    assert frame[22:28] == mac
    assert frame[28:32] == frame[38:42] == socket.inet_aton("198.51.100.254")


def test_kubernetes_resolves_through_host_aliases_first():
    env = {pods.HOST_ALIASES_ENV: '[{"ip": "127.0.0.1", "hostnames": ["kubernetes"]}]'}
    assert kube_vip.resolve_kubernetes(env) == "127.0.0.1"
