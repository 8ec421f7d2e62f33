"""kubeadm's control-plane-join/etcd step against an etcd that refuses the way etcd 3.4 refuses.

etcd's strict reconfiguration check answers ``etcdserver: unhealthy cluster`` to a member add until
the member serving the request has been connected to every voting member for 5 s, and a learner can
be promoted only once it is in sync with the leader. kubeadm retries both every 500 ms until its
etcdAPICall timeout, so a join right after another one succeeds without any wait by the caller.
"""

import io

import pytest

from lab.sim import etcd as etcd_mod
from lab.sim.config import SimConfig, Version
from lab.sim.kubeadm import join_cmd
from lab.sim.kubeadm.errors import KubeadmError
from lab.sim.kubeadm.paths import Paths
from lab.sim.kubeadm.runtime import Runtime

CP1_PEER, CP1_CLIENT = "https://198.51.100.11:2380", "https://198.51.100.11:2379"
CP3_ADDRESS = "198.51.100.13"
CP3_PEER, CP3_CLIENT = f"https://{CP3_ADDRESS}:2380", f"https://{CP3_ADDRESS}:2379"
UNHEALTHY = "etcdserver: unhealthy cluster"
NOT_IN_SYNC = "etcdserver: can only promote a learner member which is in sync with leader"


class RefusingEtcd:
    """Members in memory; each refusal list is consumed one error per call, like etcd answering."""

    def __init__(self, add_refusals=0, promote_refusals=0, new_endpoint_down=0):
        self.endpoints = [CP1_CLIENT]
        self.members = [{"id": 0x1, "name": "cp1", "peer_urls": [CP1_PEER], "is_learner": False}]
        self.add_refusals, self.promote_refusals = add_refusals, promote_refusals
        self.new_endpoint_down = new_endpoint_down
        self.calls = []

    def set_endpoints(self, endpoints):
        self.endpoints = list(endpoints)

    def member_list(self, endpoint=None):
        return [dict(m) for m in self.members]

    def member_add(self, peer_urls, learner=False):
        self.calls.append(("add", learner))
        if self.add_refusals:
            self.add_refusals -= 1
            raise etcd_mod.EtcdError(UNHEALTHY, 14, CP1_CLIENT)
        member = {"id": 0xc3, "name": "", "peer_urls": list(peer_urls), "is_learner": learner}
        self.members.append(member)
        return {"member": dict(member), "members": self.member_list()}

    def member_promote(self, member_id):
        self.calls.append(("promote", member_id))
        if self.promote_refusals:
            self.promote_refusals -= 1
            raise etcd_mod.EtcdError(NOT_IN_SYNC, 9, CP1_CLIENT)
        next(m for m in self.members if m["id"] == member_id)["is_learner"] = False

    def status(self, endpoint=None):
        self.calls.append(("status", endpoint))
        if endpoint == CP3_CLIENT and self.new_endpoint_down:
            self.new_endpoint_down -= 1
            raise etcd_mod.EtcdUnavailable("context deadline exceeded", None, endpoint)
        return {"leader": 1, "raft_index": 10, "is_learner": False}


def join(etcd, scale=0.01, learner=True, timeout=120.0):
    out = io.StringIO()
    rt = Runtime(SimConfig(Version.parse("1.32.4"), scale), Paths("/nonexistent"), None, out, io.StringIO())
    written = []
    join_cmd.add_etcd_member(rt, etcd, "cp3", CP3_ADDRESS, learner, timeout, written.append)
    return out.getvalue(), written


def test_a_join_right_after_another_waits_for_etcd_like_kubeadm_and_then_promotes():
    etcd = RefusingEtcd(add_refusals=2, promote_refusals=1)
    out, written = join(etcd, scale=0.05)  # etcdAPICall 2m × 0.05 = 6 s: room for the retries
    assert [c for c in etcd.calls if c[0] == "add"] == [("add", True)] * 3  # retried, every 500 ms
    assert [c for c in etcd.calls if c[0] == "promote"] == [("promote", 0xc3)] * 2
    assert written == [[("cp1", CP1_PEER), ("cp3", CP3_PEER)]]  # the new member under this node's name
    assert etcd.members[-1]["is_learner"] is False
    assert out.splitlines() == [
        "[etcd] Announced new etcd member joining to the existing etcd cluster",
        '[etcd] Creating static Pod manifest for "etcd"',
        "[etcd] Waiting for the new etcd member to join the cluster. This can take up to 40s",
    ]
    # Every endpoint is checked after the promotion, the new member's included.
    statuses = [c[1] for c in etcd.calls if c[0] == "status"]
    assert statuses == [CP1_CLIENT, CP3_CLIENT]
    assert etcd.calls.index(("status", CP1_CLIENT)) > max(i for i, c in enumerate(etcd.calls) if c[0] == "promote")


def test_member_add_refused_until_the_timeout_fails_with_etcds_message():
    etcd = RefusingEtcd(add_refusals=10**6)
    with pytest.raises(etcd_mod.EtcdError, match="^etcdserver: unhealthy cluster$"):
        join(etcd, scale=0.005)  # etcdAPICall 2m × 0.005 = 0.6 s of retries
    assert 2 <= len(etcd.calls) <= 3


def test_a_learner_that_never_catches_up_is_not_promoted_and_the_join_fails():
    etcd = RefusingEtcd(promote_refusals=10**6)
    with pytest.raises(etcd_mod.EtcdError, match="in sync with leader"):
        join(etcd, scale=0.005)
    assert etcd.members[-1]["is_learner"] is True  # left as a learner, as kubeadm leaves it


def test_a_new_member_that_never_answers_times_out_after_the_health_retries():
    etcd = RefusingEtcd(new_endpoint_down=10**6)
    with pytest.raises(KubeadmError, match="^timeout waiting for etcd cluster to be available$"):
        join(etcd, scale=0.001)
    assert len([c for c in etcd.calls if c == ("status", CP3_CLIENT)]) >= join_cmd.ETCD_HEALTHY_CHECK_RETRIES


def test_without_learner_mode_the_member_is_added_as_a_voter_and_not_promoted():
    etcd = RefusingEtcd()
    join(etcd, learner=False)
    assert [c for c in etcd.calls if c[0] in ("add", "promote")] == [("add", False)]


def test_a_member_already_announced_by_an_earlier_attempt_is_not_added_again():
    etcd = RefusingEtcd()
    etcd.members.append({"id": 0xc3, "name": "", "peer_urls": [CP3_PEER], "is_learner": True})
    out, written = join(etcd)
    assert not [c for c in etcd.calls if c[0] == "add"]
    assert written == [[("cp1", CP1_PEER), ("cp3", CP3_PEER)]]
    assert etcd.members[-1]["is_learner"] is False


def test_check_etcd_dials_the_members_not_the_control_plane_nodes():
    # cp2 was reset: its Node (still labelled control-plane) remains, its member is gone; cp4 is a
    # learner still catching up. clientv3's Sync keeps the started voting members' client URLs only.
    etcd = RefusingEtcd()
    etcd.endpoints = [CP1_CLIENT, "https://198.51.100.12:2379"]  # from the control-plane Nodes
    etcd.members = [{"id": 1, "name": "cp1", "peer_urls": [CP1_PEER], "client_urls": [CP1_CLIENT],
                     "is_learner": False},
                    {"id": 4, "name": "cp4", "peer_urls": ["https://198.51.100.14:2380"],
                     "client_urls": ["https://198.51.100.14:2379"], "is_learner": True},
                    {"id": 5, "name": "", "peer_urls": ["https://198.51.100.15:2380"], "client_urls": [],
                     "is_learner": False}]
    join_cmd.sync_endpoints(etcd)
    assert etcd.endpoints == [CP1_CLIENT]
