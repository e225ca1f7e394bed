//! Replays the committed fuzz corpora of the ml decoders (`model_decode`,
//! `cic_csv`) with the same property checks as the fuzz targets.
//!
//! The seed corpora are written by the ignored test `make_corpus`:
//!
//! ```text
//! cargo test -p netanalyzer-ml --test decode -- --ignored make_corpus
//! ```

#[path = "decode/props.rs"]
mod props;

use std::path::PathBuf;

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(name)
}

fn replay(name: &str, check: fn(&[u8])) -> usize {
    let dir = corpus(name);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.unwrap().path();
        check(&std::fs::read(&path).unwrap());
        n += 1;
    }
    n
}

#[test]
fn model_corpus_keeps_the_properties() {
    assert!(replay("model_decode", props::check_model_decode) >= 3);
}

#[test]
fn csv_corpus_keeps_the_properties() {
    assert!(replay("cic_csv", props::check_cic_csv) >= 5);
}

#[test]
fn the_default_model_is_a_valid_seed() {
    let m = netanalyzer_ml::model::default_model().unwrap();
    props::check_model_decode(&m.to_bytes());
}

const CNS_HEADER: &str = "id,Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,Total Fwd Packet,Total Bwd packets,Total Length of Fwd Packet,Fwd Packet Length Max,Label";
const ORIG_HEADER: &str = "Flow ID, Source IP, Destination Port, Protocol, Timestamp, Flow Duration, Total Fwd Packets, Total Backward Packets,Total Length of Fwd Packets, Fwd Header Length, Fwd Header Length,Flow Bytes/s, Label";
const SHORT_HEADER: &str = "Dst Port,Protocol,Timestamp,Flow Duration,Tot Fwd Pkts,Tot Bwd Pkts,TotLen Fwd Pkts,Flow Byts/s,Label";

#[test]
#[ignore = "writes the seed corpora"]
fn make_corpus() {
    let csvs: Vec<(&str, Vec<u8>)> = vec![
        (
            "cns2022",
            format!("{CNS_HEADER}\n1,f,10.0.0.1,1,10.0.0.2,80,6,2017-07-07 19:02:39.182486,100,2,1,40,20,BENIGN\n2,f,10.0.0.1,2,10.0.0.2,80,6,2017-07-07 19:02:40.000000,5,1,0,0,0,DoS Hulk\n").into_bytes(),
        ),
        (
            "original-quirks",
            [
                format!("{ORIG_HEADER}\nf, 10.0.0.1,80,6,7/7/2017 3:30,10,2,0,0,40,40,Infinity,BENIGN\n,,,,,,,,,,,,\n{ORIG_HEADER}\nf, 10.0.0.1,80,6,7/7/2017 3:31,10,2,0,0,40,40,NaN,Web Attack ").into_bytes(),
                vec![0x96],
                b" Brute Force\n".to_vec(),
            ]
            .concat(),
        ),
        (
            "cic2018",
            format!("{SHORT_HEADER}\n80,6,14/02/2018 08:31:01,3,1,1,0,0,FTP-BruteForce\n22,6,14/02/2018 08:31:02,3,1,1,0,,SSH-Bruteforce\n").into_bytes(),
        ),
        ("no-label", b"a,b,c\n1,2,3\n".to_vec()),
        ("empty", Vec::new()),
        ("quote", b"\"Protocol\",\"Label\"\n\"6\",\"BENIGN\"\n\"x".to_vec()),
    ];
    let dir = corpus("cic_csv");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in csvs {
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    // Small trained models, a truncated one and garbage.
    use netanalyzer_ml::dataset::{read_cic_csv, LabelMap};
    use netanalyzer_ml::forest::{train_forest, ForestParams};
    use netanalyzer_ml::model::{Model, TrainingInfo};
    let mut text = String::from("Protocol,Flow Duration,Total Fwd Packet,Label\n");
    for i in 0..60u32 {
        let label = ["BENIGN", "DoS Hulk", "Portscan"][(i % 3) as usize];
        text.push_str(&format!("6,{},{},{label}\n", (i % 3) * 1000 + i, i % 3 + 1));
    }
    let ds = read_cic_csv(
        vec![("seed".into(), text.as_bytes())],
        LabelMap::Coarse,
        &mut |_| {},
    )
    .unwrap();
    let dir = corpus("model_decode");
    std::fs::create_dir_all(&dir).unwrap();
    for trees in [1u16, 4] {
        let params = ForestParams {
            n_trees: trees,
            max_depth: Some(4),
            ..ForestParams::default()
        };
        let forest = train_forest(&ds, &params, &mut |_, _| {}).unwrap();
        let info = TrainingInfo {
            description: "fuzz seed".into(),
            sources: vec![],
            data_hash: ds.hash(),
            rows: ds.rows() as u64,
            class_counts: ds.class_counts(),
        };
        let bytes = Model::new(forest, &ds, info, params, None).to_bytes();
        std::fs::write(dir.join(format!("trees-{trees}")), &bytes).unwrap();
        std::fs::write(
            dir.join(format!("trees-{trees}-truncated")),
            &bytes[..bytes.len() / 2],
        )
        .unwrap();
    }
    std::fs::write(dir.join("garbage"), b"\x93\x01\x02\x03").unwrap();
}
