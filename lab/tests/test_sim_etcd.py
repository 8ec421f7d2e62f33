"""The etcd gateway client against a real Debian etcd 3.4 with TLS client-certificate auth."""

import pytest

from test_sim_api_support import ETCD, EtcdServer
from lab.sim.etcd import Etcd, EtcdError, EtcdUnavailable, _prefix_end

pytestmark = pytest.mark.skipif(not __import__("os").path.exists(ETCD), reason="needs /usr/bin/etcd")


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    server = EtcdServer(tmp_path_factory.mktemp("etcd"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_prefix_end_selects_exactly_the_prefix():
    assert _prefix_end("/registry/a") == b"/registry/b"
    assert _prefix_end(b"a\xff") == b"b"


def test_crud_and_prefix_listing(etcd):
    client = etcd.client()
    rev = client.put("/t/crud/a", b'{"n":1}')
    kv = client.get("/t/crud/a")
    assert kv.value == b'{"n":1}' and kv.mod_revision == rev and kv.version == 1
    client.put("/t/crud/b", "two")
    client.put("/t/crudx", "outside")
    items, store_rev = client.list("/t/crud/")
    assert [i.key for i in items] == [b"/t/crud/a", b"/t/crud/b"]
    assert store_rev >= rev and client.revision() == store_rev
    assert client.delete("/t/crud/a") is True
    assert client.get("/t/crud/a") is None
    assert client.delete("/t/crud/a") is False


def test_create_and_compare_and_swap(etcd):
    client = etcd.client()
    first = client.create("/t/cas", b"v1")
    assert first is not None
    assert client.create("/t/cas", b"again") is None
    second = client.update("/t/cas", b"v2", first)
    assert second > first
    assert client.update("/t/cas", b"stale", first) is None
    assert client.get("/t/cas").value == b"v2"
    assert client.delete("/t/cas", mod_revision=first) is False
    assert client.delete("/t/cas", mod_revision=second) is True


def test_members_and_errors(etcd):
    client = etcd.client()
    members = client.member_list()
    assert len(members) == 1 and members[0]["name"] == "sim" and members[0]["id"] > 0
    added = client.member_add(["http://127.0.0.1:1"], learner=True)
    assert added["member"]["is_learner"] and len(added["members"]) == 2
    with pytest.raises(EtcdError) as err:
        client.member_promote(added["member"]["id"])  # a learner that never started is not in sync
    assert "learner" in err.value.message
    client.member_remove(added["member"]["id"])
    assert [m["name"] for m in client.member_list()] == ["sim"]


def test_client_certificate_is_required(etcd):
    anonymous = Etcd([etcd.endpoint], etcd.ca_file, timeout=2)
    with pytest.raises(EtcdUnavailable):
        anonymous.get("/t/x")
    assert anonymous.health() is False


def test_failover_to_the_next_endpoint(etcd):
    client = Etcd(["https://127.0.0.1:1", etcd.endpoint], etcd.ca_file, etcd.cert_file, etcd.key_file)
    client.put("/t/fo", "x")
    assert client.get("/t/fo").value == b"x"
