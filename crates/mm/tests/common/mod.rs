//! What the mm integration tests share: a kernel of a named profile and a
//! task with a fresh mm, built outside any execution.
//!
//! Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::rc::Rc;

use mm::kernel::fork::mm_alloc;
use mm::mm_types::{Kernel, Machine, Task, Thp};

/// A kernel of `profile` on a machine of `nodes` NUMA nodes, THP off.
pub fn kernel(profile: &str, nodes: u32) -> Rc<Kernel> {
    let machine = Machine {
        nodes,
        thp: Thp::Never,
        thp_use_zero_page: true,
    };
    Rc::new(Kernel::new(mm::profile(profile).unwrap(), machine))
}

/// A task named `name` on node 0 with a new, empty mm.
pub fn task(k: &Kernel, name: &str) -> Task {
    Task {
        name: name.into(),
        node: 0,
        mm: mm_alloc(k).unwrap(),
    }
}
