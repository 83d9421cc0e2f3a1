//! TLS to PostgreSQL: a PostgreSQL cluster of its own, started for this test with `ssl = on`,
//! a self-signed CA, and every non-TLS connection rejected. caja connects with
//! `sslmode=verify-full` and the CA; without TLS, or with another CA, it is refused.

use std::path::Path;
use std::process::Command;

use crate::migrate::caja;

/// A throwaway PostgreSQL cluster that accepts only TLS, dropped with this value.
struct TlsCluster {
    name: String,
    version: String,
    port: u16,
    dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a setup command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TlsCluster {
    fn start() -> Self {
        let version = std::fs::read_dir("/etc/postgresql")
            .expect("a Debian PostgreSQL (pg_createcluster) is required for the TLS test")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .max()
            .expect("a PostgreSQL version");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let name = format!("caja_tls_{port}");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A CA, and a server certificate it signs for localhost.
        run(Command::new("openssl").current_dir(d).args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=caja test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]));
        run(Command::new("openssl").current_dir(d).args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]));
        std::fs::write(
            d.join("san.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        run(Command::new("openssl").current_dir(d).args([
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ]));
        // Another CA, which must not be trusted for this server.
        run(Command::new("openssl").current_dir(d).args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=someone else",
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
        ]));
        run(Command::new("pg_createcluster").args([
            &version,
            &name,
            "-p",
            &port.to_string(),
            "--",
            "--auth=trust",
        ]));
        let cluster = Self {
            name,
            version,
            port,
            dir,
        };
        let conf = Path::new("/etc/postgresql")
            .join(&cluster.version)
            .join(&cluster.name);
        let data = Path::new("/var/lib/postgresql")
            .join(&cluster.version)
            .join(&cluster.name);
        for f in ["server.pem", "server.key"] {
            std::fs::copy(cluster.dir.path().join(f), data.join(f)).unwrap();
            run(Command::new("chown")
                .args(["postgres:postgres"])
                .arg(data.join(f)));
            run(Command::new("chmod").arg("600").arg(data.join(f)));
        }
        let mut settings = std::fs::read_to_string(conf.join("postgresql.conf")).unwrap();
        settings.push_str(
            "\nssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\n\
             listen_addresses = '127.0.0.1'\n",
        );
        std::fs::write(conf.join("postgresql.conf"), settings).unwrap();
        std::fs::write(
            conf.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        run(Command::new("pg_ctlcluster").args([
            "--skip-systemctl-redirect",
            &cluster.version,
            &cluster.name,
            "start",
        ]));
        cluster
    }

    fn url(&self, query: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/postgres?{query}",
            self.port
        )
    }

    fn ca(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster")
            .args(["--stop", &self.version, &self.name])
            .output();
    }
}

#[test]
fn caja_reaches_a_postgres_that_requires_tls_and_verifies_its_certificate() {
    let pg = TlsCluster::start();
    let verified = pg.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        pg.ca("ca.pem")
    ));
    let up = caja(&["migrate", "up", "--no-backup", "--database-url", &verified]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let check = caja(&["check", "--database-url", &verified]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let required = pg.url(&format!("sslmode=require&sslrootcert={}", pg.ca("ca.pem")));
    assert!(caja(&["check", "--database-url", &required])
        .status
        .success());

    // Without TLS the server refuses; with a CA that did not sign it, caja refuses.
    let plain = caja(&["check", "--database-url", &pg.url("sslmode=disable")]);
    assert!(!plain.status.success());
    let stranger = pg.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        pg.ca("other.pem")
    ));
    let refused = caja(&["check", "--database-url", &stranger]);
    assert!(!refused.status.success());
    // The URL shown in messages never carries a password, TLS options or not.
    let with_password = format!(
        "postgres://postgres:s3cret@localhost:{}/postgres?sslmode=disable",
        pg.port
    );
    let out = caja(&["check", "--database-url", &with_password]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret"));
}
