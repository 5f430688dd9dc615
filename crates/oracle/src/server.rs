//! The oracle server loop: one JSON sequence per input line, one JSON
//! [`SequenceResult`] per output line, each sequence in a fresh child.

use std::io::{BufRead, Read, Write};
use std::os::fd::FromRawFd;

use crate::host::run_sequence;
use crate::ops::{Request, SequenceResult};

/// Serves until stdin closes. Must run in a single-threaded process.
pub fn serve() -> std::io::Result<()> {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        let result = match serde_json::from_str::<Request>(&line) {
            Ok(req) => in_child(&req)?,
            Err(e) => SequenceResult::SetupFailed(format!("bad sequence: {e}")),
        };
        serde_json::to_writer(&mut stdout, &result)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
    Ok(())
}

/// Forks; the child runs the sequence and writes its result to a pipe.
fn in_child(req: &Request) -> std::io::Result<SequenceResult> {
    let mut fds = [0; 2];
    // SAFETY: pipe/fork/waitpid with owned descriptors; the child only runs
    // the sequence, writes, and _exits without running destructors.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let pid = libc::fork();
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid == 0 {
            libc::close(fds[0]);
            let result = run_sequence(req);
            let mut out = std::fs::File::from_raw_fd(fds[1]);
            // One buffer, one write: the pipe is not buffered.
            let ok = serde_json::to_vec(&result).is_ok_and(|text| out.write_all(&text).is_ok());
            libc::_exit(if ok { 0 } else { 1 });
        }
        libc::close(fds[1]);
        let mut text = String::with_capacity(1 << 20);
        std::io::BufReader::with_capacity(1 << 16, std::fs::File::from_raw_fd(fds[0]))
            .read_to_string(&mut text)?;
        let mut wstatus = 0;
        libc::waitpid(pid, &mut wstatus, 0);
        Ok(serde_json::from_str(&text).unwrap_or_else(|e| {
            SequenceResult::SetupFailed(format!("child exited {wstatus:#x} without a result: {e}"))
        }))
    }
}
