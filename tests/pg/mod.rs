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
    /// TLS on a TCP port of 127.0.0.1 besides the socket (`start_tls`).
    tcp_port: Option<u16>,
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
        Self::start_with(false)
    }

    /// A cluster that also listens on a free port of 127.0.0.1 with TLS only (a self-signed
    /// certificate for localhost and 127.0.0.1, made with the openssl command that Debian's
    /// postgresql package brings), and no plain TCP.
    pub fn start_tls() -> Cluster {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Cluster {
        let bin = find_bin();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("tweetlab-pg-")
            .tempdir()
            .unwrap();
        let tcp_port = tls.then(|| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        });
        let cluster = Cluster {
            dir,
            bin,
            as_postgres,
            tcp_port,
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
            "local all postgres trust\nlocal all all scram-sha-256\n\
             hostssl all postgres 127.0.0.1/32 trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        if tls {
            cluster.make_certificate("server");
            cluster.make_certificate("other");
        }
        cluster.up();
        cluster
    }

    /// Starts the server (again, after [`Cluster::crash`]), waiting until it takes connections.
    pub fn up(&self) {
        let network = match self.tcp_port {
            Some(port) => format!(
                "-c listen_addresses=127.0.0.1 -p {port} -c ssl=on \
                 -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
            ),
            None => format!("-c listen_addresses='' -p {PORT}"),
        };
        let options = format!(
            "-k {} {network} -c fsync=off -c max_connections=60",
            self.socket().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-o",
                &options,
                "-l",
                self.dir.path().join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// Kills the server as a crash would: SIGKILL to the postmaster and every backend.
    pub fn crash(&self) {
        let pid_file = std::fs::read_to_string(self.data().join("postmaster.pid")).unwrap();
        let pid = pid_file.lines().next().unwrap().trim().to_string();
        let _ = Command::new("pkill").args(["-9", "-P", &pid]).status();
        assert!(Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success());
        // The next start refuses while the old processes still hold the shared memory.
        for _ in 0..100 {
            let alive = Command::new("kill")
                .args(["-0", &pid])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if !alive {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket(&self) -> &Path {
        self.dir.path()
    }

    /// One of PostgreSQL's programs, as the `postgres` user under root.
    fn command(&self, program: &str) -> Command {
        self.as_server_user(self.bin.join(program))
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

    /// A libpq connection line to `dbname` as `user` (no password), over the socket.
    pub fn url(&self, user: &str, dbname: &str) -> String {
        format!(
            "host={} port={} user={user} dbname={dbname}",
            self.socket().display(),
            self.tcp_port.unwrap_or(PORT)
        )
    }

    /// The TCP port (TLS only), for a cluster from `start_tls`.
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port.expect("a cluster started with start_tls")
    }

    /// `NAME.crt` (a copy readable by the tests) of a certificate made by `make_certificate`.
    pub fn certificate(&self, name: &str) -> PathBuf {
        let copy = self.dir.path().join(format!("{name}-copy.crt"));
        std::fs::copy(self.data().join(format!("{name}.crt")), &copy).unwrap();
        copy
    }

    /// A self-signed certificate for localhost and 127.0.0.1 in the data folder.
    fn make_certificate(&self, name: &str) {
        let data = self.data();
        let key = data.join(format!("{name}.key"));
        let crt = data.join(format!("{name}.crt"));
        let out = self
            .as_server_user("openssl")
            .args([
                "req", "-new", "-x509", "-days", "2", "-nodes", "-newkey", "rsa:2048",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .output()
            .expect("the openssl command (Debian's openssl package, which postgresql brings)");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Any program, as the user the server runs as.
    fn as_server_user(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
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
