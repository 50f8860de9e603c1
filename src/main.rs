//! `ringkv [/path/to/redis.conf] [--flag value ...]`
//!
//! ringkv's own flags are parsed by clap; like redis-server, every other
//! `--name value...` pair is taken as a redis.conf directive.

use clap::Parser;
use ringkv::config::{self, Config, IoKind};

#[global_allocator]
static GLOBAL: ringkv::alloc::Counting = ringkv::alloc::Counting;

#[derive(Parser, Debug)]
#[command(
    name = "ringkv",
    version,
    about = "A Redis-compatible in-memory data store on core-pinned io_uring shard loops",
    after_help = "Any redis.conf directive is also accepted as `--name value` (e.g. --save \"\" --hz 20)."
)]
struct Cli {
    /// Path to a redis.conf-style configuration file.
    config: Option<String>,
    /// TCP port to listen on.
    #[arg(long)]
    port: Option<String>,
    /// Addresses to listen on (space separated, as redis.conf's bind).
    #[arg(long, num_args = 1..)]
    bind: Vec<String>,
    /// Number of shard threads (default: one per CPU the process may use).
    #[arg(long)]
    shards: Option<usize>,
    /// CPUs to pin shards to, e.g. 0-3,8 (shard i -> i-th CPU of the list).
    #[arg(long)]
    cpus: Option<String>,
    /// Do not pin shard threads to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Event-loop backend.
    #[arg(long, value_parser = ["uring", "epoll"], default_value = "uring")]
    io: String,
    /// Number of databases.
    #[arg(long)]
    databases: Option<String>,
    /// Password clients must AUTH with.
    #[arg(long)]
    requirepass: Option<String>,
    /// Maximum number of connected clients.
    #[arg(long)]
    maxclients: Option<String>,
    /// Close idle clients after this many seconds (0 = never).
    #[arg(long)]
    timeout: Option<String>,
}

const CLAP_FLAGS: &[&str] = &[
    "port",
    "bind",
    "shards",
    "cpus",
    "no-pin",
    "io",
    "databases",
    "requirepass",
    "maxclients",
    "timeout",
    "help",
    "version",
];

fn fail(msg: &str) -> ! {
    eprintln!("ringkv: {msg}");
    std::process::exit(1);
}

fn main() {
    // Split argv: ringkv's flags go to clap, other --name value... pairs are
    // redis.conf directives (values run until the next --flag).
    let argv: Vec<String> = std::env::args().collect();
    let mut clap_args = vec![argv[0].clone()];
    let mut directives: Vec<(String, Vec<String>)> = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let a = &argv[i];
        if let Some(name) = a.strip_prefix("--") {
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (name.to_string(), None),
            };
            let mut vals: Vec<String> = inline.into_iter().collect();
            let mut j = i + 1;
            while j < argv.len() && !(argv[j].starts_with("--") && argv[j].len() > 2) {
                vals.push(argv[j].clone());
                j += 1;
            }
            if CLAP_FLAGS.contains(&name.as_str()) {
                clap_args.push(format!("--{name}"));
                clap_args.extend(vals);
            } else {
                directives.push((name, vals));
            }
            i = j;
        } else {
            clap_args.push(a.clone());
            i += 1;
        }
    }
    let cli = match Cli::try_parse_from(clap_args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print and succeed; a bad flag exits 1.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };

    let mut cfg = Config::default();
    if let Some(path) = &cli.config {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| fail(&format!("can't open config file '{path}': {e}")));
        if let Err(e) = cfg.load_text(&text, path) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        cfg.file = Some(
            std::fs::canonicalize(path)
                .map(|p| p.display().to_string())
                .unwrap_or(path.clone()),
        );
    }
    let mut set = |name: &str, vals: Vec<String>| {
        if let Err(e) = cfg.apply(name, &vals) {
            fail(&format!("bad value for --{name} {}: {e}", vals.join(" ")));
        }
    };
    for (name, vals) in directives {
        if config::param(&name).is_none() {
            fail(&format!("unknown option --{name} (not a ringkv flag nor a known redis.conf directive; see --help)"));
        }
        set(&name, vals);
    }
    if let Some(v) = cli.port {
        set("port", vec![v]);
    }
    if !cli.bind.is_empty() {
        set("bind", cli.bind);
    }
    if let Some(v) = cli.databases {
        set("databases", vec![v]);
    }
    if let Some(v) = cli.requirepass {
        set("requirepass", vec![v]);
    }
    if let Some(v) = cli.maxclients {
        set("maxclients", vec![v]);
    }
    if let Some(v) = cli.timeout {
        set("timeout", vec![v]);
    }
    if let Some(n) = cli.shards {
        if n == 0 || n > 1024 {
            fail("--shards must be between 1 and 1024");
        }
        cfg.shards = Some(n);
    }
    if let Some(c) = &cli.cpus {
        let list = config::parse_cpu_list(c).unwrap_or_else(|e| fail(&format!("--cpus: {e}")));
        let allowed = ringkv::server::allowed_cpus();
        if let Some(bad) = list.iter().find(|c| !allowed.contains(c)) {
            fail(&format!(
                "--cpus: CPU {bad} is not available to this process (allowed: {allowed:?})"
            ));
        }
        cfg.cpus = Some(list);
    }
    cfg.pin = !cli.no_pin;
    cfg.io = if cli.io == "epoll" {
        IoKind::Epoll
    } else {
        IoKind::Uring
    };
    std::process::exit(ringkv::server::run(cfg));
}
