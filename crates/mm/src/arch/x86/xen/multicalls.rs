//! Xen hypercall batching: models arch/x86/xen/multicalls.c (v3.12).
//!
//! The kernel queues hypercalls in a per-CPU buffer between
//! `xen_mc_batch()` and `xen_mc_issue()`, and `xen_mc_flush()` issues
//! them: a batch of one call directly (`privcmd_call`), more as one
//! `HYPERVISOR_multicall`. It counts the calls whose result is negative
//! and ends with `WARN_ON(ret)`.
//!
//! What it prints was checked against the file as it stands in v3.10 and
//! v3.18 (identical `xen_mc_flush()` but for `__get_cpu_var` becoming
//! `this_cpu_ptr`, so v3.12 has it too; the v3.12 file itself was not
//! read): `MC_DEBUG` is 0, so the `"%d multicall(s) failed: cpu %d"` line
//! and its `"  call %2d/%d: ..."` lines are compiled out, and they would
//! only be printed for a batch of two or more calls anyway. A failed call
//! shows as the `WARN_ON(ret)` at multicalls.c:129 alone. (The `"%d of %d
//! multicall(s) failed: cpu %d"` line of later kernels is printed without
//! a debug switch.) mmrace adds the batch it flushed, marked `mmrace:`.

use explore::{Finding, FindingKind};

use super::super::paravirt::XenPv;
use super::hypervisor::{mmu_update, Level};
use crate::pgtable::EntryRef;
use crate::profile::LogStyle;

/// `__HYPERVISOR_mmu_update`.
pub const HYPERVISOR_MMU_UPDATE: u32 = 1;

/// Line of `WARN_ON(ret)` in `xen_mc_flush()` (v3.10 to v3.18).
const WARN_LINE: u32 = 129;

/// One `HYPERVISOR_mmu_update` call queued in a batch, with its one
/// request (`struct mmu_update`: the entry and the raw value).
pub struct MmuUpdate<'a> {
    pub slot: &'a EntryRef,
    pub level: Level,
    pub cmd: u32,
    pub val: u64,
    pub label: &'static str,
}

/// The calls queued since `xen_mc_batch()`. In lazy MMU mode the kernel
/// folds consecutive mmu_update requests into one call
/// (`xen_extend_mmu_update()`) and flushes when the mode ends; the model
/// has no lazy MMU mode, so each caller flushes its own batch at once.
#[derive(Default)]
pub struct McBatch<'a> {
    calls: Vec<MmuUpdate<'a>>,
}

impl<'a> McBatch<'a> {
    /// `xen_mc_batch()`.
    pub fn new() -> McBatch<'a> {
        McBatch { calls: Vec::new() }
    }

    /// Queues one call (`__xen_mc_entry()` and its arguments).
    pub fn queue(&mut self, call: MmuUpdate<'a>) {
        self.calls.push(call);
    }

    /// Calls queued (`b->mcidx`).
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

/// `xen_mc_flush()`: issues every queued call in order (the hypervisor
/// runs a multicall's calls one after the other, as it would run them
/// singly), counts the failed ones, and `WARN_ON(ret)`s: a non-fatal
/// kernel finding. Returns the number of failed calls.
pub fn xen_mc_flush(x: &XenPv, batch: McBatch<'_>) -> usize {
    let results: Vec<Result<(), i32>> = batch
        .calls
        .iter()
        .map(|c| mmu_update(x, c.slot, c.level, c.cmd, c.val, c.label))
        .collect();
    let failed = results.iter().filter(|r| r.is_err()).count();
    if failed != 0 {
        explore::raise(warn_on_failed(&batch, &results, failed));
    }
    failed
}

/// The `WARN_ON(ret)` of a flush with `failed` failed calls: v3.12's
/// `"WARNING: CPU: %d PID: %d at %s:%d %pS()"` (the caller without
/// `+offset/size`: the model has no object code), the call trace, and
/// mmrace's account of the batch.
fn warn_on_failed(batch: &McBatch<'_>, results: &[Result<(), i32>], failed: usize) -> Finding {
    let title = format!(
        "WARNING: CPU: {} PID: {} at arch/x86/xen/multicalls.c:{WARN_LINE} xen_mc_flush()",
        explore::rt::current_cpu(),
        crate::debug::task_pid(),
    );
    let mut f = Finding::new(FindingKind::Kernel, "xen_mc_flush()", title);
    f.details.extend(crate::debug::call_trace(LogStyle::V3_12));
    let n = batch.len();
    f.details.push(format!(
        "mmrace: {failed} of {n} multicall(s) in the batch failed (MC_DEBUG is 0: the kernel prints no count)"
    ));
    for (i, (c, r)) in batch.calls.iter().zip(results).enumerate() {
        let result = r.err().unwrap_or(0);
        f.details.push(format!(
            "mmrace:   call {:2}/{n}: op={HYPERVISOR_MMU_UPDATE} (mmu_update) val={:#018x} result={result}",
            i + 1,
            c.val
        ));
    }
    f
}
