//! CPU time spent by the server and by the PostgreSQL backends serving it, read from
//! `/proc` on this machine. Unlike throughput, CPU per order does not drift with what the
//! neighbours on a shared machine are doing.

use std::collections::BTreeMap;

/// A process's user + system CPU time so far, in seconds, from `/proc/PID/stat`.
pub fn seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // /proc counts in USER_HZ, which Linux fixes at 100 for user space.
    Some((utime + stime) / 100.0)
}

/// The process listening on `url`'s port on this machine, found through the listening
/// socket's inode in `/proc/net/tcp{,6}` and the process whose descriptors hold it.
pub fn listener_pid(url: &str) -> Option<u32> {
    let url = reqwest::Url::parse(url).ok()?;
    let port = url.port_or_known_default()?;
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is ADDR:PORT in hex; state 0A is LISTEN; field 9 the inode.
            let listening = f.get(3) == Some(&"0A");
            let on_port = f
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port);
            if listening && on_port {
                if let Some(inode) = f.get(9) {
                    inodes.push(format!("socket:[{inode}]"));
                }
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// The CPU seconds so far of every PostgreSQL backend serving caja (its connections name
/// themselves `application_name=caja`), by backend pid.
pub async fn backends(database_url: &str) -> anyhow::Result<BTreeMap<u32, f64>> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await?;
    let rows: Vec<(i32,)> =
        sqlx::query_as("SELECT pid FROM pg_stat_activity WHERE application_name = 'caja'")
            .fetch_all(&pool)
            .await?;
    pool.close().await;
    Ok(rows
        .into_iter()
        .filter_map(|(pid,)| {
            let pid = u32::try_from(pid).ok()?;
            Some((pid, seconds(pid)?))
        })
        .collect())
}

/// CPU spent between two readings of the backends: a backend that appeared since counts
/// from zero, one that went away is not counted (its time is lost with it).
pub fn backends_spent(before: &BTreeMap<u32, f64>, after: &BTreeMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, now)| now - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_of_a_port_is_found_and_its_cpu_read() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        assert_eq!(listener_pid(&format!("http://127.0.0.1:{port}")), Some(me));
        assert!(seconds(me).is_some_and(|s| s >= 0.0));
        drop(listener);
        assert_eq!(listener_pid(&format!("http://127.0.0.1:{port}")), None);
    }

    #[test]
    fn backends_that_came_and_went_count_what_they_were_seen_to_spend() {
        let before = BTreeMap::from([(1, 1.0), (2, 5.0)]);
        let after = BTreeMap::from([(1, 1.5), (3, 0.25)]);
        assert!((backends_spent(&before, &after) - 0.75).abs() < 1e-9);
    }
}
