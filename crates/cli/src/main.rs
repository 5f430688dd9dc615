//! `mmrace`: find Linux memory-manager races by exploring interleavings of
//! an executable model. Argument parsing and printing only; the commands
//! live in the library (`mmrace::run`, `mmrace::seeds`, ...).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use explore::StrategyKind;
use mmrace::json::RunJson;
use mmrace::run::{RunOptions, RunResult, DEFAULT_STEPS_MAX};
use mmrace::{bench, run, seeds, CliError, EXIT_CLEAN, EXIT_FINDING, EXIT_USAGE};

/// The model allocates a folio, its page data and the checkers' records
/// for every page it faults in, and frees them at exit: with glibc's
/// allocator the cost of that grows with the heap (its unsorted and
/// small bins), mimalloc's per-size free lists keep it flat.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use scenario::interp::CheckMode;

#[derive(Parser)]
#[command(
    name = "mmrace",
    version,
    about = "Explore interleavings of an executable Linux mm model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every exploring command takes (`run`, `seeds`, `verify`).
#[derive(clap::Args, Clone)]
struct Common {
    /// Steps after which an execution is reported as a livelock.
    #[arg(long, default_value_t = DEFAULT_STEPS_MAX)]
    steps_max: u64,
    /// Override a profile knob (repeatable): --knob pmd_check=upstream65.
    #[arg(long = "knob", value_parser = parse_knob)]
    knobs: Vec<(String, String)>,
    /// Show setup/teardown events in reports.
    #[arg(long)]
    full: bool,
    /// One JSON object per run instead of text.
    #[arg(long)]
    json: bool,
    /// Report a found schedule as found, without shrinking it to the
    /// fewest preemptions.
    #[arg(long)]
    no_minimize: bool,
    /// No progress bar (it shows only on a terminal, for runs longer than a
    /// second).
    #[arg(long = "no-progress")]
    no_progress: bool,
    /// What the checkers look at after a step: incremental (what the step
    /// touched; the whole state at the end of each execution), full (the
    /// whole state after every step, for debugging mmrace) or compare
    /// (both, a disagreement being an internal error).
    #[arg(long, default_value = "incremental", value_parser = CheckMode::parse)]
    check: CheckMode,
}

/// Options of the sampling commands (`run`, `seeds`).
#[derive(clap::Args, Clone)]
struct Explore {
    /// Scheduling strategy: portfolio (random walk + PCT depth 3), random,
    /// pct (depth 3) or pctN (depth N).
    #[arg(long, default_value = "portfolio", value_parser = parse_strategy)]
    strategy: StrategyKind,
    /// Seed of the run; execution i uses a seed derived from it.
    #[arg(long, default_value_t = 0, value_parser = parse_u64)]
    seed: u64,
    /// Executions before declaring the run clean (default: the scenario's
    /// `budget`, else 10000).
    #[arg(long, value_parser = parse_u64)]
    budget: Option<u64>,
    /// Worker threads (default: all CPUs); the finding reported does not
    /// depend on it.
    #[arg(long, default_value_t = default_jobs())]
    jobs: usize,
    /// Run only shard K of N of the execution-index space (K/N, from 0);
    /// `mmrace merge` combines the shards' --json results.
    #[arg(long, value_parser = explore::Shard::parse, default_value = "0/1")]
    shard: explore::Shard,
    /// Go on past findings whose message does not contain TEXT (e.g.
    /// --want "kernel BUG"): how to look for one interleaving when
    /// another one's finding comes first.
    #[arg(long, value_name = "TEXT")]
    want: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand)]
enum Command {
    /// Explore a scenario under one profile (default: every profile its
    /// expect lines name).
    Run {
        /// Scenario file (.mmr).
        file: PathBuf,
        /// Kernel profile (see `mmrace list`).
        #[arg(long)]
        profile: Option<String>,
        /// No progress bar (as --no-progress).
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        explore: Explore,
    },
    /// Rebuild the report of a replay token.
    Replay {
        /// The token a report's last line prints (`mmr1:...`).
        token: String,
        /// Show setup/teardown events too.
        #[arg(long)]
        full: bool,
        /// The steps limit the finding was made with (tokens do not record
        /// it; only livelock findings depend on it).
        #[arg(long, default_value_t = DEFAULT_STEPS_MAX)]
        steps_max: u64,
    },
    /// Run every scenario in scenarios/seeds under each expected profile;
    /// exit 0 only if every verdict matches.
    Seeds {
        /// Directory of .mmr files.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print only the summary table, not the reports.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        explore: Explore,
    },
    /// List seed scenarios, profiles and knobs.
    List,
    /// Time to first finding per seed scenario and buggy profile.
    Bench {
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Seeds per row.
        #[arg(long, default_value_t = 20)]
        seeds: u64,
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
    /// Blind discovery: generate scenarios from the language's vocabulary,
    /// explore each, and write each distinct finding, shrunk, to --out.
    /// Exit 1 if it found something, 70 if it met an internal error.
    Hunt {
        /// Kernel profile (see `mmrace list`).
        #[arg(long)]
        profile: String,
        /// Statements to draw from, comma-separated (default: all the
        /// profile's era can run): mmap, munmap, mprotect, madvise, write,
        /// read, numa_scan, reclaim, hibernate, fork, exit, pwrite, pread,
        /// ftruncate, remap_file_pages, msync.
        #[arg(long, value_parser = mmrace::hunt::parse_ops)]
        ops: Option<std::collections::BTreeSet<&'static str>>,
        /// Threads per scenario: N or LO..HI.
        #[arg(long, default_value = "2..3", value_parser = mmrace::hunt::parse_range)]
        threads: (u32, u32),
        /// Processes per scenario: N or LO..HI.
        #[arg(long, default_value = "1..2", value_parser = mmrace::hunt::parse_range)]
        processes: (u32, u32),
        /// A fixed machine line for every scenario, e.g. "numa-nodes=2
        /// thp=always" (default: drawn per scenario).
        #[arg(long)]
        machine: Option<String>,
        /// Stop after this long (90s, 10m, 1h).
        #[arg(long, value_parser = mmrace::hunt::parse_duration, conflicts_with = "scenarios")]
        time: Option<std::time::Duration>,
        /// Stop after this many scenarios (default 1000).
        #[arg(long, value_parser = parse_u64)]
        scenarios: Option<u64>,
        /// Seed of the generated scenarios.
        #[arg(long, default_value_t = 0, value_parser = parse_u64)]
        seed: u64,
        /// Scenarios explored at once, one worker each; what the hunt
        /// reports does not depend on it.
        #[arg(long, default_value_t = default_jobs())]
        jobs: usize,
        /// Run only shard K of N of the scenario-index space.
        #[arg(long, value_parser = explore::Shard::parse, default_value = "0/1")]
        shard: explore::Shard,
        /// Directory for findings, reports and the resumable state.
        #[arg(long, default_value = "hunt-out")]
        out: PathBuf,
        /// Executions per scenario.
        #[arg(long, default_value_t = mmrace::hunt::DEFAULT_HUNT_BUDGET, value_parser = parse_u64)]
        budget: u64,
        /// Steps after which an execution is a livelock.
        #[arg(long, default_value_t = DEFAULT_STEPS_MAX)]
        steps_max: u64,
        /// The summary as JSON (the hunt's state).
        #[arg(long)]
        json: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Override a profile knob (repeatable): hunt under an ablation.
        #[arg(long = "knob", value_parser = parse_knob)]
        knobs: Vec<(String, String)>,
        /// Print generated scenario N (as the hunt would explore it) and
        /// exit.
        #[arg(long, value_name = "N", value_parser = parse_u64)]
        print_scenario: Option<u64>,
    },
    /// Shrink a scenario's finding as `hunt` shrinks its own: fewer
    /// processes, threads, statements and pages, keeping the same kernel
    /// check and place; then the fewest preemptions. Writes the result
    /// with its expect line; exit 1 with its report, 0 if nothing is found.
    Shrink {
        /// Scenario file (.mmr).
        file: PathBuf,
        /// Kernel profile (see `mmrace list`).
        #[arg(long)]
        profile: String,
        /// Override a profile knob (repeatable).
        #[arg(long = "knob", value_parser = parse_knob)]
        knobs: Vec<(String, String)>,
        /// Executions per candidate (default: the scenario's budget, at
        /// most 5000).
        #[arg(long, value_parser = parse_u64)]
        budget: Option<u64>,
        /// Where to write the shrunk scenario (default: FILE with
        /// .shrunk.mmr).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Steps after which an execution is a livelock.
        #[arg(long, default_value_t = DEFAULT_STEPS_MAX)]
        steps_max: u64,
    },
    /// Compare the model's syscalls with the running kernel on random op
    /// sequences; exit 1 on a divergence, printed as a minimal sequence.
    Conform {
        /// Seed of the generated sequences.
        #[arg(long, default_value_t = 0, value_parser = parse_u64)]
        seed: u64,
        /// Sequences to run.
        #[arg(long, default_value_t = 200, value_parser = parse_u64)]
        sequences: u64,
        /// Ops per sequence (the first maps the whole window).
        #[arg(long, default_value_t = 200, value_parser = parse_u64)]
        ops: u64,
        /// Include memfd-backed file mappings, ftruncate and pread/pwrite.
        #[arg(long)]
        files: bool,
        /// Override a model knob after calibration (repeatable).
        #[arg(long = "knob", value_parser = parse_knob)]
        knobs: Vec<(String, String)>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify a scenario: every interleaving with at most K preemptions, up
    /// to commuting independent steps (DPOR). Prints "verified within K
    /// preemptions" or the first finding.
    Verify {
        /// Scenario files (.mmr), verified one after another.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Kernel profile (default: every profile the expect lines name).
        #[arg(long)]
        profile: Option<String>,
        /// Preemption bound, or `unbounded` (then sleep sets prune too).
        #[arg(long, default_value = "2", value_parser = parse_bound)]
        preemptions: u32,
        /// Worker threads (DPOR subtrees are shared out as workers go
        /// idle; counts may then vary, the verdict does not).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Stop unverified after this many executions.
        #[arg(long, default_value_t = mmrace::verify::DEFAULT_MAX_EXECUTIONS, value_parser = parse_u64)]
        budget: u64,
        /// With fault injection (--knob fail_page_alloc=on): allocations
        /// that may fail in one execution.
        #[arg(long, default_value_t = 1)]
        failures: u32,
        #[command(flatten)]
        common: Common,
        /// No progress bar (as --no-progress).
        #[arg(long)]
        quiet: bool,
    },
    /// Merge the --json results of `run --shard K/N` runs (files, or stdin)
    /// into one result per (scenario, profile, knobs).
    Merge {
        /// JSON-lines files (default: stdin).
        files: Vec<PathBuf>,
    },
    /// The host-kernel oracle server (spawned by `conform`; reads op
    /// sequences as JSON lines on stdin, one result line each).
    #[command(hide = true)]
    OracleServer,
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn parse_strategy(s: &str) -> Result<StrategyKind, String> {
    StrategyKind::parse(s)
        .ok_or_else(|| format!("unknown strategy '{s}'; use portfolio, random, pct or pct2..pct16"))
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("'{s}' is not a number"))
}

fn parse_bound(s: &str) -> Result<u32, String> {
    match s {
        "unbounded" | "none" => Ok(explore::verify::UNBOUNDED),
        _ => s
            .parse::<u32>()
            .ok()
            .filter(|&k| k != explore::verify::UNBOUNDED)
            .ok_or_else(|| format!("'{s}' is not a preemption bound (a number, or unbounded)")),
    }
}

fn parse_knob(s: &str) -> Result<(String, String), String> {
    mm::profile::parse_override(s)
}

impl Explore {
    fn options(&self, profile: &str) -> RunOptions {
        RunOptions {
            profile: profile.to_string(),
            knobs: self.common.knobs.clone(),
            strategy: self.strategy,
            seed: self.seed,
            budget: self.budget,
            jobs: self.jobs,
            steps_max: self.common.steps_max,
            full: self.common.full,
            minimize: !self.common.no_minimize,
            shard: self.shard,
            progress: None,
            check: self.common.check,
            wanted: self.want.as_ref().and_then(|w| {
                mmrace::seeds::wanted(&scenario::ExpectedVerdict::Finding(w.clone()))
            }),
        }
    }
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`mmrace run ... | head`), as C tools do.
    // SAFETY: resetting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Plain `mmrace`: the help, as a usage error.
            eprint!("{}", e.render());
            return ExitCode::from(EXIT_USAGE as u8);
        }
        Err(e) if e.use_stderr() => {
            eprint_prefixed(&e.render().to_string());
            return ExitCode::from(EXIT_USAGE as u8);
        }
        Err(e) => {
            // --help and --version.
            print!("{e}");
            return ExitCode::SUCCESS;
        }
    };
    let code = match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprint_prefixed(&e.to_string());
            e.exit_code()
        }
    };
    ExitCode::from(code as u8)
}

/// Every stderr line starts with `mmrace: `, multi-line diagnostics too,
/// so errors are easy to pick out of mixed logs.
fn eprint_prefixed(text: &str) {
    for line in text.trim_end().lines() {
        eprintln!("mmrace: {line}");
    }
}

fn dispatch(command: Command) -> Result<i32, CliError> {
    match command {
        Command::Run {
            file,
            profile,
            quiet,
            mut explore,
        } => {
            explore.common.no_progress |= quiet;
            cmd_run(&file, profile, &explore)
        }
        Command::Replay {
            token,
            full,
            steps_max,
        } => {
            let (report, found) = run::replay_token(&token, full, steps_max)?;
            print!("{report}");
            Ok(if found { EXIT_FINDING } else { EXIT_CLEAN })
        }
        Command::Seeds {
            dir,
            quiet,
            explore,
        } => cmd_seeds(dir, quiet, &explore),
        Command::List => cmd_list(),
        Command::Bench { dir, seeds, jobs } => cmd_bench(dir, seeds, jobs),
        Command::Shrink {
            file,
            profile,
            knobs,
            budget,
            out,
            steps_max,
        } => cmd_shrink(&file, &profile, knobs, budget, out, steps_max),
        Command::Hunt {
            profile,
            ops,
            threads,
            processes,
            machine,
            time,
            scenarios,
            seed,
            jobs,
            shard,
            out,
            budget,
            steps_max,
            json,
            quiet,
            knobs,
            print_scenario,
        } => {
            let mut opts = mmrace::hunt::HuntOptions::new(&profile, &out);
            opts.knobs = knobs;
            if let Some(ops) = ops {
                opts.ops = ops;
            }
            opts.threads = threads;
            opts.processes = processes;
            opts.machine = machine;
            opts.stop = match time {
                Some(t) => mmrace::hunt::Stop::Time(t),
                None => mmrace::hunt::Stop::Scenarios(scenarios.unwrap_or(1000)),
            };
            opts.seed = seed;
            opts.jobs = jobs;
            opts.shard = shard;
            opts.budget = budget;
            opts.steps_max = steps_max;
            opts.progress = !json && !quiet && std::io::stderr().is_terminal();
            if let Some(index) = print_scenario {
                print!("{}", mmrace::hunt::scenario_text(&opts, index)?);
                return Ok(EXIT_CLEAN);
            }
            cmd_hunt(&opts, json)
        }
        Command::Conform {
            seed,
            sequences,
            ops,
            files,
            knobs,
            json,
        } => cmd_conform(seed, sequences, ops, files, knobs, json),
        Command::Verify {
            files,
            profile,
            preemptions,
            jobs,
            budget,
            failures,
            common,
            quiet,
        } => {
            let mut opts = mmrace::verify::VerifyOptions::new("", preemptions);
            opts.max_failures = failures;
            opts.jobs = jobs;
            opts.max_executions = budget;
            opts.steps_max = common.steps_max;
            opts.knobs = common.knobs;
            opts.full = common.full;
            opts.minimize = !common.no_minimize;
            opts.check = common.check;
            let json = common.json;
            let bar = !json && !common.no_progress && !quiet && std::io::stderr().is_terminal();
            let mut code = EXIT_CLEAN;
            for file in &files {
                code = code.max(cmd_verify(file, profile.clone(), opts.clone(), json, bar)?);
            }
            Ok(code)
        }
        Command::Merge { files } => cmd_merge(&files),
        Command::OracleServer => {
            oracle::server::serve().map_err(|e| CliError::Usage(format!("oracle server: {e}")))?;
            Ok(EXIT_CLEAN)
        }
    }
}

fn cmd_run(
    file: &std::path::Path,
    profile: Option<String>,
    explore: &Explore,
) -> Result<i32, CliError> {
    let profiles = profiles_of(file, profile)?;
    let mut code = EXIT_CLEAN;
    for p in profiles {
        let mut opts = explore.options(&p);
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        opts.progress = Some(counter.clone());
        let budget = run::budget_of(file, &opts)?;
        let label = format!("{} under {p}", file.display());
        let meter = Meter {
            label,
            total: Some(budget),
            done: counter,
            findings: Counter::default(),
            executions: None,
        };
        let bar = Progress::start(meter, progress_wanted(explore));
        let r = run::run(file, &opts);
        bar.stop();
        let r = r?;
        if explore.common.json {
            println!(
                "{}",
                serde_json::to_string(&RunJson::of(&r)).unwrap_or_default()
            );
        } else {
            print_result(&r);
        }
        if r.outcome.found.is_some() {
            code = EXIT_FINDING;
        }
    }
    Ok(code)
}

/// Whether to show a progress bar: on a terminal, not for --json or
/// --no-progress.
fn progress_wanted(explore: &Explore) -> bool {
    use std::io::IsTerminal;
    !explore.common.json && !explore.common.no_progress && std::io::stderr().is_terminal()
}

/// A progress bar on stderr for a run, shown after its first second:
/// executions done of the budget, executions per second, ETA.
struct Progress {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Counter = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// What a progress bar counts.
struct Meter {
    label: String,
    /// Bar length (None: a spinner, for searches of unknown size).
    total: Option<u64>,
    /// The bar's position.
    done: Counter,
    /// Findings so far.
    findings: Counter,
    /// For a bar over rows (`seeds`): the executions of all rows.
    executions: Option<Counter>,
}

impl Meter {
    fn template(&self) -> &'static str {
        match (self.total, &self.executions) {
            (Some(_), Some(_)) => "mmrace: {msg} [{bar:30}] {pos}/{len} rows, {prefix}, ETA {eta}",
            (Some(_), None) => "mmrace: {msg} [{bar:30}] {pos}/{len} executions, {per_sec}, {prefix} findings so far, ETA {eta}",
            (None, _) => "mmrace: {msg} {spinner} {pos} executions, {per_sec}, {prefix} findings so far, {elapsed}",
        }
    }

    fn update(&self, b: &indicatif::ProgressBar, started: std::time::Instant) {
        use std::sync::atomic::Ordering;
        let findings = self.findings.load(Ordering::Relaxed);
        match &self.executions {
            Some(e) => {
                let e = e.load(Ordering::Relaxed);
                let rate = e as f64 / started.elapsed().as_secs_f64().max(1e-3);
                b.set_prefix(format!(
                    "{e} executions ({rate:.0}/s), {findings} findings so far"
                ));
            }
            None => b.set_prefix(findings.to_string()),
        }
        let done = self.done.load(Ordering::Relaxed);
        b.set_position(self.total.map_or(done, |t| done.min(t)));
    }
}

impl Progress {
    fn start(meter: Meter, enabled: bool) -> Progress {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if !enabled {
            return Progress { stop, thread: None };
        }
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let mut bar: Option<indicatif::ProgressBar> = None;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                if started.elapsed().as_secs() < 1 {
                    continue;
                }
                let b = bar.get_or_insert_with(|| {
                    let b = match meter.total {
                        Some(t) => indicatif::ProgressBar::new(t),
                        None => indicatif::ProgressBar::new_spinner(),
                    };
                    let style = indicatif::ProgressStyle::with_template(meter.template())
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
                    b.set_style(style);
                    b.set_message(meter.label.clone());
                    b
                });
                meter.update(b, started);
            }
            if let Some(b) = bar {
                b.finish_and_clear();
            }
        });
        Progress {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn print_result(r: &RunResult) {
    let o = &r.outcome;
    let ms = o.elapsed.as_secs_f64() * 1000.0;
    match (&o.found, &r.report) {
        (Some(f), Some(report)) => {
            let shrunk = match r.found_preemptions {
                Some(p) if p != f.preemptions => {
                    format!(
                        "; schedule minimised from {p} to {} preemptions",
                        f.preemptions
                    )
                }
                _ => String::new(),
            };
            println!(
                "{} under {}: found by execution {} of the run ({} executions, {:.1} ms, {} steps{shrunk})\n",
                r.scenario, r.profile, f.index, o.executions, ms, o.steps
            );
            print!("{report}");
        }
        _ if o.complete => {
            println!(
                "{} under {}: clean: the scenario has one schedule, explored completely ({:.1} ms, {} steps, {} actors)",
                r.scenario, r.profile, ms, o.steps, o.actors
            );
            print_statements(r);
        }
        _ => {
            println!(
                "{} under {}: clean after {} executions ({:.1} ms, {} steps, {} actors)",
                r.scenario, r.profile, o.executions, ms, o.steps, o.actors
            );
            for (mark, n) in &o.marks {
                println!("  reached {n:>7}x  {mark}");
            }
            print_statements(r);
        }
    }
    let _ = std::io::stdout().flush();
}

/// A clean run's per-statement outcomes, and on stderr the warnings for
/// statements that failed the same way every time.
fn print_statements(r: &RunResult) {
    print_statement_lines(&r.scenario, r.clean_statements());
}

fn print_statement_lines(file: &str, statements: &[scenario::outcome::StatementSummary]) {
    if let Some(first) = statements.first() {
        println!(
            "  statements (over the {} executions that ran, calibration included):",
            first.executions
        );
        for st in statements {
            println!("    {}", st.line_text());
        }
    }
    print_warning_lines(file, statements);
}

fn print_warning_lines(file: &str, statements: &[scenario::outcome::StatementSummary]) {
    let _ = std::io::stdout().flush();
    for w in mmrace::json::warnings_of(file, statements) {
        eprintln!("{w}");
    }
}

fn print_warnings(r: &RunResult) {
    print_warning_lines(&r.scenario, r.clean_statements());
}

fn cmd_seeds(dir: Option<PathBuf>, quiet: bool, explore: &Explore) -> Result<i32, CliError> {
    use std::sync::atomic::Ordering;
    if explore.want.is_some() {
        return Err(CliError::Usage(
            "--want does not apply to seeds: each expect line's finding text is what its run \
             looks for"
                .into(),
        ));
    }
    let dir = dir.unwrap_or_else(seeds::default_dir);
    let json = explore.common.json;
    let meter = Meter {
        label: format!("seeds in {}", dir.display()),
        total: Some(seeds::count_rows(&dir)?),
        done: Counter::default(),
        findings: Counter::default(),
        executions: Some(Counter::default()),
    };
    let (done, findings) = (meter.done.clone(), meter.findings.clone());
    let mut options = explore.options("");
    options.progress = meter.executions.clone();
    let bar = Progress::start(meter, !quiet && progress_wanted(explore));
    let rows = seeds::seeds(&dir, &options, |row| {
        done.fetch_add(1, Ordering::Relaxed);
        if row.result.outcome.found.is_some() {
            findings.fetch_add(1, Ordering::Relaxed);
        }
        if json {
            let mut j = RunJson::of(&row.result);
            j.expected = Some(row.expected_text());
            j.matches = Some(row.matches);
            println!("{}", serde_json::to_string(&j).unwrap_or_default());
        } else if !quiet {
            print_result(&row.result);
        } else {
            print_warnings(&row.result);
        }
    });
    bar.stop();
    let rows = rows?;
    let ok = rows.iter().all(|r| r.matches);
    if !json {
        print_seed_table(&rows);
        let failed = rows.iter().filter(|r| !r.matches).count();
        println!("{} passed, {failed} failed", rows.len() - failed);
    }
    Ok(if ok { EXIT_CLEAN } else { EXIT_FINDING })
}

/// The finding's title, and the later kernel line the expectation matched
/// if the title itself does not contain it.
fn seed_verdict(f: &explore::Finding, expected: &scenario::ExpectedVerdict) -> String {
    let mut text = format!("finding: {}", f.title);
    if let scenario::ExpectedVerdict::Finding(sub) = expected {
        let later = f.aftermath.iter().find(|l| l.contains(sub.as_str()));
        if let (false, Some(line)) = (f.title.contains(sub.as_str()), later) {
            text.push_str(&format!("; later: {line}"));
        }
    }
    text
}

fn print_seed_table(rows: &[seeds::SeedRow]) {
    let name_of = |r: &seeds::SeedRow| {
        std::path::Path::new(&r.result.scenario)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let label_of = |r: &seeds::SeedRow| profile_label(&r.result.profile, &r.result.knobs);
    let w_name = rows
        .iter()
        .map(|r| name_of(r).len())
        .max()
        .unwrap_or(0)
        .max(8);
    let w_prof = rows
        .iter()
        .map(|r| label_of(r).len())
        .max()
        .unwrap_or(0)
        .max(7);
    let w_exp = rows
        .iter()
        .map(|r| r.expected_text().len())
        .max()
        .unwrap_or(0)
        .max(8);
    println!(
        "{:<w_name$} {:<w_prof$} {:<w_exp$} {:>9} {:>10}  verdict",
        "scenario", "profile", "expected", "execs", "ms"
    );
    for r in rows {
        let res = &r.result;
        let got = match &res.outcome.found {
            Some(f) => seed_verdict(&f.finding, &r.expected),
            None => "clean".to_string(),
        };
        println!(
            "{:<w_name$} {:<w_prof$} {:<w_exp$} {:>9} {:>10.1}  {} {}",
            name_of(r),
            label_of(r),
            r.expected_text(),
            res.outcome.executions,
            res.outcome.elapsed.as_secs_f64() * 1000.0,
            if r.matches { "OK  " } else { "FAIL" },
            got
        );
    }
}

/// A profile with its `--knob` overrides, as the seeds table shows it.
fn profile_label(profile: &str, knobs: &[(String, String)]) -> String {
    let mut label = profile.to_string();
    for (k, v) in knobs {
        label.push_str(&format!(" {k}={v}"));
    }
    label
}

fn cmd_list() -> Result<i32, CliError> {
    let dir = seeds::default_dir();
    println!("seed scenarios ({}):", dir.display());
    let mut rows = Vec::new();
    for f in seeds::scenario_files(&dir)? {
        let s = run::load(&f)?;
        let profiles: Vec<String> = s.expects.iter().map(|e| e.profile.clone()).collect();
        let file = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        rows.push((file, s.name.clone(), profiles.join(" ")));
    }
    let (w0, w1) = rows
        .iter()
        .fold((0, 0), |(a, b), r| (a.max(r.0.len()), b.max(r.1.len())));
    for (file, name, profiles) in rows {
        println!("  {file:<w0$}  {name:<w1$}  {profiles}");
    }
    println!("\nprofiles:");
    for p in mm::profiles() {
        println!("  {:<27} {}", p.name, p.summary);
    }
    println!("\nknobs (--knob name=value; values per profile in order above):");
    for k in mm::profile::KNOBS {
        let per: Vec<&str> = mm::profiles().iter().map(|p| k.get(&p.knobs)).collect();
        println!("  {:<32} [{}]  {}", k.name, per.join(" "), k.doc);
    }
    Ok(EXIT_CLEAN)
}

/// Executions per shrink candidate at most, unless `--budget` says.
const SHRINK_BUDGET_CAP: u64 = 5000;

fn cmd_shrink(
    file: &std::path::Path,
    profile: &str,
    knobs: Vec<(String, String)>,
    budget: Option<u64>,
    out: Option<PathBuf>,
    steps_max: u64,
) -> Result<i32, CliError> {
    let s = run::load(file)?;
    let out = out.unwrap_or_else(|| file.with_extension("shrunk.mmr"));
    let mut opts = mmrace::hunt::HuntOptions::new(profile, &out);
    opts.knobs = knobs;
    opts.budget = budget.unwrap_or_else(|| {
        s.budget
            .unwrap_or(run::DEFAULT_BUDGET)
            .min(SHRINK_BUDGET_CAP)
    });
    opts.steps_max = steps_max;
    if opts.budget == 0 || steps_max == 0 {
        return Err(CliError::Usage(
            "--budget and --steps-max must be at least 1".into(),
        ));
    }
    let Some(r) = mmrace::hunt::shrink_file(&opts, file, &out)? else {
        println!(
            "{} under {profile}: no finding within {} executions, nothing to shrink",
            file.display(),
            opts.budget
        );
        return Ok(EXIT_CLEAN);
    };
    println!(
        "{} under {profile}: shrunk from {} thread(s), {} statement(s) to {} thread(s), {} \
         statement(s): {}\n",
        file.display(),
        r.before.0,
        r.before.1,
        r.after.0,
        r.after.1,
        r.written.display()
    );
    print!("{}", r.report);
    Ok(EXIT_FINDING)
}

fn cmd_hunt(opts: &mmrace::hunt::HuntOptions, json: bool) -> Result<i32, CliError> {
    let state = mmrace::hunt::hunt(opts)?;
    if json {
        let text = serde_json::to_string_pretty(&state)
            .map_err(|e| CliError::Internal(format!("hunt JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", mmrace::hunt::render_summary(opts, &state));
    }
    Ok(if !state.coverage.internal.is_empty() {
        mmrace::EXIT_INTERNAL
    } else if !state.distinct.is_empty() {
        EXIT_FINDING
    } else {
        EXIT_CLEAN
    })
}

fn cmd_bench(dir: Option<PathBuf>, seeds_n: u64, jobs: usize) -> Result<i32, CliError> {
    if seeds_n == 0 {
        return Err(CliError::Usage("--seeds must be at least 1".into()));
    }
    let dir = dir.unwrap_or_else(seeds::default_dir);
    // The best of three: on a shared VM a run is sometimes slowed from
    // outside, and the fastest run is the one least disturbed by that.
    let mut best = (0.0, f64::MAX);
    for _ in 0..3 {
        let (points, ns) = bench::explorer_overhead(2, 1000, 2000)?;
        if ns < best.1 {
            best = (points, ns);
        }
    }
    let (points, ns) = best;
    println!(
        "explorer overhead (micro model: 2 actors x 1000 accesses, random walk, best of 3): \
         {ns:.1} ns per scheduling point ({points:.0} points/s)\n"
    );
    print_growth()?;
    let base = RunOptions {
        jobs,
        ..RunOptions::new("")
    };
    let rows = bench::bench(&dir, seeds_n, &base)?;
    println!(
        "{:<34} {:<27} {:>7} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "scenario", "profile", "found", "exec med", "exec max", "ms med", "ms max", "steps/s"
    );
    for r in rows {
        println!(
            "{:<34} {:<27} {:>4}/{:<2} {:>10} {:>10} {:>10.2} {:>10.2} {:>12.0}",
            r.scenario,
            r.profile,
            r.found,
            r.seeds,
            r.executions_median,
            r.executions_max,
            r.ms_median,
            r.ms_max,
            r.points_per_sec
        );
    }
    let preemptions = 2;
    println!("\nverification within {preemptions} preemptions (DPOR), one worker and two");
    println!(
        "{:<34} {:<27} {:<10} {:>10} {:>12} {:>10} {:>10} {:>8}",
        "scenario", "profile", "verdict", "execs", "steps", "s (1 job)", "s (2 jobs)", "speedup"
    );
    for r in bench::verification(&dir, preemptions)? {
        println!(
            "{:<34} {:<27} {:<10} {:>10} {:>12} {:>10.3} {:>10.3} {:>7.2}x",
            r.scenario,
            r.profile,
            r.verdict,
            r.executions,
            r.steps,
            r.secs_one,
            r.secs_two,
            r.secs_one / r.secs_two.max(1e-9)
        );
    }
    Ok(EXIT_CLEAN)
}

/// The cost-growth rows: µs per step at each size, against the smallest,
/// with the incremental checkers and (up to 1,024 pages, where it still
/// ends in seconds) the full ones. Each row is the best of three runs of
/// at least 30 executions and a quarter of a second, so that a small size
/// is not measured on a cold start or a stolen time slice.
fn print_growth() -> Result<(), CliError> {
    println!(
        "cost growth (two threads each writing half of an anonymous mapping, thp=never, \
         linux-6.5, 1 job, best of 3)"
    );
    println!(
        "{:<8} {:<12} {:>10} {:>12} {:>10} {:>14} {:>10}",
        "pages", "check", "execs", "steps/exec", "us/step", "ms/execution", "vs 64"
    );
    for check in [CheckMode::Incremental, CheckMode::Full] {
        let mut first = None;
        for pages in bench::GROWTH_PAGES {
            if check == CheckMode::Full && pages > 1024 {
                continue;
            }
            let probe = bench::growth(pages, check, 5)?;
            let executions = ((250.0 / probe.ms_per_execution) as u64).clamp(30, 20_000);
            let mut best = bench::growth(pages, check, executions)?;
            for _ in 0..2 {
                let r = bench::growth(pages, check, executions)?;
                if r.us_per_step < best.us_per_step {
                    best = r;
                }
            }
            let r = best;
            let base = *first.get_or_insert(r.us_per_step);
            println!(
                "{:<8} {:<12} {:>10} {:>12.0} {:>10.3} {:>14.2} {:>9.2}x",
                r.pages,
                r.check.name(),
                r.executions,
                r.steps_per_execution,
                r.us_per_step,
                r.ms_per_execution,
                r.us_per_step / base
            );
        }
    }
    println!();
    Ok(())
}

fn cmd_conform(
    seed: u64,
    sequences: u64,
    ops: u64,
    files: bool,
    knobs: Vec<(String, String)>,
    json: bool,
) -> Result<i32, CliError> {
    let program = std::env::current_exe()
        .map_err(|e| CliError::Internal(format!("cannot find the mmrace binary: {e}")))?;
    let opts = mmrace::conform::ConformOptions {
        seed,
        sequences,
        ops,
        files,
        knobs,
        program,
    };
    let r = mmrace::conform::conform(&opts)?;
    if json {
        println!("{}", mmrace::json::conform_json(&r));
    } else {
        print_conform(&r, seed);
    }
    Ok(if r.divergence.is_some() {
        EXIT_FINDING
    } else {
        EXIT_CLEAN
    })
}

fn print_conform(r: &mmrace::conform::ConformReport, seed: u64) {
    let knobs: Vec<String> = r.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "model: {} with {} (calibrated on the host kernel; L2 {})",
        mmrace::conform::CONFORM_PROFILE,
        knobs.join(" "),
        if r.l2 { "on" } else { "off" }
    );
    if let Some(note) = &r.calibration_note {
        println!("note: {note}");
    }
    println!(
        "{} sequences, {} ops, {} divergences, {:.2} s ({:.0} ops/s; host kernel {:.2} s, model {:.2} s)",
        r.sequences,
        r.ops,
        u8::from(r.divergence.is_some()),
        r.elapsed.as_secs_f64(),
        r.ops_per_sec(),
        r.host_time.as_secs_f64(),
        r.model_time.as_secs_f64()
    );
    let Some(d) = &r.divergence else { return };
    println!();
    println!(
        "DIVERGENCE: sequence {} of seed {seed} first differed at op {} of {} ({}); shrunk to {} ops:",
        d.sequence,
        d.original_op,
        d.original_len,
        d.level,
        d.ops.len()
    );
    for (i, op) in d.ops.iter().enumerate() {
        let mark = if i == d.op { "  <== diverges" } else { "" };
        println!("  #{i:<3} {op}{mark}");
    }
    println!("model: {}", mmrace::conform::describe_obs(&d.model));
    println!("host:  {}", mmrace::conform::describe_obs(&d.host));
}

/// The profiles to run a scenario under: the one named, else every
/// profile its expect lines name.
fn profiles_of(file: &std::path::Path, profile: Option<String>) -> Result<Vec<String>, CliError> {
    if let Some(p) = profile {
        return Ok(vec![p]);
    }
    let s = run::load(file)?;
    let mut names: Vec<String> = Vec::new();
    for e in &s.expects {
        if !names.contains(&e.profile) {
            names.push(e.profile.clone());
        }
    }
    if names.is_empty() {
        return Err(CliError::Usage(format!(
            "{} has no expect lines; name a profile with --profile (see `mmrace list`)",
            file.display()
        )));
    }
    Ok(names)
}

fn cmd_verify(
    file: &std::path::Path,
    profile: Option<String>,
    mut opts: mmrace::verify::VerifyOptions,
    json: bool,
    bar: bool,
) -> Result<i32, CliError> {
    let mut code = EXIT_CLEAN;
    for p in profiles_of(file, profile)? {
        opts.profile = p.clone();
        let executions = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let findings = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        opts.progress = Some((executions.clone(), findings.clone()));
        let label = format!("verifying {} under {p}", file.display());
        let meter = Meter {
            label,
            total: None,
            done: executions,
            findings,
            executions: None,
        };
        let progress = Progress::start(meter, bar);
        let r = mmrace::verify::verify(file, &opts);
        progress.stop();
        let r = r?;
        if json {
            let j = mmrace::json::VerifyJson::of(&r);
            println!("{}", serde_json::to_string(&j).unwrap_or_default());
        } else {
            println!("{}", r.summary());
            if let Some(report) = &r.report {
                println!();
                print!("{report}");
            }
            print_statement_lines(&r.scenario, r.clean_statements());
        }
        if r.outcome.found.is_some() {
            code = EXIT_FINDING;
        }
    }
    Ok(code)
}

fn cmd_merge(files: &[PathBuf]) -> Result<i32, CliError> {
    let mut text = String::new();
    if files.is_empty() {
        use std::io::Read;
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Usage(format!("cannot read stdin: {e}")))?;
    } else {
        for f in files {
            let t = std::fs::read_to_string(f)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", f.display())))?;
            text.push_str(&t);
            text.push('\n');
        }
    }
    let merged = mmrace::json::merge(&text).map_err(CliError::Usage)?;
    let mut code = EXIT_CLEAN;
    for m in &merged {
        if m.finding.is_some() {
            code = EXIT_FINDING;
        }
        println!("{}", serde_json::to_string(m).unwrap_or_default());
    }
    Ok(code)
}
