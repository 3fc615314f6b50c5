//! The command line against bad input, as a new user would try it: every probe ends with a clear
//! message and a failing exit code, never a panic, and long runs check their output folder first.

use std::io::Read;
use std::process::{Command, Stdio};

fn rlhf(args: &[&str]) -> (i32, String, String) {
    rlhf_in(args, "")
}

/// Fails with `want` in the message (and no panic): exit code 2 for a command line that cannot be
/// read (clap's), 1 for a run that cannot start.
fn refused(args: &[&str], want: &str) {
    let (code, _, err) = rlhf(args);
    assert!(code == 1 || code == 2, "{args:?} should fail: {code} {err}");
    assert!(err.contains(want), "{args:?}: expected '{want}' in: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

const TINY: [&str; 4] = ["--model", "www/assets/tiny", "--labeler", "polite"];

fn align(extra: &[&str]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = ["align"].iter().chain(TINY.iter()).copied().collect();
    v.extend(extra.iter().map(|s| -> &'static str { Box::leak(s.to_string().into_boxed_str()) }));
    v
}

#[test]
fn every_alignment_option_is_checked_before_any_work() {
    refused(&align(&["--beta", "-1"]), "β (the KL coefficient) must be a number in [0, 10], got -1");
    refused(&align(&["--beta", "nan"]), "β (the KL coefficient) must be a number in [0, 10], got NaN");
    refused(&align(&["--gamma", "nan"]), "γ (the pretraining coefficient) must be a number in [0, 1000], got NaN");
    refused(&align(&["--lr", "-1"]), "the learning rate must be a number in (0, 0.01], got -1");
    refused(&align(&["--lr", "1e30"]), "the learning rate must be a number in (0, 0.01], got 1000000000000000000000000000000");
    refused(&align(&["--rollouts", "0"]), "rollouts per iteration must be 1 to 1024, got 0");
    refused(&align(&["--rankings-per-iteration", "0"]), "rankings per iteration must be 1 to 64, got 0");
    refused(&align(&["--max-tokens", "0"]), "the answer length in tokens must be 1 to 126, got 0");
    refused(&align(&["--temperature", "0"]), "the temperature must be a number in (0, 10], got 0");
    refused(&align(&["--k", "10"]), "K (answers per ranking) must be 2 to 9, got 10");
    refused(&align(&["--ptx-rows", "0"]), "prose rows per step must be 1 to 9, got 0");
    refused(
        &align(&["--ptx-rows", "8", "--favourites", "1", "--own-best", "1"]),
        "prose rows per step (8), favourite answers per step (1), SFT favourites per step (0) and own favourites per step (1) must add up to at most 9: lower one of them",
    );
    refused(&align(&["--eval-samples", "0"]), "invalid value '0' for '--eval-samples <EVAL_SAMPLES>': must be at least 1, got 0");
    refused(&align(&["--beta", "x"]), "invalid value 'x' for '--beta <BETA>': 'x' is not a valid number");
    refused(&align(&["--baseline", "critic"]), "invalid value 'critic' for '--baseline <BASELINE>': must be value or group, not 'critic'");
    refused(&align(&["--method", "sgd"]), "invalid value 'sgd' for '--method <METHOD>': must be ppo or dpo or rloo or bok, not 'sgd'");
    refused(&align(&["--rm-others", "5"]), "answers to other questions must be 0 to 4, got 5");
    refused(&align(&["--rm-read", "mean"]), "invalid value 'mean' for '--rm-read <RM_READ>': must be last or answer, not 'mean'");
    refused(&align(&["--noise", "0.7"]), "invalid value '0.7' for '--noise <NOISE>': must be in [0, 0.5), got 0.7");
}

#[test]
fn unknown_options_are_errors_and_help_works_for_every_command() {
    refused(&["generate", "--model", "www/assets/tiny", "--prompt", "hi", "--sample", "3"], "unexpected argument '--sample' found");
    refused(
        &["generate", "--model", "www/assets/tiny", "--prompt", "hi", "--temperature", "nan"],
        "must be a number of at least 0 (0 is greedy), got NaN",
    );
    refused(
        &["eval", "--model", "www/assets/tiny", "--reference", "www/assets/tiny", "--labeler", "polite", "--samples", "0"],
        "invalid value '0' for '--samples <SAMPLES>': must be at least 1, got 0",
    );
    refused(
        &["align", "--model", "www/assets/tiny", "--labeler", "kind"],
        "unknown labeler 'kind'; choose one of: polite, concise, on_topic, cheerful, practical, gloomy",
    );
    refused(&["frobnicate"], "unrecognized subcommand 'frobnicate'");
    for cmd in ["pretrain", "generate", "logits", "align", "compare", "eval", "rank", "score", "bench"] {
        let (code, out, err) = rlhf(&[cmd, "--help"]);
        assert_eq!(code, 0, "{cmd} --help: {err}");
        assert!(out.contains(&format!("Usage: rlhf {cmd}")), "{cmd} --help printed: {out}");
    }
    let (code, out, _) = rlhf(&["--help"]);
    assert!(code == 0 && out.contains("Commands:"));
}

#[test]
fn a_bad_model_folder_is_refused_before_anything_is_allocated() {
    let dir = std::env::temp_dir().join(format!("rlhf-huge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = std::fs::read_to_string("www/assets/tiny/config.json").unwrap().replace("\"n_embd\": 32", "\"n_embd\": 4000000");
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(std::path::Path::new("www/assets/tiny").join(f), dir.join(f)).unwrap();
    }
    refused(&["generate", "--model", dir.to_str().unwrap(), "--prompt", "hi"], "n_embd 4000000 is larger than this lab handles");
    refused(&["generate", "--model", "/nonexistent", "--prompt", "hi"], "cannot read /nonexistent/config.json");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_output_folder_that_cannot_be_written_fails_before_the_run() {
    let file = std::env::temp_dir().join(format!("rlhf-out-file-{}", std::process::id()));
    std::fs::write(&file, "not a folder").unwrap();
    let t0 = std::time::Instant::now();
    refused(&align(&["--out", file.to_str().unwrap()]), "is a file, not a folder");
    refused(&align(&["--out", "/proc/rlhf-lab-out"]), "cannot create /proc/.rlhf-lab-out.partial");
    refused(&align(&["--rm-read", "answer", "--out", "/tmp/rlhf-never-written"]), "has no GPT2ForSequenceClassification form");
    assert!(t0.elapsed().as_secs() < 20, "refused before training");
    std::fs::remove_file(file).unwrap();
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        // enough logits (tokens × vocabulary) to overflow the pipe's buffer, so the write meets the closed end
        .args(["logits", "--model", "www/assets/tiny", "--text", &"Tea is made from the leaves of a plant. ".repeat(2)])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child.stderr.as_mut().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(status.success(), "{status:?}: {err}");
}

/// `eval` of the tiny model against itself, polite, on the first two held-out prompts.
fn eval_tiny<'a>(samples: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let base = ["eval", "--model", "www/assets/tiny", "--reference", "www/assets/tiny", "--labeler", "polite", "--prompts", "2", "--samples"];
    [&base[..], &[samples], extra].concat()
}

#[test]
fn a_reward_model_written_by_align_judges_best_of_n_and_anything_else_is_refused() {
    let judge = eval_tiny("1", &["--best-of", "2"]);
    refused(&[&judge[..], &["--judge", "www/assets/tiny"]].concat(), "holds no score.weight: not a reward model");
    refused(&[&judge[..], &["--judge", "www/assets/demo-missing"]].concat(), "cannot read www/assets/demo-missing/config.json");
    let out = std::env::temp_dir().join(format!("rlhf-judge-{}", std::process::id()));
    let (code, _, err) = rlhf(&align(&["--rankings", "2", "--eval-prompts", "1", "--eval-samples", "1", "--out", out.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let rm = out.join("reward_model");
    let (code, stdout, err) = rlhf(&[&judge[..], &["--judge", rm.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!((v["best_of"].as_u64(), v["judge"].as_str()), (Some(2), rm.to_str()), "{stdout}");
    assert!((0.0..=1.0).contains(&v["win_rate"].as_f64().unwrap()), "{stdout}");
    scores_agree_with_the_judge(rm.to_str().unwrap());
    std::fs::remove_dir_all(out).unwrap();
}

/// `score` gives the reward model's scores: of a model's answers to the held-out prompts, with
/// the labeler's rule beside them, the same again when those answers come in on stdin, and their
/// mean is what `eval --judge` reports for the model's own answers (best of 1).
fn scores_agree_with_the_judge(rm: &str) {
    let (code, stdout, err) = rlhf(&["score", "--reward-model", rm, "--answers-of", "www/assets/tiny", "--labeler", "polite", "--samples", "2"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2 * rlhf_lab::corpus::prompt_split().1.len(), "two answers to every held-out prompt");
    let (first, second) = (&rows[0], &rows[1]);
    let labeler = rlhf_lab::labelers::Labeler::new(rlhf_lab::labelers::Rule::Polite);
    let (p, a) = (first["prompt"].as_str().unwrap(), first["answer"].as_str().unwrap());
    assert_eq!(first["rule"].as_f64().unwrap() as f32, labeler.score(p, a), "{first}");
    let line = serde_json::json!({ "prompt": p, "responses": [a, second["answer"]] }).to_string() + "\n";
    let again = pipe(&["score", "--reward-model", rm], &line);
    let again: serde_json::Value = serde_json::from_str(again.trim()).unwrap();
    let reward = |row: &serde_json::Value| row["reward"].as_f64().unwrap();
    for (got, row) in again["scores"].as_array().unwrap().iter().zip([first, second]) {
        assert!((got.as_f64().unwrap() - reward(row)).abs() < 1e-4, "{again} against {row}");
    }
    // the first two prompts' answers, as eval draws them
    let (code, stdout, err) = rlhf(&eval_tiny("2", &["--judge", rm]));
    assert_eq!(code, 0, "{err}");
    let mean = serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()["judge_mean_score"].as_f64().unwrap();
    let want = rows[..4].iter().map(reward).sum::<f64>() / 4.0;
    assert!((mean - want).abs() < 1e-4, "eval's judged mean {mean}, score's {want}");
    refused(&["score", "--reward-model", rm, "--answers-of", "www/assets/tiny"], "--answers-of needs --labeler");
    let (code, _, err) = rlhf_in(&["score", "--reward-model", rm], "{\"prompt\": 3}\n");
    assert!(code == 1 && err.contains("a line of stdin") && !err.contains("panicked"), "{err}");
}

/// `rlhf args` with `input` on stdin.
fn rlhf_in(args: &[&str], input: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rlhf");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The stdout of a successful `rlhf args` with `input` on stdin.
fn pipe(args: &[&str], input: &str) -> String {
    let (code, out, err) = rlhf_in(args, input);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}
