//! A model of kmemleak (mm/kmemleak.c, CONFIG_DEBUG_KMEMLEAK) for the
//! slab objects the model frees itself: anon_vmas and anon_vma_chains.
//! kmemleak records each allocation with its stack trace and, on a scan,
//! reports the objects nothing points to any more. The model scans once,
//! when every mm has exited: then no anon_vma or avc can be referenced by
//! anything, so each one not freed is leaked.
//! `kmemleak: %d new suspected memory leaks (see /sys/kernel/debug/kmemleak)`
//! and the `unreferenced object` records, with the model's call chain at
//! allocation (function names only, as in [`crate::debug::call_trace`]).

use std::rc::Rc;

use explore::{Finding, FindingKind};

use crate::kaddr::{self, Cache};
use crate::mm_types::{AnonVma, AnonVmaChain, Kernel};

/// An object kmemleak tracks.
pub enum Object {
    AnonVma(Rc<AnonVma>),
    Avc(Rc<AnonVmaChain>),
}

/// `kmemleak_alloc()`'s record: the object, who allocated it and where.
pub struct SlabObject {
    pub object: Object,
    pub comm: String,
    pub pid: usize,
    pub trace: Vec<&'static str>,
}

/// `kmemleak_alloc()` (called by the slab allocator).
pub fn kmemleak_alloc(k: &Kernel, object: Object) {
    k.slab_objects.borrow_mut().push(SlabObject {
        object,
        comm: explore::rt::current_comm(),
        pid: crate::debug::task_pid(),
        trace: explore::call_chain(),
    });
}

impl SlabObject {
    fn freed(&self) -> bool {
        match &self.object {
            Object::AnonVma(a) => a.life.is_freed(),
            Object::Avc(a) => a.life.is_freed(),
        }
    }

    fn address_and_size(&self, k: &Kernel) -> (u64, u64) {
        let style = k.profile.log_style;
        match &self.object {
            Object::AnonVma(a) => (kaddr::anon_vma(style, a), Cache::AnonVma.size()),
            Object::Avc(a) => (
                kaddr::slab_object(style, Cache::AnonVmaChain, a.id),
                Cache::AnonVmaChain.size(),
            ),
        }
    }
}

/// The scan once every mm has exited: a kernel message (non-fatal) if
/// anything leaked.
pub fn kmemleak_scan(k: &Kernel) {
    if k.mms.borrow().iter().any(|m| !m.exited.get()) {
        return;
    }
    let objects = k.slab_objects.borrow();
    let leaked: Vec<&SlabObject> = objects.iter().filter(|o| !o.freed()).collect();
    if leaked.is_empty() {
        return;
    }
    let mut f = Finding::new(
        FindingKind::Kernel,
        "kmemleak",
        format!(
            "kmemleak: {} new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
            leaked.len()
        ),
    );
    for o in leaked {
        let (addr, size) = o.address_and_size(k);
        f = f
            .detail(format!("unreferenced object {addr:#x} (size {size}):"))
            .detail(format!("  comm \"{}\", pid {}", o.comm, o.pid))
            .detail("  backtrace:");
        for frame in &o.trace {
            f = f.detail(format!("    {frame}"));
        }
    }
    explore::raise(f);
}
