//! Pretraining data: corpus checks, the run tokenizers (chars, bytes, trained BPE, built-ins),
//! windows and splits, seeded resumable batches and masked-LM corruption.

use std::collections::BTreeSet;

use hearth_lm::train::{
    build_tokenizer, encode_corpus, eval_batches, mask_tokens, special_token_ids, Batcher, Corpus,
    DataConfig, Dataset, Split, TokenizerChoice, END_OF_TEXT,
};
use hearth_lm::{Error, Rng, Tokenizer};

/// A small English text with the usual punctuation, blank lines and indentation.
const PROSE: &str = "The fire in the hearth had burned low by the time the travellers came in from the rain.
Their coats were heavy with water, and their boots left dark prints across the stone floor.

\"Sit down, sit down,\" said the keeper of the inn, pushing two chairs toward the warmth.
    She brought bread, and cheese, and a jug of something hot that smelled of apples and cloves.
The older traveller laughed: it was the first time in three days that anyone had laughed.

Outside, the wind kept on at the shutters; inside, the fire took the new log and climbed again.
They talked of the road behind them, of the river that had risen over the ford, of the bridge
that was no longer there. The keeper listened, and nodded, and filled the cups a second time.
";

fn corpus(text: &str) -> Corpus {
    Corpus::from_bytes(text.as_bytes()).unwrap()
}

fn tokenizer(choice: &str, text: &str, masked_lm: bool) -> Tokenizer {
    build_tokenizer(&choice.parse().unwrap(), &corpus(text), masked_lm).unwrap()
}

fn invalid_message<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::InvalidInput(message)) => message,
        other => panic!("expected an InvalidInput error, got {other:?}"),
    }
}

// ----- tokenizer choice ------------------------------------------------------------------------

#[test]
fn tokenizer_choices_parse_and_print_back() {
    let cases = [
        ("chars", TokenizerChoice::Chars),
        ("bytes", TokenizerChoice::Bytes),
        ("gpt2", TokenizerChoice::Gpt2),
        ("bert-base-uncased", TokenizerChoice::BertBaseUncased),
        ("bpe:260", TokenizerChoice::Bpe(260)),
        ("bpe:8192", TokenizerChoice::Bpe(8192)),
        ("bpe:65536", TokenizerChoice::Bpe(65536)),
    ];
    for (text, choice) in cases {
        assert_eq!(text.parse::<TokenizerChoice>().unwrap(), choice);
        assert_eq!(choice.to_string(), text);
    }
}

#[test]
fn bad_tokenizer_choices_are_explained() {
    let unknown = invalid_message("gpt3".parse::<TokenizerChoice>());
    for choice in ["chars", "bytes", "gpt2", "bert-base-uncased", "bpe:N"] {
        assert!(unknown.contains(choice), "{unknown}");
    }
    for bad in ["bpe:259", "bpe:65537", "bpe:0"] {
        assert!(invalid_message(bad.parse::<TokenizerChoice>()).contains("between 260 and 65536"), "{bad}");
    }
    assert!(invalid_message("bpe:lots".parse::<TokenizerChoice>()).contains("whole number"));
    assert!(
        invalid_message(build_tokenizer(&TokenizerChoice::Bpe(100), &corpus(PROSE), false)).contains("260")
    );
}

// ----- corpus ------------------------------------------------------------------------------------

#[test]
fn corpus_counts_chars_and_drops_a_byte_order_mark() {
    let c = corpus("héllo, 日本\n");
    assert_eq!(c.chars(), 10);
    assert_eq!(c.documents(), ["héllo, 日本\n"]);
    let with_bom = Corpus::from_bytes("\u{feff}abc".as_bytes()).unwrap();
    assert_eq!(with_bom.documents(), ["abc"]);
    assert_eq!(with_bom.chars(), 3);
}

#[test]
fn corpus_rejects_binary_invalid_and_empty_input() {
    let invalid = invalid_message(Corpus::from_bytes(b"abc\xff\xfedef"));
    assert!(invalid.contains("not UTF-8 text (invalid byte at offset 3)"), "{invalid}");
    assert!(invalid.contains("binary file"), "{invalid}");

    let nul = invalid_message(Corpus::from_bytes(b"text\0\x01\x02more"));
    assert!(nul.contains("NUL byte (at offset 4)") && nul.contains("binary file"), "{nul}");

    // A PNG header: invalid UTF-8 at byte 0.
    let png = invalid_message(Corpus::from_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
    assert!(png.contains("offset 0"), "{png}");

    for empty in [&b""[..], b"   \n\t\r\n", "\u{feff}".as_bytes()] {
        assert!(invalid_message(Corpus::from_bytes(empty)).contains("the corpus is empty"));
    }
}

// ----- chars --------------------------------------------------------------------------------------

#[test]
fn chars_tokenizer_ranks_chars_by_code_point() {
    let text = "hello world\nhi there\n";
    let t = tokenizer("chars", text, false);
    // Distinct chars sorted: '\n' ' ' 'd' 'e' 'h' 'i' 'l' 'o' 'r' 't' 'w', then [UNK].
    assert_eq!(t.vocab_size(), 12);
    assert_eq!(t.token_to_id("\n"), Some(0));
    assert_eq!(t.token_to_id(" "), Some(1));
    assert_eq!(t.token_to_id("w"), Some(10));
    assert_eq!(t.token_to_id("[UNK]"), Some(11));
    assert_eq!(t.encode_ids("hello\n").unwrap(), vec![4, 3, 6, 6, 7, 0]);
    assert_eq!(t.encode_ids("the world").unwrap(), vec![9, 4, 3, 1, 10, 7, 8, 6, 2]);
    // A char the corpus never showed is [UNK]; the known ids around it are unaffected.
    assert_eq!(t.encode_ids("hex").unwrap(), vec![4, 3, 11]);
}

#[test]
fn chars_tokenizer_round_trips_exactly() {
    let t = tokenizer("chars", PROSE, false);
    let ids = encode_corpus(&t, &corpus(PROSE)).unwrap();
    assert_eq!(ids.len(), PROSE.chars().count(), "one token per char");
    assert_eq!(t.decode(&ids).unwrap(), PROSE);
    // Runs of spaces, blank lines and leading/trailing whitespace survive.
    let tricky = "  the\n\n\n    keeper  \n ";
    assert_eq!(t.decode(&t.encode_ids(tricky).unwrap()).unwrap(), tricky);
    let distinct: BTreeSet<char> = PROSE.chars().collect();
    assert_eq!(t.vocab_size(), distinct.len() + 1);
    assert_eq!(t.token_to_id("\n"), Some(0));
}

// ----- bytes ---------------------------------------------------------------------------------------

#[test]
fn bytes_tokenizer_ids_are_utf8_bytes() {
    let t = tokenizer("bytes", PROSE, false);
    assert_eq!(t.vocab_size(), 256);
    for text in ["Swimming at the beach is", "héllo wörld ✓ 日本語\n\t\r\n", " \u{0}\u{7f}", PROSE] {
        let ids = t.encode_ids(text).unwrap();
        let bytes: Vec<u32> = text.bytes().map(u32::from).collect();
        assert_eq!(ids, bytes, "{text:?}");
        assert_eq!(t.decode(&ids).unwrap(), text);
    }
    // The vocabulary spells bytes the way GPT-2 does.
    let gpt2 = Tokenizer::builtin("gpt2").unwrap();
    for id in 0..256u32 {
        let token = t.id_to_token(id).unwrap();
        assert!(gpt2.token_to_id(&token).is_some(), "byte {id} is {token:?}, unknown to GPT-2");
    }
    assert_eq!(t.id_to_token(32).as_deref(), Some("Ġ"));
    assert_eq!(t.id_to_token(10).as_deref(), Some("Ċ"));
    assert_eq!(t.id_to_token(b'A' as u32).as_deref(), Some("A"));
}

// ----- trained BPE ------------------------------------------------------------------------------------

#[test]
fn bpe_trains_round_trips_and_is_deterministic() {
    let text = PROSE.repeat(3);
    let t = tokenizer("bpe:300", &text, false);
    assert_eq!(t.vocab_size(), 300);
    assert_eq!(t.token_to_id(END_OF_TEXT), Some(0));
    let ids = encode_corpus(&t, &corpus(&text)).unwrap();
    // 43 merges learned from the text itself: ~40% fewer tokens than bytes, " the" is one token.
    assert!(t.token_to_id("Ġthe").is_some());
    assert!(
        ids.len() * 10 < text.len() * 7,
        "{} tokens for {} bytes: merges should compress",
        ids.len(),
        text.len()
    );
    assert_eq!(t.decode(&ids).unwrap(), text);
    // Text it never saw, including bytes outside the corpus, still round-trips (byte-level).
    let unseen = "Zebras quietly vex 日本 ✓ — 42\n";
    assert_eq!(t.decode(&t.encode_ids(unseen).unwrap()).unwrap(), unseen);
    // `<|endoftext|>` is a special token, not split into bytes.
    assert_eq!(t.encode_ids("<|endoftext|>").unwrap(), vec![0]);

    let again = tokenizer("bpe:300", &text, false);
    assert_eq!(again.to_json().unwrap(), t.to_json().unwrap());
    assert_eq!(again.encode_ids(unseen).unwrap(), t.encode_ids(unseen).unwrap());
}

// ----- every tokenizer through tokenizer.json ----------------------------------------------------

#[test]
fn every_tokenizer_survives_its_tokenizer_json() {
    let text = PROSE.repeat(3);
    let samples = [PROSE, "Zebras quietly vex 日本 ✓", "  spaced\n\nout  ", "a [MASK] here", "[UNK] [CLS]"];
    for choice in ["chars", "bytes", "gpt2", "bert-base-uncased", "bpe:300"] {
        for masked_lm in [false, true] {
            let t = tokenizer(choice, &text, masked_lm);
            let json = t.to_json().unwrap();
            let value: serde_json::Value = serde_json::from_str(&json).unwrap();
            for key in ["version", "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder"]
            {
                assert!(value.get(key).is_some(), "{choice}: tokenizer.json lacks `{key}`");
            }
            assert!(value["model"]["vocab"].is_object(), "{choice}: no model vocab");
            let back = Tokenizer::from_bytes(json.as_bytes()).unwrap();
            assert_eq!(back.vocab_size(), t.vocab_size(), "{choice}");
            for sample in samples {
                let ids = t.encode_ids(sample).unwrap();
                assert_eq!(
                    back.encode_ids(sample).unwrap(),
                    ids,
                    "{choice} masked_lm={masked_lm}: {sample:?}"
                );
                assert_eq!(back.decode(&ids).unwrap(), t.decode(&ids).unwrap());
            }
        }
    }
}

// ----- masked-LM special tokens --------------------------------------------------------------------

#[test]
fn masked_lm_adds_missing_special_tokens_after_the_vocabulary() {
    let text = PROSE.repeat(3);
    let n_chars = PROSE.chars().collect::<BTreeSet<char>>().len() as u32;
    // (choice, id of the first appended token, [UNK] id)
    let cases = [("chars", n_chars + 1, n_chars), ("bytes", 256, 257), ("bpe:300", 300, 301)];
    for (choice, first, unk) in cases {
        let plain = tokenizer(choice, &text, false);
        let t = tokenizer(choice, &text, true);
        assert_eq!(t.token_to_id("[UNK]"), Some(unk), "{choice}");
        let appended: Vec<Option<u32>> =
            ["[PAD]", "[CLS]", "[SEP]", "[MASK]"].iter().map(|tok| t.token_to_id(tok)).collect();
        let want: Vec<Option<u32>> = (first..).take(5).filter(|&id| id != unk).take(4).map(Some).collect();
        assert_eq!(appended, want, "{choice}");
        assert_eq!(t.vocab_size(), (first + 4 + u32::from(unk >= first)) as usize, "{choice}");
        // The existing ids do not move, and [MASK] in text is the special token.
        assert_eq!(t.encode_ids("the keeper").unwrap(), plain.encode_ids("the keeper").unwrap(), "{choice}");
        let mask = t.token_to_id("[MASK]").unwrap();
        assert!(t.encode_ids("a [MASK] b").unwrap().contains(&mask), "{choice}");
        let specials = special_token_ids(&t);
        for tok in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] {
            assert!(specials.contains(&t.token_to_id(tok).unwrap()), "{choice}: {tok} is not special");
        }
    }

    let bert = tokenizer("bert-base-uncased", PROSE, true);
    assert_eq!(bert.token_to_id("[MASK]"), Some(103));
    assert_eq!(bert.vocab_size(), 30522);
    assert_eq!(special_token_ids(&bert), vec![0, 100, 101, 102, 103]);

    let gpt2 = tokenizer("gpt2", PROSE, true);
    assert_eq!(gpt2.token_to_id("[PAD]"), Some(50257));
    assert_eq!(gpt2.token_to_id("[MASK]"), Some(50261));
    assert_eq!(special_token_ids(&tokenizer("gpt2", PROSE, false)), vec![50256]);
}

// ----- encoding the corpus ----------------------------------------------------------------------------

#[test]
fn encode_corpus_in_pieces_equals_one_piece() {
    // > 64 KiB with whitespace of every kind around line breaks, so pieces are cut.
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 200_000 {
        text.push_str(PROSE);
        text.push_str(["\n\n  \n", "  \n", "\r\n", "\n\t", "x\ny\n", "é\n日\n"][i % 6]);
        text.push_str(&format!("Line {i}'s end. "));
        i += 1;
    }
    let c = corpus(&text);
    for choice in ["chars", "bytes", "gpt2", "bert-base-uncased"] {
        let t = tokenizer(choice, &text, false);
        let whole = t.inner().encode(text.as_str(), false).unwrap().get_ids().to_vec();
        assert_eq!(encode_corpus(&t, &c).unwrap(), whole, "{choice}");
    }
    // No [CLS]/[SEP] around the corpus.
    let bert = tokenizer("bert-base-uncased", PROSE, false);
    let ids = encode_corpus(&bert, &corpus(PROSE)).unwrap();
    assert!(!ids.contains(&101) && !ids.contains(&102));
}

// ----- dataset ----------------------------------------------------------------------------------------

fn config(context: usize, stride: usize, val_fraction: f64) -> DataConfig {
    DataConfig { context, stride, val_fraction, packing: Default::default() }
}

fn counting_dataset(tokens: u32, cfg: &DataConfig) -> Dataset {
    Dataset::new((0..tokens).collect(), tokens as usize * 3, tokens as usize, cfg).unwrap()
}

#[test]
fn dataset_splits_from_the_end_and_counts_windows() {
    let data = counting_dataset(1000, &config(9, 5, 0.1));
    let stats = data.stats();
    assert_eq!((stats.tokens, stats.chars, stats.vocab_size), (1000, 3000, 1000));
    assert_eq!((stats.train_tokens, stats.val_tokens), (900, 100));
    // Windows of 10 tokens every 5: (900 - 10) / 5 + 1 and (100 - 10) / 5 + 1.
    assert_eq!((stats.train_windows, stats.val_windows), (179, 19));
    assert_eq!(data.windows(Split::Train), 179);
    assert_eq!(data.windows(Split::Val), 19);
    assert_eq!(data.window(Split::Train, 0), (0..10).collect::<Vec<u32>>());
    assert_eq!(data.window(Split::Train, 3), (15..25).collect::<Vec<u32>>());
    assert_eq!(data.window(Split::Val, 0), (900..910).collect::<Vec<u32>>());
    assert_eq!(data.window(Split::Val, 18), (990..1000).collect::<Vec<u32>>());
    assert_eq!(data.config(), &config(9, 5, 0.1));
}

#[test]
fn windows_never_cross_the_split_boundary() {
    for (tokens, context, stride, val) in
        [(1000, 9, 5, 0.1), (777, 31, 7, 0.25), (500, 16, 16, 0.5), (64, 8, 3, 0.0)]
    {
        let data = counting_dataset(tokens, &config(context, stride, val));
        let train_end = data.stats().train_tokens as u32;
        for i in 0..data.windows(Split::Train) {
            let w = data.window(Split::Train, i);
            assert_eq!(w.len(), context + 1);
            assert!(*w.last().unwrap() < train_end, "train window {i} reaches {}", w.last().unwrap());
        }
        for i in 0..data.windows(Split::Val) {
            let w = data.window(Split::Val, i);
            assert_eq!(w.len(), context + 1);
            assert!(w[0] >= train_end && *w.last().unwrap() < tokens);
        }
        // The last train window is the last that fits.
        let last = data.window(Split::Train, data.windows(Split::Train) - 1);
        assert!(last.last().unwrap() + stride as u32 >= train_end);
    }
    let no_val = counting_dataset(64, &config(8, 3, 0.0));
    assert_eq!(no_val.windows(Split::Val), 0);
    assert!(eval_batches(&no_val, Split::Val, 4, 2, true).is_empty());
}

#[test]
fn dataset_rejects_bad_settings_and_short_corpora() {
    let tokens: Vec<u32> = (0..100).collect();
    let new = |cfg: DataConfig| Dataset::new(tokens.clone(), 100, 100, &cfg).map(|_| ());
    assert!(invalid_message(new(config(0, 1, 0.1))).contains("context"));
    assert!(invalid_message(new(config(8, 0, 0.1))).contains("stride"));
    for bad in [0.6, -0.1, f64::NAN, f64::INFINITY] {
        assert!(invalid_message(new(config(8, 8, bad))).contains("validation fraction"), "{bad}");
    }

    let train_short = invalid_message(new(config(127, 1, 0.0)));
    assert!(train_short.contains("100 tokens") && train_short.contains("needs 128"), "{train_short}");
    assert!(train_short.contains("smaller context"), "{train_short}");
    // 10 validation tokens cannot hold a window of 16.
    let val_short = invalid_message(new(config(15, 1, 0.1)));
    assert!(val_short.contains("validation split gets only 10"), "{val_short}");
    assert!(new(config(15, 1, 0.0)).is_ok());
    assert!(new(config(9, 1, 0.1)).is_ok(), "10 tokens hold exactly one window of 10");

    let outside = invalid_message(Dataset::new(vec![1, 2, 300], 3, 256, &config(1, 1, 0.0)));
    assert!(outside.contains("300") && outside.contains("256"), "{outside}");
}

// ----- batches -----------------------------------------------------------------------------------------

fn first_tokens(batch: &hearth_lm::train::Batch) -> Vec<u32> {
    batch.inputs.chunks(batch.context).map(|row| row[0]).collect()
}

#[test]
fn batches_are_shifted_windows() {
    let data = counting_dataset(400, &config(8, 4, 0.1));
    let batch = Batcher::new(1).next_batch(&data, 5, true);
    assert_eq!((batch.batch_size, batch.context), (5, 8));
    assert_eq!(batch.inputs.len(), 40);
    for (row, target) in batch.inputs.chunks(8).zip(batch.targets.chunks(8)) {
        // Counting tokens: a window starting at s is s..s+9.
        assert_eq!(row[0] % 4, 0, "windows start every stride");
        let window: Vec<u32> = (row[0]..row[0] + 9).collect();
        assert_eq!(row, &window[..8]);
        assert_eq!(target, &window[1..]);
        assert!(window[8] < 360, "train windows only");
    }
}

#[test]
fn same_seed_same_batches_other_seed_other_batches() {
    let data = counting_dataset(2000, &config(16, 8, 0.1));
    let (mut a, mut b, mut c) = (Batcher::new(7), Batcher::new(7), Batcher::new(8));
    let run = |batcher: &mut Batcher| (0..30).map(|_| batcher.next_batch(&data, 4, true)).collect::<Vec<_>>();
    let (xs, ys, zs) = (run(&mut a), run(&mut b), run(&mut c));
    assert_eq!(xs, ys);
    assert_ne!(xs, zs);
    assert_eq!(a, b);
}

#[test]
fn each_epoch_is_a_new_permutation_of_the_train_windows() {
    let data = counting_dataset(300, &config(8, 4, 0.0));
    let windows = data.windows(Split::Train);
    assert_eq!(windows, 73);
    let mut batcher = Batcher::new(3);
    let mut epochs = Vec::new();
    for epoch in 0..3 {
        assert_eq!(batcher.epoch(), epoch);
        let firsts: Vec<u32> =
            (0..windows).map(|_| first_tokens(&batcher.next_batch(&data, 1, true))[0]).collect();
        let mut sorted = firsts.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..windows as u32).map(|i| i * 4).collect::<Vec<u32>>(), "epoch {epoch}");
        assert_ne!(firsts, sorted, "epoch {epoch} is shuffled");
        epochs.push(firsts);
    }
    assert_eq!(batcher.epoch(), 3);
    assert_ne!(epochs[0], epochs[1]);
    assert_ne!(epochs[1], epochs[2]);

    // A batch larger than an epoch wraps into the next one and still covers each window once.
    let mut big = Batcher::new(3);
    let batch = big.next_batch(&data, windows + 5, true);
    assert_eq!(first_tokens(&batch)[..windows], epochs[0][..]);
    assert_eq!(first_tokens(&batch)[windows..], epochs[1][..5]);
    assert_eq!((big.epoch(), big.position()), (1, 5));
}

#[test]
fn a_resumed_batcher_continues_exactly() {
    let data = counting_dataset(1000, &config(16, 5, 0.1));
    let windows = data.windows(Split::Train);
    let mut uninterrupted = Batcher::new(42);
    let mut interrupted = Batcher::new(42);
    // Stop mid-epoch, save, and restore from JSON (as a checkpoint would).
    for _ in 0..7 {
        assert_eq!(uninterrupted.next_batch(&data, 12, true), interrupted.next_batch(&data, 12, true));
    }
    assert!(interrupted.position() > 0 && interrupted.position() < windows);
    let saved = serde_json::to_string(&interrupted).unwrap();
    drop(interrupted);
    let mut resumed: Batcher = serde_json::from_str(&saved).unwrap();
    assert_eq!(resumed, uninterrupted);
    // Across several epoch boundaries.
    for _ in 0..3 * windows / 12 {
        assert_eq!(resumed.next_batch(&data, 12, true), uninterrupted.next_batch(&data, 12, true));
    }
    assert!(resumed.epoch() >= 3);
    assert_eq!(resumed, uninterrupted);
}

#[test]
fn eval_batches_are_fixed_and_evenly_spaced() {
    let data = counting_dataset(1000, &config(9, 5, 0.1));
    let val = eval_batches(&data, Split::Val, 4, 2, true);
    assert_eq!(val, eval_batches(&data, Split::Val, 4, 2, true));
    // 8 of 19 validation windows at indices j * 19 / 8: 0, 2, 4, 7, 9, 11, 14, 16.
    assert_eq!(val.len(), 2);
    let firsts: Vec<u32> = val.iter().flat_map(first_tokens).collect();
    let want: Vec<u32> = [0, 2, 4, 7, 9, 11, 14, 16].iter().map(|i| 900 + 5 * i).collect();
    assert_eq!(firsts, want);
    assert_eq!(val[0].targets[..9], (901..910).collect::<Vec<u32>>()[..]);

    // More asked than there are: every window once, the last batch smaller.
    let all = eval_batches(&data, Split::Val, 8, 10, true);
    assert_eq!(all.iter().map(|b| b.batch_size).collect::<Vec<_>>(), vec![8, 8, 3]);
    let firsts: Vec<u32> = all.iter().flat_map(first_tokens).collect();
    assert_eq!(firsts, (0..19).map(|i| 900 + 5 * i).collect::<Vec<u32>>());

    let train = eval_batches(&data, Split::Train, 16, 3, true);
    assert_eq!(train.len(), 3);
    assert!(train.iter().all(|b| b.batch_size == 16 && b.inputs.len() == 16 * 9));
    assert!(eval_batches(&data, Split::Train, 0, 3, true).is_empty());
}

// ----- masked LM ---------------------------------------------------------------------------------------

#[test]
fn mask_tokens_follows_bert_rates() {
    let (vocab, mask, row_len, rows) = (1000usize, 3u32, 128usize, 2000usize);
    let specials = [0u32, 1, 2, 3];
    let mut draw = Rng::new(5);
    let mut inputs = Vec::with_capacity(rows * row_len);
    for _ in 0..rows {
        inputs.push(1); // [CLS]
        inputs.extend((0..row_len - 3).map(|_| 4 + draw.below(vocab - 4) as u32));
        inputs.extend([2, 0]); // [SEP] [PAD]
    }
    let (corrupted, labels) = mask_tokens(&inputs, row_len, vocab, mask, &specials, &mut Rng::new(11));
    assert_eq!((corrupted.len(), labels.len()), (inputs.len(), inputs.len()));

    let (mut chosen, mut masked, mut random, mut kept) = (0usize, 0usize, 0usize, 0usize);
    for ((&original, &now), &label) in inputs.iter().zip(&corrupted).zip(&labels) {
        if specials.contains(&original) {
            assert_eq!((now, label), (original, None), "special positions are never chosen");
            continue;
        }
        match label {
            None => assert_eq!(now, original, "unchosen positions are untouched"),
            Some(l) => {
                assert_eq!(l, original, "labels hold the original id");
                chosen += 1;
                if now == mask {
                    masked += 1;
                } else if now == original {
                    kept += 1;
                } else {
                    assert!(!specials.contains(&now) && (now as usize) < vocab, "random id {now}");
                    random += 1;
                }
            }
        }
    }
    let eligible = rows * (row_len - 3);
    let rate = chosen as f64 / eligible as f64;
    assert!((rate - 0.15).abs() < 0.005, "chosen rate {rate}");
    let share = |n: usize| n as f64 / chosen as f64;
    assert!((share(masked) - 0.8).abs() < 0.015, "masked {}", share(masked));
    assert!((share(random) - 0.1).abs() < 0.01, "random {}", share(random));
    assert!((share(kept) - 0.1).abs() < 0.01, "kept {}", share(kept));

    // Seeded: the same draws give the same corruption.
    assert_eq!(mask_tokens(&inputs, row_len, vocab, mask, &specials, &mut Rng::new(11)), (corrupted, labels));
}

#[test]
fn mask_tokens_gives_every_row_a_label() {
    // Rows of 4 with 2 specials: most rows would draw no position at 15%.
    let inputs: Vec<u32> = (0..4000).flat_map(|i| [1, 10 + i % 50, 20 + i % 30, 2]).collect();
    let (corrupted, labels) = mask_tokens(&inputs, 4, 100, 3, &[0, 1, 2, 3], &mut Rng::new(2));
    for (row, (row_labels, row_now)) in inputs.chunks(4).zip(labels.chunks(4).zip(corrupted.chunks(4))) {
        assert!(row_labels.iter().any(Option::is_some), "row {row:?} has no label");
        assert_eq!((row_labels[0], row_labels[3]), (None, None));
        assert_eq!((row_now[0], row_now[3]), (1, 2));
    }
    // A row of specials only stays as it is.
    let (same, none) = mask_tokens(&[1, 0, 0, 2], 4, 100, 3, &[0, 1, 2, 3], &mut Rng::new(2));
    assert_eq!((same, none), (vec![1, 0, 0, 2], vec![None; 4]));
}
