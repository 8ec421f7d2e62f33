"""The builder's cache and failures, on a tiny Go program posing as a kube-vip source (needs Go,
no network, no root). The real components are built and checked in test_components_real.py."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from lab.components import build, pins

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="needs Go on PATH")

MAKEFILE = 'VERSION := v1.2.3\nLDFLAGS=-ldflags "-s -w -X=main.Version=$(VERSION) -X=main.Build=$(BUILD) -extldflags -static"\n'
MAIN = 'package main\n\nimport "fmt"\n\nvar Version, Build string\n\nfunc main() { fmt.Println(Version, Build) }\n'


def _source(tmp_path, main=MAIN):
    source = tmp_path / "kube-vip-src"
    source.mkdir()
    (source / "go.mod").write_text("module example.org/kubevip\n\ngo 1.22\n")
    (source / "main.go").write_text(main)
    (source / "Makefile").write_text(MAKEFILE)
    return source


@pytest.fixture
def builder(tmp_path, monkeypatch):
    lines = []
    made = build.Builder(cache_dir=tmp_path / "cache", log=lines.append)
    made.lines = lines
    return made


def test_a_built_component_is_cached_and_the_second_run_builds_nothing(tmp_path, monkeypatch, builder):
    monkeypatch.setenv(build.KUBE_VIP_SOURCE_ENV, str(_source(tmp_path)))
    first = builder.kube_vip("v1.2.3")
    assert first.built and (first.path / "build.json").exists()
    out = os.popen(f"{first.binary('kube-vip')}").read().split()
    assert out[0] == "v1.2.3" and out[1].startswith("src-")  # the Makefile's ldflags, filled in
    assert [p.name for p in first.images] == ["kube-vip.tar"]
    started = time.monotonic()
    second = builder.kube_vip("v1.2.3")
    assert time.monotonic() - started < 1.0
    assert not second.built and second.path == first.path
    assert builder.lines[-1].startswith("kube-vip v1.2.3: cached, nothing to build")
    assert not any((builder.cache / "tmp").iterdir())


def test_a_changed_source_is_a_new_build(tmp_path, monkeypatch, builder):
    source = _source(tmp_path)
    monkeypatch.setenv(build.KUBE_VIP_SOURCE_ENV, str(source))
    first = builder.kube_vip("v1.2.3")
    (source / "main.go").write_text(MAIN.replace("Println(", "Println(\"changed\", "))
    second = builder.kube_vip("v1.2.3")
    assert second.built and second.path != first.path


def test_a_half_written_result_is_never_taken_for_a_whole_one(tmp_path, monkeypatch, builder):
    monkeypatch.setenv(build.KUBE_VIP_SOURCE_ENV, str(_source(tmp_path)))
    first = builder.kube_vip("v1.2.3")
    (first.path / "build.json").unlink()  # as if the builder had died before the end
    again = builder.kube_vip("v1.2.3")
    assert again.built


def test_a_go_build_error_shows_the_tail_of_the_compilers_output(tmp_path, monkeypatch, builder):
    monkeypatch.setenv(build.KUBE_VIP_SOURCE_ENV, str(_source(tmp_path, main="package main\n\nfunc main() { undefinedThing() }\n")))
    with pytest.raises(build.BuildError) as error:
        builder.kube_vip("v1.2.3")
    message = str(error.value)
    assert message.startswith("go build of kube-vip v1.2.3 failed (rc 1, full log ")
    assert "undefined: undefinedThing" in message
    assert not any((builder.cache / "tmp").iterdir())  # nothing half-made left behind
    assert not list(builder.cache.glob("kube-vip-*"))


def test_a_missing_kube_vip_source_names_where_it_looked_and_the_variable(tmp_path, monkeypatch, builder):
    monkeypatch.setenv(build.KUBE_VIP_SOURCE_ENV, str(tmp_path / "nowhere"))
    monkeypatch.setattr(build, "SHARED_KUBE_VIP", tmp_path / "shared")
    with pytest.raises(build.BuildError) as error:
        builder.build_pin(kube_vip_tag="v1.2.3")
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message and str(tmp_path / "shared" / "kube-vip-v1.2.3.tar.gz") in message
    assert "set VIPADM_KUBE_VIP_SRC" in message
    assert not builder.cache.exists() or not list(builder.cache.glob("kubernetes-*"))  # refused before building


def test_concurrent_builders_make_one_result(tmp_path, monkeypatch):
    monkeypatch.setenv(build.KUBE_VIP_SOURCE_ENV, str(_source(tmp_path)))
    results, lines = [], []
    builders = [build.Builder(cache_dir=tmp_path / "cache", log=lines.append) for _ in range(3)]
    threads = [threading.Thread(target=lambda b=b: results.append(b.kube_vip("v1.2.3"))) for b in builders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.path for r in results}) == 1
    assert sum(r.built for r in results) == 1
    assert len(list((tmp_path / "cache").glob("kube-vip-*"))) == 1


def test_an_unpinned_version_names_the_pinned_ones(builder):
    with pytest.raises(pins.PinError, match="the lab can build"):
        builder.build_pin("1.20.0")


def test_a_lookup_without_building_finds_the_cache_even_without_the_source(tmp_path, monkeypatch, builder):
    monkeypatch.setenv(build.KUBE_VIP_SOURCE_ENV, str(_source(tmp_path)))
    assert builder.kube_vip("v1.2.3", build=False) is None  # nothing cached: nothing built either
    assert not (builder.cache / "tmp").exists() or not any((builder.cache / "tmp").iterdir())
    made = builder.kube_vip("v1.2.3")
    assert builder.kube_vip("v1.2.3", build=False).path == made.path
    monkeypatch.setenv(build.KUBE_VIP_SOURCE_ENV, str(tmp_path / "nowhere"))  # a clone with the cache only
    monkeypatch.setattr(build, "SHARED_KUBE_VIP", tmp_path / "no-shared")
    assert builder.kube_vip("v1.2.3", build=False).path == made.path
    assert builder.kube_vip("v1.0.4", build=False) is None
    with pytest.raises(build.BuildError, match="no source of kube-vip"):
        builder.kube_vip("v1.2.3")


def test_pins_ready_is_created_once_the_pins_are_built_while_the_rest_still_builds(tmp_path, monkeypatch, capsys):
    """`python -m lab build --all --pins-ready FILE` (scripts/test.sh starts the lab suites on it): the rest of the
    build is held here until FILE exists, so this fails if FILE came only at the end."""
    from lab import __main__ as cli

    ready = tmp_path / "pins-ready"
    order = []

    class Pin:
        def __init__(self, version):
            self.kubernetes_version, self.kube_vip_tag, self.images = version, "v1.2.3", []

    def build_pin(self, version, tag):
        time.sleep(0.2)
        order.append(("pin", version))
        return Pin(version)

    def rest(self, name):
        order.append(("rest", name))
        deadline = time.monotonic() + 10
        while not ready.exists():
            assert time.monotonic() < deadline, "the rest of the build waited for pins-ready in vain"
            time.sleep(0.01)

    monkeypatch.setattr(build.Builder, "build_pin", build_pin)
    monkeypatch.setattr(build.Builder, "kube_vip", rest)
    monkeypatch.setattr(build.Builder, "kubeadm", rest)
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path / "cache"))
    assert cli.main(["build", "--all", "--jobs", "2", "--pins-ready", str(ready)]) == 0
    lab_pins = pins.load()
    assert sorted(name for kind, name in order if kind == "pin") == sorted(lab_pins.lab_versions)
    rest_started = [name for kind, name in order if kind == "rest"]
    assert len(rest_started) == len(lab_pins.kube_vip) + len(lab_pins.kubernetes)
    # the kube-vip tags newest first (two at a time): the upgrade test starts from the one before the default
    assert set(rest_started[:2]) == set(lab_pins.kube_vip[-2:]), rest_started
