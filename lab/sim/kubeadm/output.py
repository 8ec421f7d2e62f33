"""kubeadm's texts: join commands (TABs, trailing spaces) and the final blocks of init and join."""


def join_command(endpoint, token, ca_hashes, control_plane=False, certificate_key=""):
    """The multi-line join command of showjoincommand.go (first line unindented)."""
    text = f"kubeadm join {endpoint} --token {token} \\\n"
    for ca_hash in ca_hashes:
        text += f"\t--discovery-token-ca-cert-hash {ca_hash} "
    if control_plane:
        text += "\\\n\t--control-plane "
        if certificate_key:
            text += f"--certificate-key {certificate_key}"
    return text


def one_line(command):
    """``token create --print-join-command``: the same template without ``\\``+newline and TABs."""
    return command.replace("\\\n", "").replace("\t", "")


def init_success(endpoint, token, ca_hashes, has_endpoint, certificate_key, upload_certs):
    lines = [
        "",
        "Your Kubernetes control-plane has initialized successfully!",
        "",
        "To start using your cluster, you need to run the following as a regular user:",
        "",
        "  mkdir -p $HOME/.kube",
        "  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config",
        "  sudo chown $(id -u):$(id -g) $HOME/.kube/config",
        "",
        "Alternatively, if you are the root user, you can run:",
        "",
        "  export KUBECONFIG=/etc/kubernetes/admin.conf",
        "",
        "You should now deploy a pod network to the cluster.",
        'Run "kubectl apply -f [podnetwork].yaml" with one of the options listed at:',
        "  https://kubernetes.io/docs/concepts/cluster-administration/addons/",
        "",
    ]
    text = "\n".join(lines) + "\n"
    if has_endpoint:
        cp_command = join_command(endpoint, token, ca_hashes, True, certificate_key if upload_certs else "")
        if upload_certs:
            text += ("You can now join any number of the control-plane node running the following command "
                     "on each as root:\n\n")
            text += f"  {cp_command}\n\n"
            text += ("Please note that the certificate-key gives access to cluster sensitive data, keep it secret!\n"
                     "As a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use\n"
                     '"kubeadm init phase upload-certs --upload-certs" to reload certs afterward.\n\n')
        else:
            text += ("You can now join any number of control-plane nodes by copying certificate authorities\n"
                     "and service account keys on each node and then running the following as root:\n\n")
            text += f"  {cp_command}\n\n"
    text += "Then you can join any number of worker nodes by running the following on each as root:\n\n"
    text += join_command(endpoint, token, ca_hashes) + "\n"
    return text


def worker_join_success(version):
    return (
        "\n"
        "This node has joined the cluster:\n"
        "* Certificate signing request was sent to apiserver and a response was received.\n"
        "* The Kubelet was informed of the new secure connection details.\n"
        "\n"
        "Run 'kubectl get nodes' on the control-plane to see this node join the cluster.\n"
    )


def control_plane_join_success():
    return (
        "\n"
        "This node has joined the cluster and a new control plane instance was created:\n"
        "\n"
        "* Certificate signing request was sent to apiserver and approval was received.\n"
        "* The Kubelet was informed of the new secure connection details.\n"
        "* Control plane label and taint were applied to the new node.\n"
        "* The Kubernetes control plane instances scaled up.\n"
        "* A new etcd member was added to the local/stacked etcd cluster.\n"
        "\n"
        "To start administering your cluster from this node, you need to run the following as a regular user:\n"
        "\n"
        "\tmkdir -p $HOME/.kube\n"
        "\tsudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config\n"
        "\tsudo chown $(id -u):$(id -g) $HOME/.kube/config\n"
        "\n"
        "Run 'kubectl get nodes' to see this node join the cluster.\n"
        "\n"
    )


KUBELET_FAILURE_HELP = (
    "Unfortunately, an error has occurred, likely caused by:\n"
    "\t- The kubelet is not running\n"
    "\t- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups disabled)\n"
    "\n"
    "If you are on a systemd-powered system, you can try to troubleshoot the error with the following commands:\n"
    "\t- 'systemctl status kubelet'\n"
    "\t- 'journalctl -xeu kubelet'\n"
)


def legacy_wait_failure_help(error, cri_socket):
    """The ≤1.30 help text printed when wait-control-plane times out."""
    return (
        "\nUnfortunately, an error has occurred:\n"
        f"\t{error}\n"
        "\n"
        "This error is likely caused by:\n"
        "\t- The kubelet is not running\n"
        "\t- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups disabled)\n"
        "\n"
        "If you are on a systemd-powered system, you can try to troubleshoot the error with the following commands:\n"
        "\t- 'systemctl status kubelet'\n"
        "\t- 'journalctl -xeu kubelet'\n"
        "\n"
        "Additionally, a control plane component may have crashed or exited when started by the container runtime.\n"
        "To troubleshoot, list all containers using your preferred container runtimes CLI.\n"
        "Here is one example how you may list all running Kubernetes containers by using crictl:\n"
        f"\t- 'crictl --runtime-endpoint {cri_socket} ps -a | grep kube | grep -v pause'\n"
        "\tOnce you have found the failing container, you can inspect its logs with:\n"
        f"\t- 'crictl --runtime-endpoint {cri_socket} logs CONTAINERID'\n"
    )


def control_plane_failure_help(cri_socket):
    return (
        "A control plane component may have crashed or exited when started by the container runtime.\n"
        "To troubleshoot, list all containers using your preferred container runtimes CLI.\n"
        "Here is one example how you may list all running Kubernetes containers by using crictl:\n"
        f"\t- 'crictl --runtime-endpoint {cri_socket} ps -a | grep kube | grep -v pause'\n"
        "\tOnce you have found the failing container, you can inspect its logs with:\n"
        f"\t- 'crictl --runtime-endpoint {cri_socket} logs CONTAINERID'\n"
    )
