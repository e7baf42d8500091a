//! The `keyplane` binary as a child process on a real socket.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, http, TestStore};

pub const BIN: &str = env!("CARGO_BIN_EXE_keyplane");

/// The binary under test: `KEYPLANE_BIN` when set (scripts/test runs the crash test against
/// the release build that way), else the debug build of this crate.
pub fn bin() -> PathBuf {
    std::env::var_os("KEYPLANE_BIN").map_or_else(|| PathBuf::from(BIN), PathBuf::from)
}

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr_path: PathBuf,
}

impl Server {
    pub fn start(db: &TestStore, bootstrap_key: Option<&str>) -> Self {
        let env: Vec<(&str, String)> = bootstrap_key
            .map(|k| vec![("KEYPLANE_BOOTSTRAP_ADMIN_KEY", k.to_owned())])
            .unwrap_or_default();
        let server = Self::spawn(db, &env);
        server.wait_ready();
        server
    }

    /// `keyplane serve` with extra environment, not yet waited for.
    pub fn spawn(db: &TestStore, env: &[(&str, String)]) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let stderr_path = db.dir.path().join(format!("stderr-{}.log", addr.port()));
        let mut cmd = keyplane_cmd(db);
        cmd.arg("serve")
            .env("KEYPLANE_LISTEN", addr.to_string())
            .env("KEYPLANE_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server {
            child: cmd.spawn().unwrap(),
            addr,
            stderr_path,
        }
    }

    /// Waits for `/healthz` over plain HTTP.
    pub fn wait_ready(&self) {
        self.wait_until(|| http(self.addr, "GET", "/healthz", None, None).0 == 200);
    }

    /// Waits until `ready` holds (checked once the port accepts connections).
    pub fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(self.addr).is_ok() && ready() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start: {}", self.stderr());
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// SIGTERM, then wait; returns whether it exited successfully.
    pub fn stop(mut self) -> (bool, String) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.success(), self.stderr());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server ignored SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test must not leave a server behind; after stop() this is a no-op.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `keyplane` pointed at the test database of the backend under test.
pub fn keyplane_cmd(db: &TestStore) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_remove("KEYPLANE_DATABASE_URL")
        .env_remove("KEYPLANE_DATA_DIR")
        .env_remove("KEYPLANE_BOOTSTRAP_ADMIN_KEY")
        .env_remove("KEYPLANE_CONFIG");
    for (k, v) in db.binary_env() {
        cmd.env(k, v);
    }
    cmd
}

/// A fresh, empty, migrated database for the backend under test, with no open connections.
pub async fn empty_db() -> TestStore {
    let db = TestStore::from_env().await;
    db.store.close().await;
    db
}
