//! The smoke grid (2 runs × 2 seeds) as a real Slurm job array on a one-node cluster this
//! test starts (Debian's `slurm-wlm` and `munge`: munged, slurmctld, slurmd, with
//! `proctrack/linuxproc` and `task/none`), through `deploy/slurm/grid.sbatch`, compared with
//! the same grid unsharded: byte-identical `predictions.csv`, the same `summary.csv` but for
//! its timings. Also the grid sharded by hand, two shards at once in one folder.
//!
//! Without Slurm the test says it was skipped, unless `IMDB_REQUIRE_SLURM=1` (`.ci/run` sets
//! it): then a Slurm that cannot start fails it with the daemon's own message.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{archive, command, repo, run, xtask};

/// Columns of `summary.csv` that are times, which differ between any two runs.
const TIMINGS: [&str; 3] = ["train_seconds", "seconds_per_epoch", "predict_seconds"];

fn required() -> bool {
    std::env::var("IMDB_REQUIRE_SLURM").as_deref() == Ok("1")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A one-node Slurm cluster in a folder of its own; stopped when dropped.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    /// Starts munged, slurmctld and slurmd, and waits for the node to be idle; the error is
    /// what went wrong, with the daemons' logs.
    fn start(dir: &Path) -> Result<Self, String> {
        let tools = [
            "munged",
            "mungekey",
            "slurmctld",
            "slurmd",
            "sbatch",
            "sinfo",
        ];
        let paths: Vec<PathBuf> = tools
            .iter()
            .map(|t| {
                which(t).ok_or_else(|| format!("{t} is not installed (Debian: slurm-wlm, munge)"))
            })
            .collect::<Result<_, _>>()?;
        let path = |tool: &str| &paths[tools.iter().position(|t| *t == tool).unwrap()];
        for sub in ["state", "spool"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        let status = |cmd: &mut Command, what: &str| -> Result<(), String> {
            let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{what} failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        let key = dir.join("munge.key");
        status(
            Command::new(path("mungekey"))
                .args(["--create", "--keyfile"])
                .arg(&key),
            "mungekey",
        )?;
        let socket = dir.join("munge.sock");
        status(
            Command::new(path("munged"))
                .arg("--force")
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--key-file={}", key.display()))
                .arg(format!("--log-file={}", dir.join("munged.log").display()))
                .arg(format!("--pid-file={}", dir.join("munged.pid").display()))
                .arg(format!("--seed-file={}", dir.join("munged.seed").display())),
            "munged",
        )?;
        let host = String::from_utf8_lossy(
            &Command::new("hostname")
                .arg("-s")
                .output()
                .map_err(|e| e.to_string())?
                .stdout,
        )
        .trim()
        .to_string();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let d = dir.display();
        let conf = dir.join("slurm.conf");
        std::fs::write(
            &conf,
            format!(
                "ClusterName=imdbtest\nSlurmctldHost={host}\nSlurmUser=root\nSlurmdUser=root\n\
                 AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={}\n\
                 ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
                 SchedulerType=sched/backfill\nSelectType=select/cons_tres\n\
                 SelectTypeParameters=CR_Core\nStateSaveLocation={d}/state\n\
                 SlurmdSpoolDir={d}/spool\nSlurmctldPidFile={d}/slurmctld.pid\n\
                 SlurmdPidFile={d}/slurmd.pid\nSlurmctldPort={}\nSlurmdPort={}\n\
                 SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
                 ReturnToService=2\nMpiDefault=none\nJobAcctGatherType=jobacct_gather/none\n\
                 AccountingStorageType=accounting_storage/none\n\
                 NodeName={host} CPUs={cpus} State=UNKNOWN\n\
                 PartitionName=grid Nodes={host} Default=YES MaxTime=INFINITE State=UP \
                 OverSubscribe=YES\n",
                socket.display(),
                free_port(),
                free_port()
            ),
        )
        .map_err(|e| e.to_string())?;
        let cluster = Self {
            dir: dir.to_path_buf(),
            conf,
        };
        status(&mut cluster.slurm(path("slurmctld")), "slurmctld")?;
        status(&mut cluster.slurm(path("slurmd")), "slurmd")?;
        let started = Instant::now();
        loop {
            let out = cluster
                .slurm(path("sinfo"))
                .args(["-h", "-o", "%T"])
                .output()
                .map_err(|e| e.to_string())?;
            if String::from_utf8_lossy(&out.stdout).trim() == "idle" {
                return Ok(cluster);
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "the node never became idle: {}{}\nslurmctld: {}\nslurmd: {}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    cluster.log("slurmctld.log"),
                    cluster.log("slurmd.log")
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A Slurm command of this cluster.
    fn slurm(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(scontrol) = which("scontrol") {
            let _ = self.slurm(&scontrol).arg("shutdown").output();
        }
        for pid in ["slurmd.pid", "slurmctld.pid", "munged.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join(pid)) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}

/// `summary.csv` without its timing columns, row by row.
fn summary_without_timings(exp: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(exp.join("summary.csv")).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    let keep: Vec<usize> = (0..rows[0].len())
        .filter(|&i| !TIMINGS.contains(&rows[0][i]))
        .collect();
    rows.iter()
        .map(|r| keep.iter().map(|&i| r[i].to_string()).collect())
        .collect()
}

/// Every unit's `predictions.csv` equal to the unsharded grid's, and the summary too.
fn check_equal(grid: &Path, reference: &Path) {
    for run in ["lstm", "lstm-unmasked"] {
        for seed in ["seed-7", "seed-8"] {
            let file = |root: &Path| {
                std::fs::read(root.join(run).join(seed).join("predictions.csv"))
                    .unwrap_or_else(|e| panic!("{run}/{seed} in {}: {e}", root.display()))
            };
            assert!(file(grid) == file(reference), "{run}/{seed} differs");
        }
    }
    assert_eq!(
        summary_without_timings(grid),
        summary_without_timings(reference)
    );
}

/// The smoke grid over seeds 7 and 8, into `out`, with `extra` arguments.
fn grid(data: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = command(data);
    cmd.args([
        "experiment",
        "configs/smoke.toml",
        "--seeds",
        "7,8",
        "--out",
    ])
    .arg(out)
    .args(extra);
    cmd
}

#[test]
fn a_sharded_grid_equals_the_unsharded_one_by_hand_and_as_a_slurm_array() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let reference = tmp.path().join("reference");
    run(&mut grid(&data, &reference, &[]));

    // Two shards at once in one folder.
    let together = tmp.path().join("together");
    let shards: Vec<Child> = ["0/2", "1/2"]
        .iter()
        .map(|shard| {
            grid(&data, &together, &["--shard", shard])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for shard in shards {
        let out = shard.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    check_equal(&together.join("smoke"), &reference.join("smoke"));
    // A shard that is not one of the grid's is refused.
    let bad = grid(&data, &together, &["--shard", "2/2"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("I/N"));

    let cluster_dir = tmp.path().join("slurm");
    let cluster = match Cluster::start(&cluster_dir) {
        Ok(cluster) => cluster,
        Err(why) => {
            assert!(
                !required(),
                "IMDB_REQUIRE_SLURM=1 but Slurm did not start: {why}"
            );
            eprintln!("Slurm is not available here ({why}): the job-array part skipped");
            return;
        }
    };
    let sliced = tmp.path().join("slurm-runs");
    let sbatch = which("sbatch").unwrap();
    let out = cluster
        .slurm(&sbatch)
        .current_dir(repo())
        .args(["--wait", "--array=0-1", "--cpus-per-task=1"])
        .arg(format!("--output={}/grid-%A_%a.log", cluster_dir.display()))
        .arg("--export=ALL")
        .env("CONFIG", "configs/smoke.toml")
        .env("OUT", &sliced)
        .env("XTASK", xtask())
        .env("EXTRA_ARGS", "--seeds 7,8")
        .env("IMDB_ARCHIVE", archive())
        .env("IMDB_DATA_DIR", &data)
        .arg(repo().join("deploy/slurm/grid.sbatch"))
        .output()
        .unwrap();
    let logs: Vec<String> = std::fs::read_dir(&cluster_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("grid-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        out.status.success(),
        "sbatch: {}{}\njob logs: {logs:?}\nslurmctld: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        cluster.log("slurmctld.log")
    );
    assert_eq!(logs.len(), 2, "one log per array task: {logs:?}");
    assert!(logs.iter().any(|l| l.contains("shard 0/2")), "{logs:?}");
    assert!(logs.iter().any(|l| l.contains("shard 1/2")), "{logs:?}");
    check_equal(&sliced.join("smoke"), &reference.join("smoke"));
    // `summarize` writes the same summary from the finished runs.
    std::fs::remove_file(sliced.join("smoke/summary.csv")).unwrap();
    run(command(&data)
        .arg("summarize")
        .arg(sliced.join("smoke"))
        .args(["--seeds", "7,8"]));
    check_equal(&sliced.join("smoke"), &reference.join("smoke"));
}
