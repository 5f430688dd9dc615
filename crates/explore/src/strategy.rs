//! Scheduling strategies: uniform random walk, PCT, a portfolio of both, and
//! replay of a recorded choice list. All are deterministic given a seed.

use crate::access::Access;
use crate::rt::ActorId;

/// SplitMix64: small, fast, and good enough to drive schedules. Used instead
/// of a crate so that schedules never change under a dependency upgrade.
///
/// The next output is computed one call ahead: a scheduling decision then
/// waits only for the final multiply-shift instead of the whole mixing
/// chain, and the branch on its outcome resolves sooner. The sequence is
/// SplitMix64's own.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
    ready: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng {
            state: seed,
            ready: 0,
        };
        rng.ready = rng.mix_next();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        let out = self.ready;
        self.ready = self.mix_next();
        out
    }

    fn mix_next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift (no modulo bias worth
    /// worrying about for the small n used here).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// The seed of execution `index` of a run seeded with `seed`: executions are
/// independent, so workers can run any subset and agree on every schedule.
pub fn execution_seed(seed: u64, index: u64) -> u64 {
    Rng::new(seed ^ index.wrapping_mul(0xd6e8_feb8_6659_fd93)).next_u64()
}

/// Decides which enabled actor runs next, and data choices.
pub trait Strategy {
    /// `enabled` is sorted and has at least two actors; `last` ran the
    /// previous step; `last_racy`: last is enabled and its next access is on
    /// an object the actors conflict on (a preemption there can matter).
    fn choose_actor(
        &mut self,
        enabled: &[ActorId],
        last: Option<ActorId>,
        last_racy: bool,
    ) -> ActorId;
    /// A value in `0..n`.
    fn choose_value(&mut self, n: u32) -> u32;
    /// With conflict tracking on: `actor` is about to execute `access` (its
    /// announced operation, or a lock release within its step). DPOR's
    /// sleep sets follow the execution through this.
    fn observe(&mut self, _actor: ActorId, _access: Access) {}
    /// Whether the rest of the execution is redundant: the runtime then
    /// stops it without teardown, checks or a finding.
    fn abandoned(&self) -> bool {
        false
    }
}

/// Uniform random walk: every decision picks uniformly among enabled actors.
pub struct RandomWalk {
    rng: Rng,
}

impl RandomWalk {
    pub fn new(seed: u64) -> Self {
        RandomWalk {
            rng: Rng::new(seed),
        }
    }
}

impl Strategy for RandomWalk {
    fn choose_actor(&mut self, enabled: &[ActorId], _: Option<ActorId>, _: bool) -> ActorId {
        enabled[self.rng.below(enabled.len() as u64) as usize]
    }

    fn choose_value(&mut self, n: u32) -> u32 {
        self.rng.below(n as u64) as u32
    }
}

/// PCT (Burckhardt et al., ASPLOS 2010): random distinct priorities, the
/// highest-priority enabled actor runs, and at `depth - 1` random steps the
/// running actor drops below every initial priority.
///
/// Two refinements. Steps are counted only where a preemption can matter:
/// the running actor is about to touch an object the actors conflict on
/// (learned by the calibration run), which keeps k small in a model where
/// most steps touch objects no other actor writes (the partial-order idea
/// of PCT+POR). And each change point puts the running actor below every
/// actor lowered before it, so the schedule returns to an actor preempted
/// earlier once the later one is preempted in turn: the ping-pong of most
/// two-actor races (on the 001 seed it halves the executions to the first
/// finding against the paper's random assignment of the lowered values).
pub struct Pct {
    rng: Rng,
    priorities: Vec<u64>,
    change_points: Vec<u64>,
    actors: usize,
    racy_steps: u64,
    lowest: u64,
}

impl Pct {
    /// `actors`: number of concurrent actors; `steps`: estimated steps of an
    /// execution (k); `depth`: d >= 1.
    pub fn new(seed: u64, actors: usize, steps: u64, depth: u32) -> Self {
        let mut rng = Rng::new(seed);
        // Actor ids start at 1; initial priorities are depth..depth+n,
        // shuffled, so that the d-1 lowered priorities 1..d stay below.
        let mut priorities: Vec<u64> = (0..=actors as u64).map(|p| p + depth as u64).collect();
        for i in (2..priorities.len()).rev() {
            let j = 1 + rng.below(i as u64) as usize;
            priorities.swap(i, j);
        }
        let change_points = (1..depth).map(|_| 1 + rng.below(steps.max(1))).collect();
        Pct {
            rng,
            priorities,
            change_points,
            actors,
            racy_steps: 0,
            lowest: depth as u64,
        }
    }
}

impl Strategy for Pct {
    fn choose_actor(
        &mut self,
        enabled: &[ActorId],
        last: Option<ActorId>,
        last_racy: bool,
    ) -> ActorId {
        if last_racy {
            self.racy_steps += 1;
            let step = self.racy_steps;
            if let (Some(last), Some(i)) =
                (last, self.change_points.iter().position(|&c| c == step))
            {
                if last <= self.actors {
                    // Each preemption puts the running actor below every
                    // actor preempted before it.
                    self.lowest -= 1;
                    self.priorities[last] = self.lowest;
                }
                self.change_points[i] = u64::MAX;
            }
        }
        *enabled
            .iter()
            .max_by_key(|&&a| self.priorities.get(a).copied().unwrap_or(0))
            .expect("enabled is not empty")
    }

    fn choose_value(&mut self, n: u32) -> u32 {
        self.rng.below(n as u64) as u32
    }
}

/// Follows a recorded choice list; reports a divergence when the list runs
/// out or names an actor that is not enabled.
pub struct Replay {
    choices: Vec<u32>,
    next: usize,
}

impl Replay {
    pub fn new(choices: Vec<u32>) -> Self {
        Replay { choices, next: 0 }
    }

    fn take(&mut self) -> u32 {
        let c = self.choices.get(self.next).copied().unwrap_or(u32::MAX);
        self.next += 1;
        c
    }

    /// Whether every recorded choice was used.
    pub fn exhausted(&self) -> bool {
        self.next == self.choices.len()
    }
}

impl Strategy for Replay {
    fn choose_actor(&mut self, _: &[ActorId], _: Option<ActorId>, _: bool) -> ActorId {
        self.take() as ActorId
    }

    fn choose_value(&mut self, _: u32) -> u32 {
        self.take()
    }
}

/// Which strategy a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyKind {
    Random,
    Pct {
        depth: u32,
    },
    /// Alternates random walk (even executions) and PCT depth 3 (odd).
    Portfolio,
}

impl StrategyKind {
    pub fn parse(s: &str) -> Option<StrategyKind> {
        match s {
            "random" => Some(StrategyKind::Random),
            "pct" => Some(StrategyKind::Pct { depth: 3 }),
            "portfolio" => Some(StrategyKind::Portfolio),
            _ => {
                let d = s.strip_prefix("pct")?.parse().ok()?;
                (1..=16)
                    .contains(&d)
                    .then_some(StrategyKind::Pct { depth: d })
            }
        }
    }

    pub fn name(self) -> String {
        match self {
            StrategyKind::Random => "random".into(),
            StrategyKind::Pct { depth } => format!("pct{depth}"),
            StrategyKind::Portfolio => "portfolio".into(),
        }
    }

    /// The strategy of execution `index`.
    pub fn build(self, seed: u64, index: u64, actors: usize, steps: u64) -> Built {
        let s = execution_seed(seed, index);
        match self {
            StrategyKind::Random => Built::Random(RandomWalk::new(s)),
            StrategyKind::Pct { depth } => Built::Pct(Pct::new(s, actors, steps, depth)),
            StrategyKind::Portfolio if index.is_multiple_of(2) => Built::Random(RandomWalk::new(s)),
            StrategyKind::Portfolio => Built::Pct(Pct::new(s, actors, steps, 3)),
        }
    }
}

/// The strategy one execution of a run uses, built without a heap
/// allocation (one per execution shows in a run's throughput).
pub enum Built {
    Random(RandomWalk),
    Pct(Pct),
}

impl Built {
    pub fn as_strategy(&mut self) -> &mut dyn Strategy {
        match self {
            Built::Random(s) => s,
            Built::Pct(s) => s,
        }
    }
}
