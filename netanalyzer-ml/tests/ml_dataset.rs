//! CIC CSV quirks: all three column layouts, leading spaces, the duplicated
//! `Fwd Header Length`, Infinity/NaN/empty cells, the 0x96 byte in labels,
//! repeated header rows, all-empty rows; time splits.

use netanalyzer_ml::dataset::{from_flows, load_cic_csv, LabelMap};
use std::path::PathBuf;

mod support;

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ml_dataset_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Original 2017 layout (TrafficLabelling subset).
fn csv2017() -> Vec<u8> {
    let mut s = Vec::new();
    let header = "Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, Timestamp, Flow Duration, Total Fwd Packets, Total Backward Packets, Fwd Header Length,Flow Bytes/s, Flow Packets/s, Fwd Header Length, Label\r\n";
    s.extend_from_slice(header.as_bytes());
    s.extend_from_slice(
        b"a,1.1.1.1,1,2.2.2.2,80,6,7/7/2017 3:30,100,2,1,40,Infinity,NaN,999,BENIGN\r\n",
    );
    s.extend_from_slice(b",,,,,,,,,,,,,,\r\n");
    s.extend_from_slice(b"b,1.1.1.1,2,2.2.2.2,80,6,7/7/2017 3:31,200,3,0,60,,1.5,999,Web Attack \x96 Brute Force\r\n");
    s.extend_from_slice(header.as_bytes()); // repeated header
    s.extend_from_slice(
        b"c,1.1.1.1,3,2.2.2.2,80,6,7/7/2017 3:32,300,4,2,80,-Infinity,2,999,DoS Slowloris\r\n",
    );
    s
}

#[test]
fn original_2017_layout_with_quirks() {
    let p = write("2017.csv", &csv2017());
    let mut seen = 0;
    let ds = load_cic_csv(&[p], LabelMap::Coarse, &mut |b| seen = b).unwrap();
    assert!(seen > 0);
    assert_eq!(ds.rows(), 3);
    assert_eq!(
        ds.feature_names,
        [
            "protocol",
            "flow_duration",
            "fwd_packets",
            "bwd_packets",
            "flow_bytes_per_s",
            "flow_packets_per_s",
            "fwd_header_len"
        ]
    );
    assert_eq!(ds.row(0), [6.0, 100.0, 2.0, 1.0, 1e15, 0.0, 40.0]); // first Fwd Header Length
    assert_eq!(ds.row(1)[4], 0.0); // empty cell
    assert_eq!(ds.row(2)[4], -1e15);
    assert!(ds.x.iter().all(|v| v.is_finite()));
    assert_eq!(
        ds.original_labels,
        ["BENIGN", "Web Attack - Brute Force", "DoS Slowloris"]
    );
    let names: Vec<&str> =
        ds.y.iter()
            .map(|&y| ds.class_names[y as usize].as_str())
            .collect();
    assert_eq!(names, ["Normal", "WebAttack", "DoS"]);
    assert!(ds.ts[0] < ds.ts[1] && ds.ts[1] < ds.ts[2]);
    let orig = load_cic_csv(
        &[write("2017b.csv", &csv2017())],
        LabelMap::Original,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(orig.class_names[0], "BENIGN");
    assert_eq!(orig.class_names.len(), 3);
}

#[test]
fn layouts_2018_and_cns2022_agree() {
    let a = write(
        "2018.csv",
        b"Dst Port,Protocol,Timestamp,Flow Duration,Tot Fwd Pkts,Tot Bwd Pkts,Init Fwd Win Byts,Label\n\
          80,6,14/02/2018 08:31:01,10,1,2,8192,Benign\n\
          22,6,14/02/2018 08:31:02,20,3,4,29200,SSH-Bruteforce\n",
    );
    let b = write(
        "cns.csv",
        b"id,Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,Total Fwd Packet,Total Bwd packets,FWD Init Win Bytes,Label,Attempted Category\n\
          1,x,1.1.1.1,5,2.2.2.2,80,6,2018-02-14 08:31:01,10,1,2,8192,BENIGN,-1\n\
          2,y,1.1.1.1,6,2.2.2.2,22,6,2018-02-14 08:31:02.5,20,3,4,29200,SSH-Patator,-1\n",
    );
    let d1 = load_cic_csv(std::slice::from_ref(&a), LabelMap::Coarse, &mut |_| {}).unwrap();
    let d2 = load_cic_csv(std::slice::from_ref(&b), LabelMap::Coarse, &mut |_| {}).unwrap();
    assert_eq!(
        d1.feature_names,
        [
            "protocol",
            "flow_duration",
            "fwd_packets",
            "bwd_packets",
            "fwd_init_win_bytes"
        ]
    );
    assert_eq!(d1.feature_names, d2.feature_names);
    assert_eq!(d1.x, d2.x);
    assert_eq!(d1.y, d2.y);
    assert_eq!(d1.ts[0], d2.ts[0]);
    // Both files at once.
    let both = load_cic_csv(&[a, b], LabelMap::Coarse, &mut |_| {}).unwrap();
    assert_eq!(both.rows(), 4);
    assert_ne!(d1.hash(), both.hash());
}

#[test]
fn time_split_takes_the_later_share_of_every_label() {
    let mut rows = String::from("Timestamp,Flow Duration,Label\n");
    for i in 0..10 {
        rows += &format!("2017-07-07 10:00:{:02},{i},BENIGN\n", 50 - i); // reverse time order
        rows += &format!("2017-07-07 11:00:{i:02},{},DDoS\n", 100 + i);
    }
    let ds = load_cic_csv(
        &[write("split.csv", rows.as_bytes())],
        LabelMap::Coarse,
        &mut |_| {},
    )
    .unwrap();
    let (train, test) = ds.time_split(0.3);
    assert_eq!((train.rows(), test.rows()), (14, 6));
    // Latest BENIGN rows are the first written (durations 0, 1, 2).
    let mut tb: Vec<f64> = (0..test.rows())
        .filter(|&i| test.y[i] == 0)
        .map(|i| test.row(i)[0])
        .collect();
    tb.sort_by(f64::total_cmp);
    assert_eq!(tb, [0.0, 1.0, 2.0]);
    let mut td: Vec<f64> = (0..test.rows())
        .filter(|&i| test.y[i] != 0)
        .map(|i| test.row(i)[0])
        .collect();
    td.sort_by(f64::total_cmp);
    assert_eq!(td, [107.0, 108.0, 109.0]);
}

#[test]
fn errors_and_from_flows() {
    let p = write("nolabel.csv", b"Flow Duration\n1\n");
    assert!(load_cic_csv(&[p], LabelMap::Coarse, &mut |_| {}).is_err());
    assert!(load_cic_csv(
        &[PathBuf::from("/nonexistent.csv")],
        LabelMap::Coarse,
        &mut |_| {}
    )
    .is_err());
    let ds = from_flows(&[], &[]);
    assert_eq!(ds.rows(), 0);
    assert_eq!(ds.feature_names.len(), 82);
}

/// The real original-format fixture, when present.
#[test]
fn original_fixture_file() {
    let Some(p) = support::shared_mldata("cicids2017_original_format_Friday-DDos_first299rows.csv")
    else {
        return;
    };
    let ds = load_cic_csv(&[p], LabelMap::Coarse, &mut |_| {}).unwrap();
    assert_eq!(ds.rows(), 299);
    assert_eq!(ds.feature_names.len(), 77);
    assert!(ds.y.iter().all(|&y| y == 0));
    assert!(ds.x.iter().all(|v| v.is_finite()));
    assert!(ds.x.contains(&1e15)); // the Infinity cells
}
