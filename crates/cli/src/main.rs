//! `hearth`: the native command line for Hearth's jobs on Hugging Face checkpoints.
//! The only place (with the web app) that touches files, clocks and backends.

mod bench;
mod chat;
mod checkpoint_dir;
mod device;
mod generate;
mod handoff;
mod inside;
mod inspect;
mod memory;
mod model_dir;
mod predict;
mod tokenize;
mod train;

use clap::{Parser, Subcommand};

/// Small language models, on your own machine.
#[derive(Parser, Debug)]
#[command(name = "hearth", version, about)]
struct Cli {
    /// Compute backend: `flex` (pure-Rust CPU, multi-threaded), `ndarray`, or `wgpu` (a GPU through
    /// Vulkan, Metal or DX12, running the browser's WebGPU kernels).
    #[arg(long, global = true, default_value = "flex")]
    device: device::Backend,
    /// How a loaded model stores its matrices for inference: `f32`, or `f16` (half the memory;
    /// needs a device that computes in f16: flex, or a GPU with shader-f16). Training uses f32.
    #[arg(long, global = true, default_value = "f32")]
    weights: hearth_lm::model::precision::WeightDtype,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Token ids, token strings and attention mask of a text.
    Tokenize(tokenize::TokenizeArgs),
    /// Text of token ids.
    Decode(tokenize::DecodeArgs),
    /// Top-k predictions for every [MASK] with a BERT masked LM.
    FillMask(predict::FillMaskArgs),
    /// Continue a prompt with a causal LM (GPT-2, Llama, SmolLM2, Qwen2.5, Qwen3).
    Generate(generate::GenerateArgs),
    /// Chat with an instruct checkpoint through its chat template (interactive, or --message).
    Chat(chat::ChatArgs),
    /// Mean next-token cross-entropy and perplexity of a text.
    Score(predict::ScoreArgs),
    /// Pretrain a GPT-2 (causal) or BERT (masked) model on a text file.
    Train(Box<train::TrainArgs>),
    /// Loss and perplexity of a model on a text file.
    Eval(train::EvalArgs),
    /// Hand a training run to Hugging Face Trainer: its checkpoint, data order and train_hf.py.
    Handoff(handoff::HandoffArgs),
    /// The module tree of a model with shapes and parameter counts.
    Inspect(inspect::InspectArgs),
    /// Attention weights of every layer and head for a text.
    Attention(inside::AttentionArgs),
    /// The logit lens of a decoder: what each layer would predict at each position.
    Lens(inside::LensArgs),
    /// A token's nearest neighbours by cosine in the input embeddings.
    Embed(inside::EmbedArgs),
    /// Generation tokens/s (GPT-2 124M) and fill-mask latency (BERT-base), random weights.
    Bench(bench::BenchArgs),
}

#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help and --version
        Err(e) => {
            // clap's usage block would follow; one line is what scripts and people need.
            let message = e.to_string();
            let lines: Vec<&str> = message
                .lines()
                .map(str::trim)
                .take_while(|l| {
                    !l.starts_with("Usage:") && !l.starts_with("tip:") && !l.starts_with("For more")
                })
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("{} (see --help)", lines.join(" "));
            std::process::exit(2);
        }
    };
    // A panic is a bug, but the user still gets one line and exit code 1, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if reader_went_away(&what) {
            std::process::exit(0);
        }
        eprintln!("error: internal error ({what}); this is a bug in hearth, please report it");
        std::process::exit(1);
    }));
    device::set_weights(cli.weights);
    let result = match cli.command {
        Command::Tokenize(a) => tokenize::tokenize(a),
        Command::Decode(a) => tokenize::decode(a),
        // Only commands that compute start a device (a GPU takes a moment, and may be absent).
        command => cli.device.device().and_then(|device| run_on(command, &device)),
    };
    if let Err(message) = result {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

/// Whether a panic is `println!`'s on a closed stdout. `hearth ... | head` closes the pipe once it
/// has its lines; Rust ignores SIGPIPE, so the next print panics with "failed printing to stdout:
/// Broken pipe". The reader has what it asked for: Unix tools end quietly there, and so does
/// hearth (exit 0), rather than report a bug. Every other panic is still one.
fn reader_went_away(panic: &str) -> bool {
    panic.starts_with("failed printing to stdout") && panic.contains("Broken pipe")
}

/// Runs a command on a started device (tokenizing needs none, but is run the same way here).
fn run_on(command: Command, device: &burn::tensor::Device) -> CliResult {
    match command {
        Command::Tokenize(a) => tokenize::tokenize(a),
        Command::Decode(a) => tokenize::decode(a),
        Command::FillMask(a) => predict::fill_mask(a, device),
        Command::Generate(a) => generate::run(a, device),
        Command::Chat(a) => chat::run(a, device),
        Command::Score(a) => predict::score(a, device),
        Command::Train(a) => train::train(*a, device),
        Command::Eval(a) => train::eval(a, device),
        Command::Handoff(a) => handoff::run(a, device),
        Command::Inspect(a) => inspect::run(a, device),
        Command::Attention(a) => inside::attention(a, device),
        Command::Lens(a) => inside::lens(a, device),
        Command::Embed(a) => inside::embed(a, device),
        Command::Bench(a) => bench::run(a, device),
    }
}

/// Every command returns its failure as one printable line.
pub type CliResult = Result<(), String>;

/// Prints `value` as one line of JSON.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_closed_stdout_is_a_quiet_exit() {
        assert!(super::reader_went_away("failed printing to stdout: Broken pipe (os error 32)"));
        assert!(!super::reader_went_away("failed printing to stdout: No space left on device (os error 28)"));
        assert!(!super::reader_went_away("index out of bounds: Broken pipe"));
    }
}
