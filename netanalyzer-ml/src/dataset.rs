//! Labelled feature tables: CIC CSVs (the original CIC-IDS2017 layout, the
//! CNS2022 "improved" re-extraction and CSE-CIC-IDS2018's short names) or
//! our own flows, the coarse class mapping and time-based splits.
//!
//! Every value passes through [`clean`] on the way in, so no NaN or
//! infinity ever reaches a tree.

use crate::MlError;
use netanalyzer_core::{FlowRecord, BENIGN_CLASS, COARSE_CLASSES, FEATURES};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;

/// A labelled feature table, row-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// Feature names (core [`FEATURES`] names), the columns of `x`.
    pub feature_names: Vec<String>,
    /// Class names, indexed by `y`.
    pub class_names: Vec<String>,
    /// Values, row-major: `rows × feature_names.len()`.
    pub x: Vec<f64>,
    /// Class index per row.
    pub y: Vec<u32>,
    /// Flow start time per row in µs since the Unix epoch, 0 when unknown.
    pub ts: Vec<i64>,
    /// The label as written in the source (normalised: en dash → `-`,
    /// spaces trimmed), per row.
    pub original_labels: Vec<String>,
}

/// How source labels become classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelMap {
    /// The 8 [`COARSE_CLASSES`] via [`coarse_class`].
    #[default]
    Coarse,
    /// The labels as written (normalised), sorted, the benign one first.
    Original,
}

impl Dataset {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Number of features per row.
    pub fn width(&self) -> usize {
        self.feature_names.len()
    }

    /// Row `i`.
    ///
    /// # Panics
    /// When `i >= rows()`.
    pub fn row(&self, i: usize) -> &[f64] {
        let w = self.width();
        &self.x[i * w..(i + 1) * w]
    }

    /// sha256 (hex) over names, values, classes, times and labels.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for n in &self.feature_names {
            h.update(n.as_bytes());
            h.update([0]);
        }
        h.update([1]);
        for n in &self.class_names {
            h.update(n.as_bytes());
            h.update([0]);
        }
        for v in &self.x {
            h.update(v.to_le_bytes());
        }
        for v in &self.y {
            h.update(v.to_le_bytes());
        }
        for v in &self.ts {
            h.update(v.to_le_bytes());
        }
        for l in &self.original_labels {
            h.update(l.as_bytes());
            h.update([0]);
        }
        hex(&h.finalize())
    }

    /// Rows per class, in `class_names` order.
    pub fn class_counts(&self) -> Vec<(String, u64)> {
        let mut c = vec![0u64; self.class_names.len()];
        for &y in &self.y {
            c[y as usize] += 1;
        }
        self.class_names.iter().cloned().zip(c).collect()
    }

    /// A data set with the same names and the given rows.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let w = self.width();
        let mut x = Vec::with_capacity(idx.len() * w);
        for &i in idx {
            x.extend_from_slice(self.row(i));
        }
        Dataset {
            feature_names: self.feature_names.clone(),
            class_names: self.class_names.clone(),
            x,
            y: idx.iter().map(|&i| self.y[i]).collect(),
            ts: idx.iter().map(|&i| self.ts[i]).collect(),
            original_labels: idx
                .iter()
                .map(|&i| self.original_labels[i].clone())
                .collect(),
        }
    }

    /// Keeps only the named features (in the given order).
    ///
    /// # Errors
    /// [`MlError::Dataset`] when a name is not a column.
    pub fn select_features(&self, names: &[&str]) -> Result<Dataset, MlError> {
        let cols = names
            .iter()
            .map(|n| {
                self.feature_names
                    .iter()
                    .position(|f| f == n)
                    .ok_or_else(|| MlError::Dataset(format!("no feature column {n:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut x = Vec::with_capacity(self.rows() * cols.len());
        for i in 0..self.rows() {
            let r = self.row(i);
            x.extend(cols.iter().map(|&c| r[c]));
        }
        Ok(Dataset {
            feature_names: names.iter().map(|s| s.to_string()).collect(),
            x,
            ..self.clone()
        })
    }

    /// Drops the named features (names that are not columns are ignored).
    pub fn drop_features(&self, names: &[&str]) -> Dataset {
        let keep: Vec<&str> = self
            .feature_names
            .iter()
            .map(String::as_str)
            .filter(|f| !names.contains(f))
            .collect();
        // Every kept name is a column, so this cannot fail.
        self.select_features(&keep).unwrap_or_else(|_| self.clone())
    }

    /// Splits by time: for every original label, its latest `test_share`
    /// of rows (by `ts`, ties and unknown times in row order) go to the
    /// second (test) set, the rest to the first (training) set. Row order
    /// is kept inside each part.
    pub fn time_split(&self, test_share: f64) -> (Dataset, Dataset) {
        let share = if test_share.is_finite() {
            test_share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let mut by_label: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, l) in self.original_labels.iter().enumerate() {
            by_label.entry(l.as_str()).or_default().push(i);
        }
        let mut is_test = vec![false; self.rows()];
        for idx in by_label.values_mut() {
            idx.sort_by_key(|&i| (self.ts[i], i));
            let n_test = ((idx.len() as f64) * share).round() as usize;
            for &i in &idx[idx.len() - n_test..] {
                is_test[i] = true;
            }
        }
        let train: Vec<usize> = (0..self.rows()).filter(|&i| !is_test[i]).collect();
        let test: Vec<usize> = (0..self.rows()).filter(|&i| is_test[i]).collect();
        (self.subset(&train), self.subset(&test))
    }
}

/// Lowercase hex of bytes.
pub(crate) fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// Makes a value safe for a tree: NaN → 0, ±Inf (and anything beyond
/// ±1e15) → ±1e15.
#[inline]
pub fn clean(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(-1e15, 1e15)
    }
}

/// Normalises a raw label: Windows-1252 0x96 and UTF-8 en/em dashes become
/// `-`, runs of spaces collapse, ends are trimmed.
pub fn normalize_label(raw: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(raw.len());
    for &b in raw {
        bytes.push(if b == 0x96 || b == 0x97 { b'-' } else { b });
    }
    let s = String::from_utf8_lossy(&bytes).replace(['\u{2013}', '\u{2014}', '\u{fffd}'], "-");
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Maps a CIC label (any data set's spelling; 0x96 dash already
/// normalised or not) to one of [`COARSE_CLASSES`]:
///
/// | label | class |
/// |---|---|
/// | BENIGN, Normal, `* - Attempted` (no attack payload, CNS2022) | Normal |
/// | DDoS, DDoS attacks-LOIC-HTTP, DDOS attack-HOIC/LOIC-UDP | DDoS |
/// | DoS Hulk/GoldenEye/Slowloris/Slowhttptest, DoS attacks-* | DoS |
/// | PortScan, Portscan, Infiltration - Portscan | PortScan |
/// | Web Attack - *, Brute Force -Web/-XSS, SQL Injection | WebAttack |
/// | FTP-/SSH-Patator, FTP-/SSH-BruteForce | BruteForce |
/// | Bot, Botnet | Botnet |
/// | Infiltration, Heartbleed (an exploit, not a flood), anything else | Other |
pub fn coarse_class(label: &str) -> &'static str {
    let l = normalize_label(label.as_bytes()).to_ascii_lowercase();
    let c = if l.is_empty() || l == "benign" || l == "normal" || l.ends_with("attempted") {
        BENIGN_CLASS
    } else if l.contains("ddos") {
        "DDoS"
    } else if l.contains("portscan") || l.contains("port scan") {
        "PortScan"
    } else if l.contains("web") || l.contains("xss") || l.contains("sql") {
        "WebAttack"
    } else if l.starts_with("dos") || l.contains(" dos") {
        "DoS"
    } else if l.contains("patator") || l.contains("brute") {
        "BruteForce"
    } else if l.contains("bot") {
        "Botnet"
    } else {
        "Other"
    };
    debug_assert!(COARSE_CLASSES.contains(&c));
    c
}

/// Whether a label is one of the slow DoS attacks (Slowloris,
/// Slowhttptest), for the slow-DoS recall target.
pub fn is_slow_dos(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    l.contains("slowloris") || l.contains("slowhttptest")
}

fn trim_bytes(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &b[s..e.max(s)]
}

/// Column name (trimmed) → core feature index, over all three layouts.
fn column_map() -> HashMap<&'static str, usize> {
    let mut m = HashMap::new();
    for (i, f) in FEATURES.iter().enumerate() {
        for n in [f.cic2017, f.cns2022, f.cic2018].into_iter().flatten() {
            m.entry(n.trim()).or_insert(i);
        }
    }
    m
}

/// Parses a numeric cell: `Infinity`/`inf` → +∞, `NaN`/empty → NaN.
fn parse_num(b: &[u8]) -> f64 {
    let t = trim_bytes(b);
    if t.is_empty() {
        return f64::NAN;
    }
    let s = std::str::from_utf8(t).unwrap_or("");
    if let Ok(v) = s.parse::<f64>() {
        return v;
    }
    match s.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" | "inf" => f64::INFINITY,
        "-infinity" | "-inf" => f64::NEG_INFINITY,
        _ => f64::NAN,
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a CIC timestamp to µs since the epoch (0 when unreadable):
/// `2017-07-07 19:02:39.182486` (CNS2022), `7/7/2017 3:30` (original 2017:
/// day first, no seconds, 12-hour clock without AM/PM: hours before 8 are
/// taken as afternoon, the capture ran 8:00–18:00) and
/// `14/02/2018 08:31:01` (2018: day first, 24-hour clock).
pub fn parse_timestamp(b: &[u8]) -> i64 {
    let s = std::str::from_utf8(trim_bytes(b)).unwrap_or("");
    let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "0:0:0"));
    let (y, mo, d, twelve_hour) = if date.contains('-') {
        let p: Vec<&str> = date.split('-').collect();
        if p.len() != 3 {
            return 0;
        }
        (
            p[0].parse().ok(),
            p[1].parse().ok(),
            p[2].parse().ok(),
            false,
        )
    } else {
        let p: Vec<&str> = date.split('/').collect();
        if p.len() != 3 {
            return 0;
        }
        (
            p[2].parse().ok(),
            p[1].parse().ok(),
            p[0].parse().ok(),
            true,
        )
    };
    let (Some(y), Some(mo), Some(d)) = (y, mo, d) else {
        return 0;
    };
    let tp: Vec<&str> = time.split(':').collect();
    let h: i64 = tp.first().and_then(|v| v.parse().ok()).unwrap_or(0);
    let mi: i64 = tp.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    let sec: f64 = tp.get(2).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    // Out-of-range parts are unreadable, not an overflow (found by the
    // cic_csv fuzz target).
    if !((1..=9999).contains(&y)
        && (1..=12).contains(&mo)
        && (1..=31).contains(&d)
        && (0..=23).contains(&h)
        && (0..=59).contains(&mi)
        && (0.0..61.0).contains(&sec))
    {
        return 0;
    }
    let h = if twelve_hour && tp.len() == 2 && h < 8 {
        h + 12
    } else {
        h
    };
    let days = days_from_civil(y, mo, d);
    (days * 86_400 + h * 3600 + mi * 60) * 1_000_000 + (sec * 1e6).round() as i64
}

/// Reads CIC-format CSVs (any of the three column layouts; files may
/// differ). Handles leading/trailing spaces in names, the duplicated 2017
/// `Fwd Header Length` column (the first one is used), `Infinity`/`NaN`/
/// empty cells, the 0x96 byte in labels, header rows repeated mid-file and
/// all-empty rows. The feature set is the core features present in the
/// first file, in core order; identifiers (IPs, ports, ids, timestamps)
/// are never features. `progress` gets the bytes read so far.
///
/// # Errors
/// [`MlError::Io`] when a file cannot be opened, [`MlError::Csv`] when it
/// has no `Label` column, lacks a feature of the first file or cannot be
/// parsed, [`MlError::Dataset`] when no labelled row is found.
pub fn load_cic_csv(
    paths: &[PathBuf],
    map: LabelMap,
    progress: &mut dyn FnMut(u64),
) -> Result<Dataset, MlError> {
    let mut inputs = Vec::with_capacity(paths.len());
    for path in paths {
        let pstr = path.display().to_string();
        let file = File::open(path).map_err(|e| MlError::Io {
            path: pstr.clone(),
            source: e,
        })?;
        inputs.push((pstr, file));
    }
    read_cic_csv(inputs, map, progress)
}

/// As [`load_cic_csv`], over already opened inputs, each with the name
/// used in error messages (the fuzz target feeds it bytes).
///
/// # Errors
/// As [`load_cic_csv`].
pub fn read_cic_csv<R: std::io::Read>(
    inputs: Vec<(String, R)>,
    map: LabelMap,
    progress: &mut dyn FnMut(u64),
) -> Result<Dataset, MlError> {
    let cmap = column_map();
    let mut feats: Option<Vec<usize>> = None; // core indices, sorted
    let mut x = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut ts = Vec::new();
    let mut bytes_done = 0u64;
    for (pstr, file) in inputs {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(file);
        let mut rec = csv::ByteRecord::new();
        // Per file: column of each model feature, label column, ts column.
        let mut layout: Option<(Vec<usize>, usize, Option<usize>)> = None;
        let mut header_first: Vec<u8> = Vec::new();
        let mut last_pos = 0u64;
        loop {
            let more = rdr.read_byte_record(&mut rec).map_err(|e| MlError::Csv {
                path: pstr.clone(),
                msg: e.to_string(),
            })?;
            if !more {
                break;
            }
            let pos = rdr.position().byte();
            if pos - last_pos > 1 << 20 {
                progress(bytes_done + pos);
                last_pos = pos;
            }
            if rec.iter().all(|f| trim_bytes(f).is_empty()) {
                continue;
            }
            let Some((cols, label_col, ts_col)) = &layout else {
                // The header row.
                let mut col_of: HashMap<usize, usize> = HashMap::new();
                let mut label_col = None;
                let mut ts_col = None;
                for (c, f) in rec.iter().enumerate() {
                    let name = String::from_utf8_lossy(trim_bytes(f)).to_string();
                    if name == "Label" {
                        label_col.get_or_insert(c);
                    } else if name == "Timestamp" {
                        ts_col.get_or_insert(c);
                    } else if let Some(&fi) = cmap.get(name.as_str()) {
                        col_of.entry(fi).or_insert(c);
                    }
                }
                let label_col = label_col.ok_or_else(|| MlError::Csv {
                    path: pstr.clone(),
                    msg: "no Label column in the header".into(),
                })?;
                let fs = feats.get_or_insert_with(|| {
                    let mut v: Vec<usize> = col_of.keys().copied().collect();
                    v.sort_unstable();
                    v
                });
                let mut cols = Vec::with_capacity(fs.len());
                for fi in fs.iter() {
                    match col_of.get(fi) {
                        Some(&c) => cols.push(c),
                        None => {
                            return Err(MlError::Csv {
                                path: pstr.clone(),
                                msg: format!(
                                    "no column for feature {} (present in the first file)",
                                    FEATURES[*fi].name
                                ),
                            })
                        }
                    }
                }
                header_first = rec
                    .get(0)
                    .map(|f| trim_bytes(f).to_vec())
                    .unwrap_or_default();
                layout = Some((cols, label_col, ts_col));
                continue;
            };
            let raw_label = rec.get(*label_col).unwrap_or(b"");
            let tl = trim_bytes(raw_label);
            if tl.is_empty() {
                continue;
            }
            if tl == b"Label" && rec.get(0).map(trim_bytes) == Some(header_first.as_slice()) {
                continue; // a repeated header row
            }
            for &c in cols {
                x.push(clean(parse_num(rec.get(c).unwrap_or(b""))));
            }
            ts.push(ts_col.and_then(|c| rec.get(c)).map_or(0, parse_timestamp));
            labels.push(normalize_label(tl));
        }
        bytes_done += rdr.position().byte();
        progress(bytes_done);
    }
    let feats = feats.unwrap_or_default();
    if labels.is_empty() || feats.is_empty() {
        return Err(MlError::Dataset(
            "no labelled rows with feature columns found".into(),
        ));
    }
    let feature_names = feats
        .iter()
        .map(|&i| FEATURES[i].name.to_string())
        .collect();
    let (class_names, y) = map_labels(&labels, map);
    Ok(Dataset {
        feature_names,
        class_names,
        x,
        y,
        ts,
        original_labels: labels,
    })
}

/// Class names and per-row class indices for labels under a mapping.
pub fn map_labels(labels: &[String], map: LabelMap) -> (Vec<String>, Vec<u32>) {
    match map {
        LabelMap::Coarse => {
            let names: Vec<String> = COARSE_CLASSES.iter().map(|s| s.to_string()).collect();
            let y = labels
                .iter()
                .map(|l| {
                    let c = coarse_class(l);
                    COARSE_CLASSES.iter().position(|k| *k == c).unwrap_or(0) as u32
                })
                .collect();
            (names, y)
        }
        LabelMap::Original => {
            let mut names: Vec<String> = labels.to_vec();
            names.sort();
            names.dedup();
            // The benign label first, so class 0 is benign as with Coarse.
            if let Some(p) = names.iter().position(|n| coarse_class(n) == BENIGN_CLASS) {
                let b = names.remove(p);
                names.insert(0, b);
            }
            let idx: HashMap<&str, u32> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i as u32))
                .collect();
            let y = labels.iter().map(|l| idx[l.as_str()]).collect();
            (names, y)
        }
    }
}

/// A data set from our own flows: all 82 core features (cleaned), `ts` =
/// first packet time in µs, classes = the labels mapped with
/// [`LabelMap::Coarse`]. Extra flows (or labels) beyond the shorter of the
/// two slices are ignored.
pub fn from_flows(flows: &[FlowRecord], labels: &[String]) -> Dataset {
    let n = flows.len().min(labels.len());
    let mut x = Vec::with_capacity(n * FEATURES.len());
    for f in &flows[..n] {
        x.extend(f.features.0.iter().map(|&v| clean(v)));
    }
    let original_labels: Vec<String> = labels[..n]
        .iter()
        .map(|l| normalize_label(l.as_bytes()))
        .collect();
    let (class_names, y) = map_labels(&original_labels, LabelMap::Coarse);
    Dataset {
        feature_names: FEATURES.iter().map(|f| f.name.to_string()).collect(),
        class_names,
        x,
        y,
        ts: flows[..n]
            .iter()
            .map(|f| (f.first_ts_ns / 1000) as i64)
            .collect(),
        original_labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_mapping() {
        for (l, c) in [
            ("BENIGN", "Normal"),
            ("DoS Hulk", "DoS"),
            ("DoS Slowloris", "DoS"),
            ("DDoS", "DDoS"),
            ("DDoS attacks-LOIC-HTTP", "DDoS"),
            ("DoS attacks-Hulk", "DoS"),
            ("Portscan", "PortScan"),
            ("PortScan", "PortScan"),
            ("Infiltration - Portscan", "PortScan"),
            ("FTP-Patator", "BruteForce"),
            ("SSH-Bruteforce", "BruteForce"),
            ("Web Attack \u{2013} Brute Force", "WebAttack"),
            ("Brute Force -XSS", "WebAttack"),
            ("Web Attack - Sql Injection", "WebAttack"),
            ("Bot", "Botnet"),
            ("Botnet", "Botnet"),
            ("Infiltration", "Other"),
            ("Heartbleed", "Other"),
            ("DoS Hulk - Attempted", "Normal"),
        ] {
            assert_eq!(coarse_class(l), c, "{l}");
        }
        assert_eq!(normalize_label(b"Web Attack \x96 XSS"), "Web Attack - XSS");
    }

    #[test]
    fn timestamps() {
        let a = parse_timestamp(b"2017-07-07 19:02:39.182486");
        assert_eq!(a % 1_000_000, 182_486);
        assert_eq!(a / 1_000_000, 1_499_454_159);
        // 3:30 in the original 2017 files means 15:30.
        assert_eq!(
            parse_timestamp(b"7/7/2017 3:30"),
            parse_timestamp(b"2017-07-07 15:30:00")
        );
        assert_eq!(
            parse_timestamp(b"14/02/2018 08:31:01"),
            parse_timestamp(b"2018-02-14 08:31:01")
        );
        assert_eq!(parse_timestamp(b"garbage"), 0);
    }

    #[test]
    fn clean_values() {
        assert_eq!(clean(f64::NAN), 0.0);
        assert_eq!(clean(f64::INFINITY), 1e15);
        assert_eq!(clean(f64::NEG_INFINITY), -1e15);
        assert_eq!(clean(3.5), 3.5);
        assert!(parse_num(b"Infinity").is_infinite());
        assert!(parse_num(b" NaN").is_nan());
        assert!(parse_num(b"").is_nan());
    }
}
