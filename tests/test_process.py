"""The process helpers: glibc hugepage tunables and the re-exec of the command line."""

from __future__ import annotations

from jaxnets import process


def test_with_hugepages_keeps_other_tunables():
    env = process.with_hugepages(
        {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0:glibc.malloc.arena_max=2"}
    )
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert process.hugepages_enabled(env) and not process.hugepages_enabled({})
    assert process.with_hugepages({})["GLIBC_TUNABLES"] == process.HUGEPAGE_TUNABLE


def test_transparent_hugepage_mode(tmp_path):
    path = tmp_path / "enabled"
    path.write_text("always [madvise] never\n")
    assert process.transparent_hugepage_mode(str(path)) == "madvise"
    assert process.transparent_hugepage_mode(str(tmp_path / "missing")) is None


def test_reexec_only_when_needed(monkeypatch):
    calls = []
    monkeypatch.setattr(process.os, "execve", lambda *a: calls.append(a))
    monkeypatch.setattr(process, "transparent_hugepage_mode", lambda: "madvise")
    monkeypatch.setattr(process.sys, "platform", "linux")
    monkeypatch.setenv("GLIBC_TUNABLES", process.HUGEPAGE_TUNABLE)
    process.reexec_with_hugepages(["-m", "jaxnets"])
    assert calls == []
    monkeypatch.setenv("GLIBC_TUNABLES", "")
    monkeypatch.setenv("JAXNETS_NO_HUGEPAGES", "1")
    process.reexec_with_hugepages(["-m", "jaxnets"])
    assert calls == []
    monkeypatch.delenv("JAXNETS_NO_HUGEPAGES")
    process.reexec_with_hugepages(["-m", "jaxnets", "train"])
    ((exe, argv, env),) = calls
    assert argv[1:] == ["-m", "jaxnets", "train"]
    assert env["GLIBC_TUNABLES"] == process.HUGEPAGE_TUNABLE
