//! A throw-away PostgreSQL server for one test binary: Debian's `postgresql` binaries, a data
//! directory and a socket directory in a temp folder, no TCP listener at all (so no port is
//! taken), stopped when the last handle is dropped. Runs initdb and the server as the
//! `postgres` user when the tests run as root, as PostgreSQL refuses root.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
}

const PORT: u16 = 5432;

/// The newest /usr/lib/postgresql/N/bin holding initdb.
fn find_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!(
            "the team tests need a PostgreSQL server: install Debian's `postgresql` package \
             (apt-get install postgresql); no /usr/lib/postgresql/N/bin/initdb was found"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Cluster {
    pub fn start() -> Cluster {
        let bin = find_bin();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("tweetlab-pg-")
            .tempdir()
            .unwrap();
        let cluster = Cluster {
            dir,
            bin,
            as_postgres,
        };
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(cluster.dir.path())
                .status()
                .unwrap()
                .success();
            assert!(
                ok,
                "cannot hand the test cluster's folder to the postgres user"
            );
        }
        cluster.run(
            "initdb",
            &[
                "-D",
                cluster.data().to_str().unwrap(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        // The superuser needs no password over the private socket; every other role does.
        std::fs::write(
            cluster.data().join("pg_hba.conf"),
            "local all postgres trust\nlocal all all scram-sha-256\n",
        )
        .unwrap();
        let options = format!(
            "-k {} -c listen_addresses='' -p {PORT} -c fsync=off -c max_connections=60",
            cluster.socket().display()
        );
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                cluster.data().to_str().unwrap(),
                "-o",
                &options,
                "-l",
                cluster.dir.path().join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket(&self) -> &Path {
        self.dir.path()
    }

    /// One of PostgreSQL's programs, as the `postgres` user under root.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// A libpq connection line to `dbname` as `user` (no password).
    pub fn url(&self, user: &str, dbname: &str) -> String {
        format!(
            "host={} port={PORT} user={user} dbname={dbname}",
            self.socket().display()
        )
    }

    /// A new empty database, owned by the superuser.
    pub fn create_db(&self, name: &str) -> String {
        let mut c =
            postgres::Client::connect(&self.url("postgres", "postgres"), postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        self.url("postgres", name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}
