//! `hearth chat`: talk to an instruct checkpoint through its own chat template.
//!
//! Interactive by default (each line of stdin is a turn; `/reset` forgets the conversation,
//! `/prompt` prints what the model saw last); one-shot with `--message` (and `--json` for
//! scripts). A reply ends at one of `generation_config.json`'s eos ids, as `transformers`'
//! `generate` ends it, or at `--max-new-tokens`. The sampling defaults are the checkpoint's own
//! (`do_sample`, `temperature`, `top_k`, `top_p`), which the flags override.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use burn::tensor::Device;
use clap::Args;
use hearth_lm::chat::{ChatTemplate, GenerationConfig, Message, Now};
use hearth_lm::model::causal::CausalLm;
use hearth_lm::{Generator, ModelConfig, Sampling, Tokenizer};
use serde_json::json;

use crate::model_dir::{self, read_json};
use crate::{print_json, CliResult};

#[derive(Args, Debug)]
pub struct ChatArgs {
    /// Hugging Face directory of an instruct checkpoint (a chat template in tokenizer_config.json
    /// or chat_template.jinja).
    #[arg(long)]
    model: PathBuf,
    /// The system prompt (else the template's own default, if it has one).
    #[arg(long)]
    system: Option<String>,
    /// One turn, answered once (no interactive session).
    #[arg(long)]
    message: Option<String>,
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Overrides generation_config.json; 0 is greedy.
    #[arg(long, allow_negative_numbers = true)]
    temperature: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    top_k: Option<i64>,
    #[arg(long, allow_negative_numbers = true)]
    top_p: Option<f32>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the rendered prompt before each reply.
    #[arg(long)]
    show_prompt: bool,
    /// One JSON object: the rendered prompt, its ids, the reply and why it stopped (with --message).
    #[arg(long)]
    json: bool,
}

const MAX_NEW_TOKENS: usize = 100_000;

/// What a reply was and why it ended.
struct Reply {
    ids: Vec<u32>,
    text: String,
    stopped_at_eos: bool,
}

struct Session<'a> {
    model: &'a dyn CausalLm,
    tokenizer: &'a Tokenizer,
    template: ChatTemplate,
    eos: Vec<u32>,
    sampling: Sampling,
    max_new_tokens: usize,
    seed: u64,
}

impl Session<'_> {
    fn prompt(&self, messages: &[Message]) -> Result<(String, Vec<u32>), String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        self.template.prompt(self.tokenizer, messages, Now { unix_seconds: now }).map_err(|e| e.to_string())
    }

    /// Generates after `prompt`, calling `show` with the reply's text so far after each token.
    fn reply(&self, prompt: &[u32], turn: u64, mut show: impl FnMut(&str)) -> Result<Reply, String> {
        let seed = self.seed.wrapping_add(turn);
        let mut generator =
            Generator::new(self.model, prompt, self.sampling, seed).map_err(|e| e.to_string())?;
        let mut stopped_at_eos = false;
        for _ in 0..self.max_new_tokens {
            pollster::block_on(generator.step()).map_err(|e| e.to_string())?;
            let new = generator.new_tokens();
            show(&self.tokenizer.decode_plain(new).map_err(|e| e.to_string())?);
            if new.last().is_some_and(|id| self.eos.contains(id)) {
                stopped_at_eos = true;
                break;
            }
        }
        let ids = generator.new_tokens().to_vec();
        // As transformers decodes a reply: every new id, special tokens (the usual eos) skipped.
        let text = self.tokenizer.decode_plain(&ids).map_err(|e| e.to_string())?;
        Ok(Reply { ids, text, stopped_at_eos })
    }
}

/// The template and generation config beside the weights. A directory without a template is a
/// base model: `hearth generate` continues text, chat needs the turns' format.
fn read_chat_files(dir: &Path) -> Result<(ChatTemplate, GenerationConfig), String> {
    let optional = |name: &str| -> Result<Option<Vec<u8>>, String> {
        let path = dir.join(name);
        if path.exists() {
            read_json(&path).map(Some)
        } else {
            Ok(None)
        }
    };
    let config = optional("tokenizer_config.json")?;
    let jinja = optional("chat_template.jinja")?;
    let template = ChatTemplate::from_files(config.as_deref(), jinja.as_deref())
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .ok_or_else(|| {
            format!(
                "{} has no chat template (tokenizer_config.json's chat_template or chat_template.jinja): \
                 it is a base model; use `hearth generate` to continue text",
                dir.display()
            )
        })?;
    Ok((template, generation_config(dir)?))
}

/// `generation_config.json` of a model directory; without one, what transformers uses instead:
/// `config.json`'s eos ids.
pub fn generation_config(dir: &Path) -> Result<GenerationConfig, String> {
    let path = dir.join("generation_config.json");
    if path.exists() {
        return GenerationConfig::from_json(&read_json(&path)?)
            .map_err(|e| format!("{}: {e}", dir.display()));
    }
    let config = ModelConfig::from_json(&read_json(&dir.join("config.json"))?)
        .map_err(|e| format!("{}: config.json: {e}", dir.display()))?;
    Ok(GenerationConfig::from_model_config(&config))
}

/// The flags over the checkpoint's defaults: greedy unless it samples (`do_sample`) or a flag asks.
fn sampling(args: &ChatArgs, g: &GenerationConfig) -> Result<(Sampling, String), String> {
    let top_k = match args.top_k {
        Some(k) if k < 1 => return Err(format!("top-k must be at least 1, got {k}")),
        Some(k) => Some(k as usize),
        None => None,
    };
    let samples = g.do_sample == Some(true);
    let temperature = args.temperature.unwrap_or(if samples { g.temperature.unwrap_or(1.0) } else { 0.0 });
    let top_k = top_k.or(if samples { g.top_k } else { None });
    let top_p = args.top_p.or(if samples { g.top_p } else { None });
    let s = Sampling::new(temperature, top_k, top_p).map_err(|e| e.to_string())?;
    let from = if args.temperature.is_none() && samples { " (generation_config.json)" } else { "" };
    let described = if temperature == 0.0 {
        "greedy".to_string()
    } else {
        format!(
            "temperature {temperature}, top-k {}, top-p {}{from}",
            top_k.map_or("off".into(), |k| k.to_string()),
            top_p.map_or("off".into(), |p| p.to_string())
        )
    };
    Ok((s, described))
}

pub fn run(args: ChatArgs, device: &Device) -> CliResult {
    if args.max_new_tokens == 0 || args.max_new_tokens > MAX_NEW_TOKENS {
        return Err(format!(
            "max-new-tokens must be between 1 and {MAX_NEW_TOKENS}, got {}",
            args.max_new_tokens
        ));
    }
    if args.json && args.message.is_none() {
        return Err("--json answers one --message; without it chat is interactive".into());
    }
    let (template, generation) = read_chat_files(&args.model)?;
    let (sampling, described) = sampling(&args, &generation)?;
    let (model, tokenizer) = model_dir::load_decoder(&args.model, device, "chat")?;
    let eos = template.eos_ids(&generation, &tokenizer);
    let session = Session {
        model: model.causal().expect("load_decoder returns a decoder"),
        tokenizer: &tokenizer,
        template,
        eos,
        sampling,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
    };
    let mut messages: Vec<Message> = args.system.iter().map(|s| Message::new("system", s)).collect();

    if let Some(message) = &args.message {
        messages.push(Message::new("user", message));
        let (prompt_text, prompt) = session.prompt(&messages)?;
        if args.json {
            let reply = session.reply(&prompt, 0, |_| {})?;
            print_json(&json!({
                "prompt": prompt_text,
                "prompt_ids": prompt,
                "new_ids": reply.ids,
                "reply": reply.text,
                "stop": if reply.stopped_at_eos { "eos" } else { "max_new_tokens" },
                "eos_token_ids": session.eos,
                "sampling": described,
            }));
        } else {
            if args.show_prompt {
                eprintln!("{prompt_text}");
            }
            let reply = session.reply(&prompt, 0, stream_to_stdout())?;
            println!();
            if !reply.stopped_at_eos {
                eprintln!("(stopped at --max-new-tokens {})", args.max_new_tokens);
            }
        }
        return Ok(());
    }

    eprintln!(
        "Chatting with {} ({described}; a reply ends at eos ids {:?} or {} tokens). \
         One line per turn; /reset starts over, /prompt shows what the model saw, Ctrl-D ends.",
        args.model.display(),
        session.eos,
        args.max_new_tokens
    );
    let stdin = std::io::stdin();
    let mut last_prompt = String::new();
    let mut turn = 0u64;
    loop {
        eprint!("> ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).map_err(|e| format!("cannot read stdin: {e}"))? == 0 {
            eprintln!();
            return Ok(());
        }
        let line = line.trim_end_matches(['\n', '\r']);
        match line.trim() {
            "" => continue,
            "/reset" => {
                messages.truncate(usize::from(args.system.is_some()));
                eprintln!("(the conversation starts over)");
                continue;
            }
            "/prompt" => {
                eprintln!("{last_prompt}");
                continue;
            }
            _ => {}
        }
        messages.push(Message::new("user", line));
        let (prompt_text, prompt) = match session.prompt(&messages) {
            Ok(p) => p,
            Err(e) => {
                // A template that refuses this conversation (say, roles out of order): the turn
                // is dropped and the session goes on.
                messages.pop();
                eprintln!("error: {e}");
                continue;
            }
        };
        if args.show_prompt {
            eprintln!("{prompt_text}");
        }
        last_prompt = prompt_text;
        let reply = session.reply(&prompt, turn, stream_to_stdout())?;
        println!();
        messages.push(Message::new("assistant", &reply.text));
        turn += 1;
    }
}

/// Prints the part of the reply not printed yet (whole characters only: a multi-byte character
/// split over tokens prints once complete).
fn stream_to_stdout() -> impl FnMut(&str) {
    let mut printed = String::new();
    move |text: &str| {
        if let Some(fresh) = text.strip_prefix(printed.as_str()) {
            if !fresh.ends_with('\u{fffd}') {
                print!("{fresh}");
                let _ = std::io::stdout().flush();
                printed = text.to_string();
            }
        }
    }
}
