# -*- coding: utf-8 -*-
"""The verify role with real ansible-playbook, about 3 s per case.

etcd: the check names the difference between etcd's members and the control planes (reliability finding
R2: it used to fail with uri's "OK (365 bytes)"); the role's etcd_members.yml on a member list given as data.

Nodes: each node of the play reads its own Node through the VIP with the cluster CA and its own kubelet
credential. The role's nodes.yml runs against an HTTPS server on 127.0.0.1 (the VIP) that authenticates
client certificates of the cluster CA and authorizes like the Node authorizer of Kubernetes 1.32+
(AuthorizeNodeWithSelectors): a node may read its own Node, by name, and nothing else. Listing the Nodes with
a kubelet credential, what the role did before, is refused with the API server's 403."""

import http.server
import json
import os
import ssl
import subprocess
import sys
import threading

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "unit", "fixtures", "kubeadm"))

import harness as h  # noqa: E402  (certificates)

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def run(tmp_path, member_names):
    members = [{"ID": str(1000 + i), "name": name, "peerURLs": ["https://198.51.100.%d:2380" % (11 + i)]}
               for i, name in enumerate(member_names)]
    play = {"name": "etcd members", "hosts": "control_plane", "gather_facts": False,
            "vars": {"verify_etcd": {"status": 200, "json": {"members": members}}, "preflight_init_host": "cp1"},
            "tasks": [{"ansible.builtin.import_role": {"name": "vipadm.kubeadm.verify", "tasks_from": "etcd_members"}}]}
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    inventory = {"control_plane": {"hosts": {
        name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
               "preflight_node": {"hostname": "node-" + name}} for name in ("cp1", "cp2", "cp3")}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)


def test_members_equal_to_the_control_planes_pass(tmp_path):
    result = run(tmp_path, ["node-cp3", "node-cp1", "node-cp2"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("members, missing, extra", [
    (["node-cp1", "node-cp2"], "node-cp3", None),
    (["node-cp1", "node-cp2", "node-cp3", "old-cp4"], None, "old-cp4"),
    (["node-cp1", "node-cp2", ""], "node-cp3", "(a member that has not started)"),
])
def test_a_difference_names_the_missing_and_the_extra_members(tmp_path, members, missing, extra):
    result = run(tmp_path, members)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "are not the control planes (node-cp1, node-cp2, node-cp3)" in output, output
    if missing:
        assert "not an etcd member: %s;" % missing in output, output
    else:
        assert "not an etcd member:" not in output, output
    if extra:
        assert "a member but no control plane of the inventory: %s;" % extra in output, output
    else:
        assert "no control plane of the inventory:" not in output, output


NODES = ("cp1", "cp2", "cp3", "worker1")  # inventory names; each registers as node-<name>


class _NodeApi(http.server.BaseHTTPRequestHandler):
    """GET /api/v1/nodes[/<name>] as the API server answers a kubelet credential (system:node:<name>)."""

    def do_GET(self):
        peer = self.connection.getpeercert() or {}
        common_name = dict(item[0] for item in peer.get("subject", ())).get("commonName", "")
        self.server.requests.append((common_name, self.path))
        if not common_name.startswith("system:node:"):
            return self.answer(401, status("Unauthorized", 401, "Unauthorized"))
        node = common_name[len("system:node:"):]
        if self.path == "/api/v1/nodes":
            return self.answer(403, status("Forbidden", 403, (
                'nodes is forbidden: User "%s" cannot list resource "nodes" in API group "" at the cluster scope: '
                "node '%s' cannot read all nodes, only its own Node object" % (common_name, node))))
        name = self.path.rpartition("/")[2]
        if not self.path.startswith("/api/v1/nodes/") or "/" in self.path[len("/api/v1/nodes/"):]:
            return self.answer(404, status("NotFound", 404, "the server could not find the requested resource"))
        if name != node:
            return self.answer(403, status("Forbidden", 403, (
                'nodes "%s" is forbidden: User "%s" cannot get resource "nodes" in API group "" at the cluster '
                "scope: node '%s' cannot read '%s', only its own Node object" % (name, common_name, node, name))))
        if name not in self.server.registered:
            return self.answer(404, status("NotFound", 404, 'nodes "%s" not found' % name))
        return self.answer(200, {"kind": "Node", "apiVersion": "v1", "metadata": {"name": name}})

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def status(reason, code, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The cluster CA, the API server's certificate for the VIP (and one of another CA), a kubelet client
    credential (certificate and key in one file, as kubelet-client-current.pem) per node."""
    directory = tmp_path_factory.mktemp("pki")
    ca_pem, ca_key, _ = h.make_ca("kubernetes")
    other_pem, other_key, _ = h.make_ca("another-cluster")
    (directory / "ca.crt").write_text(ca_pem)
    for name in NODES + ("someone-else",):
        cert, key = h.make_server_cert(ca_key, ca_pem, common_name="system:node:node-" + name)
        (directory / ("node-%s.pem" % name)).write_text(cert + key)
    return {"dir": directory, "ca": ca_pem, "serving": h.make_server_cert(ca_key, ca_pem, ip_sans=["127.0.0.1"]),
            "foreign_serving": h.make_server_cert(other_key, other_pem, ip_sans=["127.0.0.1"])}


class NodeApi:
    """The API server behind the VIP (127.0.0.1, a free port), on its own thread."""

    def __init__(self, pki, registered, serving="serving"):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NodeApi)
        self.httpd.registered = set(registered)
        self.httpd.requests = []
        self.httpd.handle_error = lambda *args: None  # refused handshakes are the point of a test
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert, key = pki[serving]
        (pki["dir"] / "serving.pem").write_text(cert + key)
        context.load_cert_chain(str(pki["dir"] / "serving.pem"))
        context.load_verify_locations(cadata=pki["ca"])
        context.verify_mode = ssl.CERT_OPTIONAL
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *args):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def requests(self):
        return sorted(self.httpd.requests)


def run_nodes(tmp_path, pki, api, retries=0, credentials=None, fail_before=()):
    """The role's nodes.yml for cp1-cp3 and worker1 (all on this machine), the VIP being the server above.
    credentials: inventory name -> the node whose credential it presents (default its own); fail_before:
    nodes that fail before the role runs."""
    tasks = [{"name": "A node lost before Verify", "ansible.builtin.fail": {"msg": "lost"},
              "when": "inventory_hostname in %s" % list(fail_before)}] if fail_before else []
    tasks.append({"ansible.builtin.import_role": {"name": "vipadm.kubeadm.verify", "tasks_from": "nodes"}})
    play = {"name": "nodes", "hosts": "all", "gather_facts": False, "tasks": tasks}
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {name: dict(local, preflight_node={"hostname": "node-" + name},
                        credential=str(pki["dir"] / ("node-%s.pem" % (credentials or {}).get(name, name))))
             for name in NODES}
    inventory = {"control_plane": {"hosts": {name: hosts[name] for name in ("cp1", "cp2", "cp3")}},
                 "workers": {"hosts": {"worker1": hosts["worker1"]}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    # extra vars: the role's vars name kubeadm's paths, which this machine does not have
    extra = {"kube_vip_address": "127.0.0.1", "kube_vip_port": api.port, "verify_retries": retries,
             "verify_timeout": 5, "verify_cluster_ca": str(pki["dir"] / "ca.crt"),
             "verify_kubelet_credential": "{{ credential }}"}
    (tmp_path / "extra.yml").write_text(yaml.safe_dump(extra))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), "-e", "@" + str(tmp_path / "extra.yml"),
                           str(tmp_path / "play.yml")],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)


def own_reads(names, times=1):
    return sorted(("system:node:node-" + name, "/api/v1/nodes/node-" + name) for name in names for _ in range(times))


def test_every_node_reads_its_own_node_and_other_nodes_do_not_matter(tmp_path, pki):
    with NodeApi(pki, ["node-" + name for name in NODES] + ["not-in-the-inventory"]) as api:
        result = run_nodes(tmp_path, pki, api)
    assert result.returncode == 0, result.stdout + result.stderr
    # one request per node, by name, with that node's own credential; no list of all the Nodes
    assert api.requests == own_reads(NODES), api.requests


def test_listing_the_nodes_with_a_kubelet_credential_is_forbidden(pki):
    """The server refuses what the role did before (GET /api/v1/nodes with the init host's credential)."""
    context = ssl.create_default_context(cadata=pki["ca"])
    context.load_cert_chain(str(pki["dir"] / "node-cp1.pem"))
    with NodeApi(pki, ["node-" + name for name in NODES]) as api:
        import urllib.error
        import urllib.request
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen("https://127.0.0.1:%d/api/v1/nodes" % api.port, context=context, timeout=5)
    assert err.value.code == 403
    assert "node 'node-cp1' cannot read all nodes, only its own Node object" in err.value.read().decode()


def test_unregistered_nodes_are_named_after_the_retries(tmp_path, pki):
    with NodeApi(pki, ["node-cp1", "node-cp2"]) as api:
        result = run_nodes(tmp_path, pki, api, retries=1)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "The API server (through the VIP) has no Node for node-cp3, node-worker1: check the kubelet on those " \
           "nodes (journalctl -u kubelet), then run site.yml again." in output, output
    assert "Could not read" not in output and "Not checked" not in output, output
    # a registered node asks once; a missing one is asked again (it may register a moment after its join)
    assert api.requests == own_reads(["cp1", "cp2"]) + own_reads(["cp3", "worker1"], times=2), api.requests


def test_a_node_whose_credential_is_refused_is_named_with_the_api_servers_message(tmp_path, pki):
    # worker1 presents the credential of another node (what a hostname that is not the Node name leads to)
    with NodeApi(pki, ["node-" + name for name in NODES]) as api:
        result = run_nodes(tmp_path, pki, api, credentials={"worker1": "someone-else"})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Could not read its own Node through the VIP 127.0.0.1:%d with the cluster CA and its kubelet " \
           "credential: node-worker1 (HTTP 403: nodes \\\"node-worker1\\\" is forbidden: User " \
           "\\\"system:node:node-someone-else\\\" cannot get resource \\\"nodes\\\" in API group \\\"\\\" at the " \
           "cluster scope: node 'node-someone-else' cannot read 'node-worker1', only its own Node object): " \
           "check from that node that the VIP answers" % api.port in output, output
    assert "has no Node for" not in output, output


def test_a_vip_that_answers_with_another_ca_is_named_from_every_node(tmp_path, pki):
    with NodeApi(pki, ["node-" + name for name in NODES], serving="foreign_serving") as api:
        result = run_nodes(tmp_path, pki, api)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Could not read their own Node through the VIP 127.0.0.1:%d with the cluster CA and their kubelet " \
           "credential: node-cp1 (" % api.port in output, output
    for name in NODES:
        assert "node-%s (Request failed: <urlopen error [SSL: CERTIFICATE_VERIFY_FAILED]" % name in output, output
    assert "check from those nodes that the VIP answers, that %s is the cluster CA" % (pki["dir"] / "ca.crt") \
        in output, output
    assert api.requests == [], api.requests


def test_a_node_lost_before_verify_is_named(tmp_path, pki):
    with NodeApi(pki, ["node-" + name for name in NODES]) as api:
        result = run_nodes(tmp_path, pki, api, fail_before=["worker1"])
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Not checked (failed or unreachable earlier in this run): node-worker1." in output, output
    assert api.requests == own_reads(["cp1", "cp2", "cp3"]), api.requests
