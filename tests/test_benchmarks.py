"""The MLP benchmark and the dispatch probe run end to end and write what they promise."""

import json
import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks")


def _run(script, tmp_path, *args):
    out = tmp_path / "out.json"
    command = [sys.executable, os.path.join(BENCHMARKS, script), "--out", str(out), *args]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return json.loads(out.read_text())


def _check_timing(result):
    assert 0 < result["min_s"] <= result["median_s"] <= result["max_s"]
    assert result["thread_cpu_median_s"] > 0 and result["context_switches_per_call"] >= 0


def test_bench_mlp_over_processes_reports_the_median_of_their_ratios(tmp_path):
    payload = _run(
        "bench_mlp.py",
        tmp_path,
        *("--configs", "mlp_64_32_10_b32", "--rounds", "2", "--calls", "3"),
        *("--processes", "3"),
    )
    config = payload["configs"]["mlp_64_32_10_b32"]
    ratios = config["ratios_per_process"]
    assert len(ratios) == 3 and config["ratio_jaxnets_over_raw"] == sorted(ratios)[1]
    for run in config["processes"]:
        assert set(run["results"]) == {
            "jaxnets",
            "jaxnets_reading_params",
            "raw_jax",
            "raw_jax_list",
        }
        for result in run["results"].values():
            _check_timing(result)


def test_bench_mlp_rejects_an_unknown_config(tmp_path):
    with pytest.raises(subprocess.CalledProcessError) as info:
        _run("bench_mlp.py", tmp_path, "--configs", "mlp_1_b1")
    assert b"unknown configs ['mlp_1_b1']" in info.value.stderr


def test_probe_dispatch_times_every_variant(tmp_path):
    payload = _run("probe_dispatch.py", tmp_path, "--rounds", "2", "--calls", "3")
    assert payload["ratios_to_raw_jax"]["raw_jax"] == 1.0
    assert {"jaxnets", "flat_no_wrapper", "dicts_with_wrapper"} <= set(payload["results"])
    for result in payload["results"].values():
        _check_timing(result)
