//! How many clients the operating system lets this process hold. Runs once,
//! on the thread calling `Server::start`; reads two files under /proc and
//! touches nothing shared. Elsewhere (macOS, Windows) there is no /proc, and
//! the server says so at start-up.
//!
//! Each client costs two threads, and on Linux each Rust thread costs four
//! memory mappings: its stack and the stack's guard page, and the small
//! alternate stack Rust's runtime gives every thread for reporting a stack
//! overflow, with its own guard page. A process may hold at most
//! `vm.max_map_count` mappings (65,530 by default). When a new thread cannot
//! get its mappings, the process is aborted, not just the spawn refused, so
//! the server must never get that far: `Server::start` lowers
//! `--max-clients` to what fits, and says so, and newcomers beyond it get the
//! usual `! server full` line. `kernel.pid_max` bounds threads machine-wide
//! in the same way.

use crate::config::Config;

/// Memory mappings per client: two threads of four each.
pub(crate) const MAPPINGS_PER_CLIENT: usize = 8;

/// Threads per client.
pub(crate) const THREADS_PER_CLIENT: usize = 2;

/// Mappings and threads kept for everything else: the program and its
/// libraries, the allocator's arenas, large allocations, other processes'
/// threads.
pub(crate) const RESERVE: usize = 2000;

/// The most clients these limits allow, and which limit binds.
pub(crate) fn clients_allowed(
    max_map_count: Option<usize>,
    pid_max: Option<usize>,
) -> Option<(usize, &'static str)> {
    let by_maps = max_map_count.map(|maps| {
        (
            maps.saturating_sub(RESERVE) / MAPPINGS_PER_CLIENT,
            "vm.max_map_count",
        )
    });
    let by_pids = pid_max.map(|pids| {
        (
            pids.saturating_sub(RESERVE) / THREADS_PER_CLIENT,
            "kernel.pid_max",
        )
    });
    match (by_maps, by_pids) {
        (Some(maps), Some(pids)) => Some(if maps.0 <= pids.0 { maps } else { pids }),
        (maps, pids) => maps.or(pids),
    }
}

/// Lowers `config.max_clients` to what this machine's limits allow, with a
/// warning naming the limit, so the server refuses newcomers politely
/// instead of being aborted by a failed thread mapping.
pub(crate) fn fit_max_clients(config: &mut Config) {
    let (max_map_count, pid_max) = read();
    let Some((allowed, limit)) = clients_allowed(max_map_count, pid_max) else {
        log::info!(
            "the thread and memory-mapping limits could not be read (they are in \
             Linux's /proc); --max-clients {} is not checked against them",
            config.max_clients
        );
        return;
    };
    if config.max_clients > allowed {
        log::warn!(
            "--max-clients {} is more than this machine's {limit} allows \
             (each client takes two threads and eight memory mappings); \
             serving at most {allowed} clients",
            config.max_clients
        );
        config.max_clients = allowed;
    }
}

/// Reads the two limits (None where a file is missing: not Linux).
fn read() -> (Option<usize>, Option<usize>) {
    let number = |path: &str| std::fs::read_to_string(path).ok()?.trim().parse().ok();
    (
        number("/proc/sys/vm/max_map_count"),
        number("/proc/sys/kernel/pid_max"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_map_count_allows_about_eight_thousand_clients() {
        assert_eq!(
            clients_allowed(Some(65_530), Some(32_768)),
            Some((7_941, "vm.max_map_count"))
        );
    }

    #[test]
    fn a_raised_map_count_leaves_pid_max_binding() {
        assert_eq!(
            clients_allowed(Some(262_144), Some(32_768)),
            Some((15_384, "kernel.pid_max"))
        );
    }

    #[test]
    fn unknown_limits_allow_anything() {
        assert_eq!(clients_allowed(None, None), None);
        assert_eq!(
            clients_allowed(None, Some(4_002)),
            Some((1_001, "kernel.pid_max"))
        );
    }
}
