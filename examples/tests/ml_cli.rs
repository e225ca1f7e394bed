//! The `netanalyzer-ml` CLI contract: `train --csv ... --out`, `evaluate
//! --json` (macro_f1, benign_fpr, per-class precision/recall/f1), `inspect`.

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netanalyzer-ml"))
}

/// Runs `cmd`, asserts it succeeded (showing its standard error) and
/// parses its standard output as JSON.
fn json_of(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A small CNS2022-layout CSV: three separable classes over 10 minutes.
fn fixture(path: &Path) {
    let mut s = String::from("id,Src IP,Dst Port,Protocol,Timestamp,Flow Duration,Total Fwd Packet,Total Bwd packets,SYN Flag Count,Label\n");
    for i in 0..300 {
        let (label, dur, fwd, bwd, syn) = match i % 3 {
            0 => ("BENIGN", 5000 + i * 7, 10 + i % 5, 9 + i % 4, 1),
            1 => ("DoS Slowloris", 100_000_000 + i, 3, 1, 1),
            _ => ("Portscan", 40 + i % 9, 1, 1, 1 + i % 2),
        };
        s += &format!(
            "{i},10.0.0.{},{},6,2017-07-07 10:{:02}:{:02}.0,{dur},{fwd},{bwd},{syn},{label}\n",
            i % 250,
            80 + i,
            i / 60,
            i % 60
        );
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn train_evaluate_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("flows.csv");
    let model = dir.path().join("m.model");
    fixture(&csv);
    let j = json_of(
        bin()
            .args(["train", "--csv"])
            .arg(&csv)
            .arg("--out")
            .arg(&model)
            .args([
                "--trees",
                "5",
                "--seed",
                "3",
                "--description",
                "cli test",
                "--json",
            ]),
    );
    assert_eq!(j["trees"], 5);
    assert_eq!(j["test_rows"], 90);
    assert!(j["metrics"]["macro_f1"].as_f64().unwrap() > 0.9);

    let j = json_of(
        bin()
            .arg("evaluate")
            .arg("--model")
            .arg(&model)
            .arg("--csv")
            .arg(&csv)
            .arg("--json"),
    );
    let macro_f1 = j["macro_f1"].as_f64().unwrap();
    assert!((0.9..=1.0).contains(&macro_f1), "{macro_f1}");
    assert!(j["benign_fpr"].as_f64().unwrap() <= 0.05);
    let classes = j["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 3);
    for c in classes {
        for k in ["precision", "recall", "f1"] {
            assert!(c[k].as_f64().is_some(), "{k} in {c}");
        }
        assert!(c["class"].is_string());
    }
    assert!(j["confusion"].is_array());

    // Plain text evaluate prints the table and the confusion matrix.
    let out = bin()
        .arg("evaluate")
        .arg("--model")
        .arg(&model)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("macro_f1") && text.contains("confusion"),
        "{text}"
    );

    let j = json_of(
        bin()
            .arg("inspect")
            .arg("--model")
            .arg(&model)
            .arg("--json"),
    );
    assert_eq!(j["training"]["description"], "cli test");
    assert_eq!(j["binds"], true);
    assert!(j["model_version"].as_str().unwrap().starts_with("rf-"));
    assert_eq!(j["feature_names"].as_array().unwrap().len(), 5);
    assert!(j["metrics"]["macro_f1"].is_number());

    // A missing file is a clear error, not a panic.
    let out = bin()
        .arg("inspect")
        .arg("--model")
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}
