//! Generation behaviour: KV cache, seeds, top-k, cropping, and the sampling distribution.

mod common;

use common::*;
use hearth_lm::infer::sampling::{softmax, top_k_logits};
use hearth_lm::{generate, load_gpt2, Generator, Gpt2Config, Gpt2LMHeadModel, Rng, Sampling};

fn model(case_name: &str) -> Gpt2LMHeadModel {
    let dir = case(case_name);
    let config = Gpt2Config::from_json(&read(dir.join("config.json"))).unwrap();
    load_gpt2(&config, &read(dir.join("model.safetensors")), &ndarray()).unwrap()
}

fn prompt() -> Vec<u32> {
    b"Swimming at the beach is".iter().map(|&b| b as u32).collect()
}

/// Every step's logits with the cache equal a full recomputation of the prefix, also past
/// the 64-token context where the window slides.
#[test]
fn kv_cache_equals_full_recomputation() {
    let m = model("gpt2-bytes-tiny-perturbed");
    let sampling = Sampling::new(1.0, Some(20), None).unwrap();
    let mut cached = Generator::new(&m, &prompt(), sampling, 3).unwrap();
    let mut full = Generator::new(&m, &prompt(), sampling, 3).unwrap().without_cache();
    for step in 0..60 {
        let a = block_on(cached.next_logits()).unwrap();
        let b = block_on(full.next_logits()).unwrap();
        let diff = max_abs_diff(&a, &b);
        assert!(diff < 1e-4, "step {step}: cached logits differ by {diff}");
        let id = Sampling::new(1.0, Some(20), None).unwrap().sample(&a, &mut Rng::new(step));
        cached.push(id).unwrap();
        full.push(id).unwrap();
    }
    assert!(cached.tokens().len() > 64, "the test must cross the context length");
}

#[test]
fn same_seed_same_text_and_other_seed_differs() {
    let m = model("gpt2-bytes-tiny-perturbed");
    let s = Sampling::new(1.0, None, Some(0.95)).unwrap();
    let a = block_on(generate(&m, &prompt(), 30, s, 42)).unwrap();
    let b = block_on(generate(&m, &prompt(), 30, s, 42)).unwrap();
    let c = block_on(generate(&m, &prompt(), 30, s, 43)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn top_k_one_equals_greedy() {
    let m = model("gpt2-bytes-tiny-perturbed");
    let greedy = block_on(generate(&m, &prompt(), 20, Sampling::ArgMax, 0)).unwrap();
    let k1 = block_on(generate(&m, &prompt(), 20, Sampling::new(0.7, Some(1), None).unwrap(), 9)).unwrap();
    let t0 = block_on(generate(&m, &prompt(), 20, Sampling::new(0.0, Some(50), None).unwrap(), 9)).unwrap();
    assert_eq!(k1, greedy);
    assert_eq!(t0, greedy);
    assert_eq!(greedy, ids(&expected("gpt2-bytes-tiny-perturbed")["greedy_new_ids"]));
}

#[test]
fn sampled_tokens_stay_inside_top_k() {
    let m = model("gpt2-bytes-tiny-perturbed");
    let sampling = Sampling::new(2.0, Some(5), None).unwrap();
    let mut g = Generator::new(&m, &prompt(), sampling, 11).unwrap();
    for _ in 0..40 {
        let logits = block_on(g.next_logits()).unwrap();
        let allowed: Vec<u32> = top_k_logits(&logits, 5).into_iter().map(|(id, _)| id).collect();
        let id = sampling.sample(&logits, &mut Rng::new(g.tokens().len() as u64));
        assert!(allowed.contains(&id));
        g.push(id).unwrap();
    }
}

/// A prompt longer than the context is cropped to its last window.
#[test]
fn long_prompt_is_cropped_to_the_last_window() {
    let m = model("gpt2-bytes-tiny-perturbed");
    let long: Vec<u32> = (0..150).map(|i| (i * 7 % 256) as u32).collect();
    let a = block_on(generate(&m, &long, 5, Sampling::ArgMax, 0)).unwrap();
    let b = block_on(generate(&m, &long[150 - 64..], 5, Sampling::ArgMax, 0)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn bad_prompts_are_errors() {
    let m = model("gpt2-bytes-tiny");
    assert!(Generator::new(&m, &[], Sampling::ArgMax, 0).is_err());
    assert!(Generator::new(&m, &[300], Sampling::ArgMax, 0).is_err());
}

/// LLMs-from-scratch ch. 5's example: 1,000 draws over a 9-word vocabulary follow the softmax
/// at temperature 1 and its sharpening at temperature 0.1.
#[test]
// The book's logits; 6.28 for `toward` is not an approximation of τ.
#[allow(clippy::approx_constant)]
fn draw_frequencies_follow_the_tempered_softmax() {
    // closer, every, effort, forward, inches, moves, pizza, toward, you
    let logits = [4.51f32, 0.89, -1.90, 6.75, 1.63, -1.62, -1.89, 6.28, 1.79];
    for temperature in [1.0f32, 0.1] {
        let scaled: Vec<f32> = logits.iter().map(|l| l / temperature).collect();
        let want = softmax(&scaled);
        let sampling = Sampling::new(temperature, None, None).unwrap();
        let mut rng = Rng::new(123);
        let mut counts = [0usize; 9];
        for _ in 0..1000 {
            counts[sampling.sample(&logits, &mut rng) as usize] += 1;
        }
        for (i, &c) in counts.iter().enumerate() {
            let freq = c as f64 / 1000.0;
            // Four standard deviations of a binomial proportion, plus a little slack.
            let sd = (want[i] * (1.0 - want[i]) / 1000.0).sqrt();
            assert!(
                (freq - want[i]).abs() <= 4.0 * sd + 0.003,
                "T={temperature}: id {i} freq {freq} vs p {}",
                want[i]
            );
        }
        if temperature == 0.1 {
            assert!(counts[3] > 980, "T=0.1 sharpens towards `forward`: {counts:?}");
        } else {
            assert!(counts[3] > 500 && counts[7] > 280 && counts[0] > 40, "T=1: {counts:?}");
        }
    }
}

/// Choosing on the device (one index for greedy, `k` logits for top-k) draws exactly the tokens
/// the host draws from the whole row with the same seed, on both CPU backends.
#[test]
fn tokens_chosen_on_the_device_equal_the_host_choice() {
    for (label, device) in cpu_devices() {
        let dir = case("gpt2-bytes-tiny-perturbed");
        let config = Gpt2Config::from_json(&read(dir.join("config.json"))).unwrap();
        let m = load_gpt2(&config, &read(dir.join("model.safetensors")), &device).unwrap();
        for sampling in [
            Sampling::ArgMax,
            Sampling::new(0.8, Some(40), None).unwrap(),
            Sampling::new(1.3, Some(5), Some(0.8)).unwrap(),
            Sampling::new(1.0, None, Some(0.9)).unwrap(),
        ] {
            let mut device_side = Generator::new(&m, &prompt(), sampling, 11).unwrap();
            let mut host_side = Generator::new(&m, &prompt(), sampling, 11).unwrap();
            let mut rng = Rng::new(11);
            for step in 0..25 {
                let chosen = block_on(device_side.step()).unwrap();
                let logits = block_on(host_side.next_logits()).unwrap();
                let want = sampling.sample(&logits, &mut rng);
                host_side.push(want).unwrap();
                assert_eq!(chosen, want, "{label} {sampling:?} step {step}");
            }
        }
    }
}
