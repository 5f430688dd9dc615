//! Talking to an oracle server process.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::ops::{Op, Request, SequenceResult};

/// A running oracle server (`<mmrace> oracle-server`).
pub struct Oracle {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Oracle {
    /// Spawns `program oracle-server`.
    pub fn spawn(program: &Path) -> std::io::Result<Oracle> {
        let mut child = Command::new(program)
            .arg("oracle-server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let input = child.stdin.take().expect("piped stdin");
        let output = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(Oracle {
            child,
            input,
            output,
        })
    }

    /// Runs one sequence on the host kernel, observing everything after
    /// every op.
    pub fn run(&mut self, ops: &[Op]) -> std::io::Result<SequenceResult> {
        self.run_observing(ops, 1)
    }

    /// Runs one sequence, observing the whole state every `every` ops
    /// (and after the last).
    pub fn run_observing(&mut self, ops: &[Op], every: u64) -> std::io::Result<SequenceResult> {
        let req = Request {
            ops: ops.to_vec(),
            every,
        };
        let line = serde_json::to_string(&req)?;
        self.input.write_all(line.as_bytes())?;
        self.input.write_all(b"\n")?;
        self.input.flush()?;
        let mut reply = String::new();
        if self.output.read_line(&mut reply)? == 0 {
            return Err(std::io::Error::other("the oracle server exited"));
        }
        serde_json::from_str(&reply).map_err(std::io::Error::other)
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
