"""The Slurm workflow on a real one-node cluster (workflows/slurm/, docs/hpc.md).

A module fixture starts munged, slurmctld and slurmd as root on free ports, with a generated
slurm.conf in a temporary folder, and stops them afterwards. The test submits the participant
array over three simulated participants plus one that cannot be processed, waits for the array
and the dependent group job, and checks every participant's derivatives, the summary of failed
participants, the group tables, and that a rerun of the failed participants selects only those.

Skipped, with the reason, where Slurm cannot start here; set TAUPET_REQUIRE_SLURM=1 (CI) to turn
the skip into a failure. Install the programs with .ci/install-slurm.sh.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SUBMIT = REPO / "workflows" / "slurm" / "submit.sh"
VENV = Path(sys.executable).parent.parent
PROGRAMS = ("munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")
REQUIRED = os.environ.get("TAUPET_REQUIRE_SLURM") == "1"
GOOD = ("001", "002", "003")
BROKEN = "999"  # a participant with a T1w and no PET: its task must fail alone


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"Slurm is required here (TAUPET_REQUIRE_SLURM=1) but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Cluster:
    root: Path
    env: dict

    def run(self, *cmd: str | Path, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(c) for c in cmd], env=self.env, capture_output=True, text=True, check=check
        )

    def wait(self, job_ids: list[str], timeout: float) -> None:
        """Wait until none of the jobs is pending or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queue = self.run("squeue", "-h", "-o", "%F", check=False).stdout.split()
            if not set(queue) & set(job_ids):
                return
            time.sleep(3)
        pytest.fail(f"Slurm jobs {job_ids} still queued after {timeout:.0f} s")

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            for log in sorted(self.root.glob("*.log"))
        )


def _slurm_conf(root: Path, host: str) -> str:
    mem_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.8)
    return f"""\
ClusterName=taupettest
SlurmctldHost={host}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
NodeName={host} CPUs={os.cpu_count()} RealMemory={mem_mb} State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _stop(root: Path, env: dict) -> None:
    """Stop the daemons this fixture started (by their pid files), then remove the folder."""
    subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True, check=False)
    pids = [_pid(root / name) for name in ("slurmctld.pid", "slurmd.pid", "munged.pid")]
    deadline = time.monotonic() + 15
    for pid in pids[:2]:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    missing = [p for p in PROGRAMS if not shutil.which(p)]
    if missing:
        _unavailable(
            f"Slurm/munge programs missing ({', '.join(missing)}); run .ci/install-slurm.sh"
        )
    if os.geteuid() != 0:
        _unavailable("the one-node test cluster runs slurmd and munged as root")
    # A short path: the munge socket path must fit in 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="taupet-slurm-", dir="/tmp"))
    root.chmod(0o700)
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    env = {
        **os.environ,
        "SLURM_CONF": str(root / "slurm.conf"),
        "LOGNAME": os.environ.get("LOGNAME", "root"),
        "NIPYPE_NO_ET": "1",
    }
    try:
        key = root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        subprocess.run(
            ["munged", "--force", f"--key-file={key}", f"--socket={root}/munge.socket",
             f"--pid-file={root}/munged.pid", f"--log-file={root}/munged.log",
             f"--seed-file={root}/munged.seed"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        host = socket.gethostname().split(".")[0]
        (root / "slurm.conf").write_text(_slurm_conf(root, host))
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run(
                [daemon, "-f", str(root / "slurm.conf")], env=env, check=True, timeout=30
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = subprocess.run(
                ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, check=False
            ).stdout
            if "idle" in state:
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the node did not become idle (state: {state.strip()!r})")
    except (subprocess.SubprocessError, OSError, RuntimeError) as error:
        logs = Cluster(root, env).logs()
        _stop(root, env)
        _unavailable(f"Slurm could not start here: {error}\n{logs}")
    yield Cluster(root, env)
    _stop(root, env)


def _check_outputs():
    spec = importlib.util.spec_from_file_location(
        "check_outputs", REPO / "containers" / "check_outputs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check


@pytest.fixture(scope="module")
def submitted(cluster: Cluster, tmp_path_factory) -> dict:
    """Three simulated participants and a broken one, submitted as one array + group job."""
    base = tmp_path_factory.mktemp("slurm-run")
    bids, out = base / "bids", base / "derivatives"
    subprocess.run(
        [sys.executable, "-m", "taupet_bids.simulate.cli", str(bids), "--n-subjects", "3",
         "--seed", "5"],
        check=True, capture_output=True, env=cluster.env,
    )  # fmt: skip
    shutil.copytree(bids / "sub-001" / "anat", bids / f"sub-{BROKEN}" / "anat")
    for t1w in (bids / f"sub-{BROKEN}" / "anat").iterdir():
        t1w.rename(t1w.with_name(t1w.name.replace("sub-001", f"sub-{BROKEN}")))
    start = time.monotonic()
    proc = cluster.run(
        "bash", SUBMIT, bids, out, "--venv", VENV, "--cpus", "1", "--mem", "3G",
        "--time", "00:20:00", "--", "--skip-bids-validation",
    )  # fmt: skip
    array_job = re.search(r"array job: (\d+)", proc.stdout).group(1)
    group_job = re.search(r"group job: (\d+)", proc.stdout).group(1)
    cluster.wait([array_job, group_job], timeout=1200)
    seconds = time.monotonic() - start
    logs = base / "taupet-logs"
    summary = pd.read_csv(logs / "summary.tsv", sep="\t", dtype=str)
    # Kept for docs/hpc.md (cost per participant on the local cluster).
    (REPO / "build").mkdir(exist_ok=True)
    summary.assign(total_seconds=round(seconds)).to_csv(
        REPO / "build" / "slurm-summary.tsv", sep="\t", index=False
    )
    return {"bids": bids, "out": out, "logs": logs, "summary": summary, "proc": proc}


def test_every_good_participant_succeeds_with_valid_derivatives(submitted: dict) -> None:
    summary = submitted["summary"].set_index("participant")
    assert sorted(summary.index) == sorted([*GOOD, BROKEN])
    for sub in GOOD:
        assert summary.loc[sub, "status"] == "ok", submitted["logs"].joinpath(f"sub-{sub}.log")
        log = (submitted["logs"] / f"sub-{sub}.log").read_text()
        assert "exit 0 (ok)" in log
    assert _check_outputs()(submitted["bids"], submitted["out"], list(GOOD)) == []


def test_failed_participant_is_summarised_and_alone(submitted: dict) -> None:
    summary = submitted["summary"].set_index("participant")
    assert summary.loc[BROKEN, "status"] == "failed"
    assert summary.loc[BROKEN, "exit_code"] != "0"
    failed = (submitted["logs"] / "failed_participants.txt").read_text().split()
    assert failed == [BROKEN]
    # Each task had its own work folder.
    work = submitted["out"].parent / "taupet-work"
    assert sorted(p.name for p in work.iterdir()) == [f"sub-{s}" for s in sorted([*GOOD, BROKEN])]


def test_group_job_ran_after_the_array(submitted: dict) -> None:
    status = (submitted["logs"] / "group.status").read_text().strip()
    assert status == "ok", (submitted["logs"] / "group.log").read_text()[-2000:]
    tables = {}
    for table in sorted((submitted["out"] / "group").glob("*.tsv")):
        frame = pd.read_csv(table, sep="\t", dtype=str)
        if "participant_id" in frame:
            tables[table.name] = set(frame["participant_id"])
    assert tables, "the group level wrote no table with a participant_id column"
    for name, participants in tables.items():
        assert participants == {f"sub-{s}" for s in GOOD}, name


def test_rerun_selects_only_failed_participants(cluster: Cluster, submitted: dict) -> None:
    proc = cluster.run(
        "bash", SUBMIT, submitted["bids"], submitted["out"], "--venv", VENV, "--rerun-failed",
        "--dry-run",
    )  # fmt: skip
    assert "participants: 1" in proc.stdout
    listed = sorted(submitted["logs"].glob("participants-2*.txt"))[-1].read_text().split()
    assert listed == [BROKEN]


@pytest.mark.parametrize("plugin", ["SLURM", "SLURMGraph"])
def test_plugin_args_size_each_node_job(plugin: str, monkeypatch, tmp_path: Path) -> None:
    from taupet_bids.config import RunConfig

    monkeypatch.setenv("TAUPET_SBATCH_ARGS", "--partition=short --time=00:30:00")
    config = RunConfig(
        bids_dir=tmp_path, output_dir=tmp_path / "out", analysis_level="participant",
        work_dir=tmp_path / "work", plugin=plugin, nprocs=4, omp_nthreads=2, mem_gb=8,
    )  # fmt: skip
    args = config.plugin_args()
    assert args["sbatch_args"] == "--cpus-per-task=2 --mem=2048M --partition=short --time=00:30:00"
    assert args["template"].startswith("#!/bin/bash\n")
    assert "export NIPYPE_NO_ET=1" in args["template"]
    if plugin == "SLURM":
        assert args["max_jobs"] == 4
    else:
        assert args["dont_resubmit_completed_jobs"] is True
