"""The workflow on SLURM and without GPUs.

Dry runs: `--resources gpu=0` runs every training job on the CPU (always); profiles/slurm turns
the training rules' GPU requests into SLURM GPU requests (marked ``slurm``; needs the
``cluster`` extra).

A real cluster (marked ``slurm``; skipped unless SRDA_TEST_SLURM=1, which ``make test-slurm``
sets, or the local cluster is up): a one-node cluster on this machine (scripts/slurm_local.sh),
the smoke preset for one dataset submitted through profiles/slurm by
snakemake-executor-plugin-slurm, and the same run locally; Table I must agree. The fixture
starts the daemons when they are down (root only) and stops those it started.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import snakemake_failure

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCRIPT = REPO / "scripts" / "slurm_local.sh"
DATASET = "adni-mri"
SMOKE = ["preset=smoke", f"run_datasets=[{DATASET}]"]
# What the measurements asked for on a cluster without accounting: squeue for the job
# states, no account, and a first status check after 2 s instead of 40 s.
SLURM_FLAGS = [
    "--slurm-no-account",
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
]


def _cluster_up() -> bool:
    if not SCRIPT.exists() or shutil.which("sinfo") is None:
        return False
    return subprocess.run([str(SCRIPT), "status"], capture_output=True).returncode == 0


needs_cluster = pytest.mark.skipif(
    os.environ.get("SRDA_TEST_SLURM") != "1" and not _cluster_up(),
    reason="needs SRDA_TEST_SLURM=1 (make test-slurm) or the local SLURM cluster up",
)


@pytest.fixture(scope="module")
def cluster():
    """SLURM_CONF of the local cluster; started here (and stopped afterwards) if it was down."""
    started = False
    if not _cluster_up():
        if shutil.which("slurmctld") is None:
            pytest.fail("SLURM is not installed: run `scripts/slurm_local.sh install` (root)")
        if os.geteuid() != 0:
            pytest.fail("starting the local SLURM cluster needs root")
        t0 = time.perf_counter()
        subprocess.run([str(SCRIPT), "start"], check=True)
        print(f"\nlocal SLURM cluster up in {time.perf_counter() - t0:.1f} s")
        started = True
    conf = subprocess.run([str(SCRIPT), "env"], capture_output=True, text=True, check=True)
    yield conf.stdout.strip().split("=", 1)[1]
    if started:
        subprocess.run([str(SCRIPT), "stop"], check=True)


def _copy_workflow(dest: Path) -> Path:
    """A snapshot of the workflow, so both runs see the same rules (and .snakemake/ is ours)."""
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, dest / name)
    for name in ("workflow", "envs", "profiles", "results/paper"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, dest / name)
    return dest


def _snakemake(work: Path, args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "snakemake"), *args], cwd=work, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        logs = "\n".join(
            f"--- {p}\n{p.read_text()[-3000:]}"
            for p in sorted((work / ".snakemake" / "slurm_logs").rglob("*.log"))
        )
        raise AssertionError(f"{snakemake_failure(work, args, proc.stdout, proc.stderr)}\n{logs}")
    return seconds


def _profile_threads(work: Path) -> list[str]:
    """The profile's set-threads as command-line values, for the local run."""
    profile = yaml.safe_load((work / "profiles" / "slurm" / "config.yaml").read_text())
    return [f"{rule}={n}" for rule, n in (profile.get("set-threads") or {}).items()]


def _runs(results: Path) -> dict[str, dict]:
    return {
        p.parent.parent.name: json.loads(p.read_text())
        for p in sorted((results / DATASET).glob("x*/sr/*/seed*/run.json"))
    }


def _gres_of(job_id: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, env=env
    ).stdout
    match = re.search(r"TresPerJob=(\S+)", out)
    return match.group(1) if match else ""


def _dry_run_jobs(work: Path, args: list[str]) -> dict[str, list[str]]:
    """Rule name -> the `resources:` line of each of its jobs, from a dry run."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [str(BIN / "snakemake"), "-n", "-p", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs: dict[str, list[str]] = {}
    rule = None
    for line in proc.stdout.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            rule = m.group(1)
        elif rule and line.strip().startswith("resources:"):
            jobs.setdefault(rule, []).append(line.strip())
        elif rule and "--gpus" in line:
            jobs.setdefault(f"{rule} command", []).append(line)
    return jobs


def _gpus(lines: list[str]) -> list[str]:
    return [m.group(1) for line in lines for m in [re.search(r"--gpus (\d+)", line)] if m]


def test_no_gpus_resource_runs_every_training_job_on_cpu(tmp_path):
    work = _copy_workflow(tmp_path)
    config = ["--config", *SMOKE, "gpus_per_job=1", "results_dir=results"]
    asked = _dry_run_jobs(work, ["--cores", "2", *config])
    assert set(_gpus(asked["run_method command"])) == {"1"}
    # Snakemake caps a job's resources at the global limit: gpu=0 gives --gpus 0 (CPU).
    capped = _dry_run_jobs(work, ["--cores", "2", "--resources", "gpu=0", *config])
    assert set(_gpus(capped["run_method command"])) == {"0"}
    assert len(capped["run_method command"]) == len(asked["run_method command"]) > 1
    assert set(_gpus(capped["diagnose_sr command"])) == {"0"}  # the smoke preset diagnoses


@pytest.mark.slurm
@pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="snakemake-executor-plugin-slurm not installed (pip install -e '.[cluster]')",
)
def test_slurm_profile_asks_gpus_for_training_and_memory_for_every_job(tmp_path):
    work = _copy_workflow(tmp_path)
    jobs = _dry_run_jobs(
        work,
        ["--workflow-profile", "profiles/slurm", *SLURM_FLAGS, "--config", *SMOKE]
        + ["results_dir=results"],
    )
    training = jobs["run_method"]
    # One GPU per learned method's job (gpu=1 becomes sbatch --gpus=1), none for bicubic.
    assert sum("gpu=1" in line for line in training) == len(training) - 1
    assert sum("gpu=0" in line for line in training) == 1
    assert set(_gpus(jobs["run_method command"])) == {"0", "1"}
    for rule, lines in jobs.items():
        if not rule.endswith("command") and rule != "all":
            assert all("runtime=" in line and "mem_mb=" in line for line in lines), rule


@needs_cluster
@pytest.mark.slurm
def test_smoke_preset_through_slurm_equals_a_local_run(cluster, tmp_path):
    work = _copy_workflow(tmp_path)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "SLURM_CONF": cluster}
    env.pop("SLURM_JOB_ID", None)

    slurm_s = _snakemake(
        work,
        ["--workflow-profile", "profiles/slurm", *SLURM_FLAGS]
        + ["--config", *SMOKE, "results_dir=results-slurm"],
        env,
    )
    # Asked now, while SLURM still remembers the jobs (MinJobAge).
    slurm_runs = _runs(work / "results-slurm")
    gres = {m: _gres_of(str(run["slurm_job_id"]), env) for m, run in slurm_runs.items()}
    threads = _profile_threads(work)
    local_s = _snakemake(
        work,
        ["--cores", "2"]
        + (["--set-threads", *threads] if threads else [])
        + ["--config", *SMOKE, "results_dir=results-local"],
        env,
    )
    print(
        f"\nsmoke preset, {DATASET}: through SLURM {slurm_s:.0f} s, locally (--cores 2) "
        f"{local_s:.0f} s"
    )

    # Table I: the same rows; identical values where every job ran with the same threads.
    key = ["dataset", "scale", "method", "seed", "metric"]
    via_slurm = pd.read_csv(work / "results-slurm/tables/table1_psnr_ssim.csv").sort_values(key)
    local = pd.read_csv(work / "results-local/tables/table1_psnr_ssim.csv").sort_values(key)
    assert len(via_slurm) > 0
    assert via_slurm[key].to_numpy().tolist() == local[key].to_numpy().tolist()
    local_runs = _runs(work / "results-local")
    assert slurm_runs.keys() == local_runs.keys() and len(slurm_runs) > 1
    # The local run was given the profile's threads: every job ran with the same ones, so
    # the tables agree to the last digit.
    assert threads, "profiles/slurm sets no set-threads for the local run to copy"
    assert {m: r["threads"] for m, r in slurm_runs.items()} == {
        m: r["threads"] for m, r in local_runs.items()
    }
    np.testing.assert_array_equal(
        via_slurm[["value", "ci_low", "ci_high"]].to_numpy(),
        local[["value", "ci_low", "ci_high"]].to_numpy(),
    )

    # Provenance: every method job says where it ran, in run.json and in its log.
    host = socket.gethostname()
    for method, run in slurm_runs.items():
        assert run["host"] == host and run["device"] == "cpu"
        assert run["slurm_job_id"], f"{method}: no SLURM job id in run.json"
        assert local_runs[method]["slurm_job_id"] is None
        assert local_runs[method]["device"] == "cpu"  # profiles/default, gpus_per_job auto
        log = (work / f"results-slurm/logs/run_method/{DATASET}_x4_{method}_seed0.log").read_text()
        assert f"SLURM job {run['slurm_job_id']}" in log and "device cpu" in log
        # The profile's GPU request reached SLURM (bicubic asks for none), and the job, finding
        # no CUDA behind it, said so and ran on the CPU.
        if method == "bicubic":
            assert "gpu" not in gres[method]
        else:
            assert gres[method].endswith("gpu:1"), f"{method}: TresPerJob={gres[method]!r}"
            assert "CUDA is not available" in log
    provenance = work / "results-slurm" / "provenance.json"  # the default target writes it
    jobs = json.loads(provenance.read_text())["jobs"]
    sr_jobs = [j for j in jobs if j.get("kind") == "sr"]
    assert sr_jobs and all(j["slurm_job_id"] for j in sr_jobs)
