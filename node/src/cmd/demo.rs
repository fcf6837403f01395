//! `pogo demo`: the whole protocol end to end on the embedded chain.

use std::path::PathBuf;

use clap::Args;

use super::OutputArgs;
use crate::demo::{print_summary, run, DemoOptions};

/// Arguments of `pogo demo`.
#[derive(Args, Debug)]
#[command(after_help = "Registers the task (keys from the INSECURE seeded setup are made in --params-dir if missing, \
about a minute; the verifier of the default configuration ships in pogo, other configurations compile it with solc \
0.8.19: scripts/solc/install.sh), then runs --rounds rounds in which three honest miners compete, and a round in \
which one honest miner competes with three cheaters (a new model wrong in one block, which the sampled proof \
misses unless it samples that block and the verifiers then prove wrong on chain with a fraud proof; an update that \
does not lower the loss; one that changes nothing), with three verifiers, a lazy one (it attests positive without \
rebuilding, and loses part of its stake to the fraud proof) and a finalizer, printing each step and a summary \
table. Works from any directory with only the pogo binary.\n\nExamples:\n  pogo demo\n  pogo demo --task tasks/licenses.json --rounds 3\n  \
pogo demo --chain http://127.0.0.1:8545     # against Anvil")]
pub struct DemoArgs {
    /// The task file [default: the digits task shipped in pogo, written into --dir]
    #[arg(long)]
    task: Option<PathBuf>,
    /// Honest rounds.
    #[arg(long, default_value_t = 2)]
    rounds: u64,
    /// Skip the cheating miners.
    #[arg(long)]
    no_cheats: bool,
    /// Working folder (an earlier demo's is wiped).
    #[arg(long, default_value = "demo-out")]
    dir: PathBuf,
    /// Where circuit keys live.
    #[arg(long, env = "POGO_PARAMS", default_value = "params")]
    params_dir: PathBuf,
    /// Sampled blocks per proof.
    #[arg(long, default_value_t = 2)]
    samples: usize,
    /// A development JSON-RPC node (Anvil) instead of the embedded chain.
    #[arg(long)]
    chain: Option<String>,
    /// Seats of each round's committee, drawn by stake from the verifiers (0: no
    /// committee; see `pogo task create --help`).
    #[arg(long, default_value_t = 0)]
    committee: u16,
    /// Committee seats a candidate needs verdicts from [default: half the seats, rounded up].
    #[arg(long, requires = "committee")]
    committee_quorum: Option<u16>,
    #[command(flatten)]
    output: OutputArgs,
}

pub(super) fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let opts = DemoOptions {
        task: args.task,
        rounds: args.rounds,
        cheats: !args.no_cheats,
        dir: args.dir,
        params_dir: args.params_dir,
        samples: args.samples,
        chain: args.chain,
        committee: args.committee,
        committee_quorum: args.committee_quorum,
    };
    let json = args.output.json;
    let summary = run(&opts, &mut |line| {
        if !json {
            println!("{line}")
        }
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("summaries serialize"));
    } else {
        print_summary(&summary);
    }
    Ok(())
}
