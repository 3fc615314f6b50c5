//! Checkpoints: GPT-2 names and layouts, exact round trips, and clear errors on bad files.

mod common;
use common::randn;

use rlhf_lab::checkpoint::{from_safetensors, hf_config, parse_config, to_safetensors, Checkpoint};
use rlhf_lab::config::preset;
use rlhf_lab::corpus::Corpus;
use rlhf_lab::params::ParamLayout;
use rlhf_lab::rng::Rng;
use rlhf_lab::tokenizer::Tokenizer;
use safetensors::SafeTensors;

fn model() -> (rlhf_lab::config::ModelConfig, Vec<f32>) {
    let cfg = preset("tiny").unwrap().model;
    let n = ParamLayout::new(&cfg).total;
    (cfg, randn(&mut Rng::new(1), n, 1.0))
}

#[test]
fn safetensors_round_trip_is_exact_and_uses_gpt2_names_and_layouts() {
    let (cfg, params) = model();
    let bytes = to_safetensors(&cfg, &params, &[]).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let c = cfg.n_embd;
    assert_eq!(st.tensor("transformer.wte.weight").unwrap().shape(), &[cfg.vocab_size, c]);
    assert_eq!(st.tensor("transformer.h.1.attn.c_attn.weight").unwrap().shape(), &[c, 3 * c]);
    assert_eq!(st.tensor("transformer.h.0.mlp.c_proj.weight").unwrap().shape(), &[4 * c, c]);
    assert_eq!(st.tensor("transformer.ln_f.bias").unwrap().shape(), &[c]);
    // Conv1D stores (in, out): element [i][o] of HF's c_attn is our qkvw[o][i]
    let lay = ParamLayout::new(&cfg);
    let hf = st.tensor("transformer.h.0.attn.c_attn.weight").unwrap();
    let v = |k: usize| f32::from_le_bytes(hf.data()[4 * k..4 * k + 4].try_into().unwrap());
    let (i, o) = (3, 5);
    assert_eq!(v(i * 3 * c + o), params[lay.offsets[rlhf_lab::params::QKVW] + o * c + i]);
    let (back, extra) = from_safetensors(&cfg, &bytes).unwrap();
    assert_eq!(back, params);
    assert!(extra.is_empty());
}

#[test]
fn bad_files_fail_with_clear_messages() {
    let (cfg, params) = model();
    let bytes = to_safetensors(&cfg, &params, &[]).unwrap();
    let err = from_safetensors(&cfg, &bytes[..bytes.len() - 100]).unwrap_err();
    assert!(err.message.contains("truncated or corrupted"), "{err}");
    let mut bad = bytes.clone();
    bad[10] = b'#';
    let err = from_safetensors(&cfg, &bad).unwrap_err();
    assert!(err.message.contains("truncated or corrupted"), "{err}");
    let err = from_safetensors(&cfg, b"not a file").unwrap_err();
    assert!(err.message.contains("truncated or corrupted"), "{err}");
    // a config that disagrees with the weights
    let mut wider = cfg;
    wider.n_embd = cfg.n_embd * 2;
    let Err(err) = from_safetensors(&wider, &bytes) else { panic!("a wider config must not load") };
    assert!(err.message.contains("shape"), "{err}");
    let mut deeper = cfg;
    deeper.n_layer = 3;
    let err = from_safetensors(&deeper, &bytes).unwrap_err();
    assert!(err.message.contains("lacks tensor transformer.h.2"), "{err}");
    // a tensor of the wrong dtype
    let half = vec![0u8; cfg.n_embd * 2];
    let mut views = vec![];
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for (name, t) in st.tensors() {
        if name == "transformer.ln_f.bias" {
            views.push((name, safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![cfg.n_embd], &half).unwrap()));
        } else {
            views.push((name, t));
        }
    }
    let f16 = safetensors::serialize(views, None).unwrap();
    let err = from_safetensors(&cfg, &f16).unwrap_err();
    assert!(err.message.contains("dtype"), "{err}");
    // never write NaN
    let mut nan = params.clone();
    nan[7] = f32::NAN;
    assert!(to_safetensors(&cfg, &nan, &[]).unwrap_err().message.contains("NaN"));
}

#[test]
fn config_json_is_gpt2_and_round_trips() {
    let (cfg, _) = model();
    let v = hf_config(&cfg, 2, None);
    assert_eq!(v["model_type"], "gpt2");
    assert_eq!(v["activation_function"], "gelu_new");
    assert_eq!(parse_config(&v.to_string()).unwrap(), cfg);
    assert!(parse_config("{").unwrap_err().message.contains("not valid JSON"));
    assert!(parse_config(r#"{"model_type":"llama"}"#).unwrap_err().message.contains("gpt2"));
    assert!(parse_config(r#"{"model_type":"gpt2","vocab_size":10}"#).unwrap_err().message.contains("n_positions"));
    let odd = r#"{"model_type":"gpt2","vocab_size":10,"n_positions":8,"n_layer":1,"n_head":3,"n_embd":16}"#;
    assert!(parse_config(odd).unwrap_err().message.contains("multiple"));
}

#[test]
fn a_saved_checkpoint_loads_back_with_its_tokenizer() {
    let (cfg, params) = model();
    let corpus = Corpus::generate(200, 1);
    let tok = Tokenizer::train(&corpus.all_text(), cfg.vocab_size).unwrap();
    let dir = std::env::temp_dir().join(format!("rlhf-ck-{}", std::process::id()));
    let ck = Checkpoint {
        cfg,
        params: params.clone(),
        extra: Default::default(),
        tokenizer_json: tok.to_json().unwrap(),
        config_json: hf_config(&cfg, tok.end, None),
    };
    ck.save(&dir).unwrap();
    let back = Checkpoint::load(&dir).unwrap();
    assert_eq!(back.cfg, cfg);
    assert_eq!(back.params, params);
    let tok2 = Tokenizer::from_json(&back.tokenizer_json).unwrap();
    let text = "<|user|>Tell me about tea.<|assistant|>Sure! Tea is lovely.<|end|>";
    assert_eq!(tok2.encode(text).unwrap(), tok.encode(text).unwrap());
    std::fs::write(dir.join("model.safetensors"), b"garbage").unwrap();
    assert!(Checkpoint::load(&dir).err().unwrap().message.contains("truncated or corrupted"));
    std::fs::remove_file(dir.join("config.json")).unwrap();
    assert!(Checkpoint::load(&dir).err().unwrap().message.contains("cannot read"));
    std::fs::remove_dir_all(&dir).ok();
}
