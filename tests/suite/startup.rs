//! When a thread cannot be created at start-up, the binary says which one
//! and exits 1, promptly: it never hangs with half its threads started.
//!
//! Thread creation is made to fail the honest way: a tiny shared library,
//! loaded with `LD_PRELOAD`, stands in for `pthread_create` and fails the
//! N-th call with EAGAIN, as the kernel does when a machine is out of
//! threads. It is compiled here with the system's C compiler.

use std::path::PathBuf;
use std::process::Command;

use crate::common::process::{has_linux_proc, run, threadchat, tool_available};

const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static int calls;

int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                   void *(*start)(void *), void *arg) {
    create_fn real = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
    const char *fail = getenv("FAIL_PTHREAD_CREATE");
    int n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    if (fail != NULL && atoi(fail) == n) {
        return EAGAIN;
    }
    return real(thread, attr, start, arg);
}
"#;

/// Builds the shim once per test run; `None` (skipped) without a compiler.
fn build_shim() -> Option<PathBuf> {
    if !tool_available("cc", "--version", "gcc") {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("threadchat-shim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let source = dir.join("fail_pthread_create.c");
    let library = dir.join("fail_pthread_create.so");
    std::fs::write(&source, SHIM).expect("write the shim");
    let cc = run(Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl"));
    assert!(cc.status.success(), "cc could not build the shim: {cc:?}");
    Some(library)
}

/// Runs the binary, with `extra` arguments, with the `fail`-th
/// `pthread_create` failing; returns its exit code and standard error.
/// `run` fails the test if it does not exit within the deadline: a binary
/// that hangs is the bug this catches.
fn run_failing(shim: &PathBuf, fail: u32, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["--addr", "127.0.0.1:0", "--http", "off"];
    args.extend_from_slice(extra);
    let finished = run(threadchat(&args)
        .env("LD_PRELOAD", shim)
        .env("FAIL_PTHREAD_CREATE", fail.to_string()));
    (finished.status.code(), finished.stderr)
}

#[test]
fn a_thread_that_cannot_start_is_named_and_the_server_exits_1() {
    if !has_linux_proc() {
        return;
    }
    let Some(shim) = build_shim() else {
        return;
    };
    // The first thread is the signal handler's (ctrlc), then the server's
    // own, in the order `Server::start` starts them; the IRC door's
    // acceptor, when there is one, just before the chat acceptor.
    let irc_off: &[&str] = &["--irc", "off"];
    let irc_on: &[&str] = &["--irc", "127.0.0.1:0"];
    let expected = [
        (1, irc_off, "error: cannot install the signal handler"),
        (2, irc_off, "error: cannot start the manager thread"),
        (3, irc_off, "error: cannot start the acceptor thread"),
        (4, irc_off, "error: cannot start the monitor thread"),
        (3, irc_on, "error: cannot start the irc-acceptor thread"),
        (4, irc_on, "error: cannot start the acceptor thread"),
    ];
    for (fail, extra, message) in expected {
        let (code, stderr) = run_failing(&shim, fail, extra);
        assert_eq!(code, Some(1), "call {fail}: exit status; stderr: {stderr}");
        assert!(
            stderr.contains(message),
            "call {fail}: expected {message:?} in stderr, got: {stderr}"
        );
        assert!(
            !stderr.contains("cannot listen"),
            "call {fail}: a thread failure is not a bind failure: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(shim.parent().expect("shim dir"));
}
