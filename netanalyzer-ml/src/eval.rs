//! Classifier quality: per-class precision, recall and F1, macro-F1, the
//! benign false-positive rate, accuracy and the confusion matrix.

use crate::dataset::coarse_class;
use netanalyzer_core::BENIGN_CLASS;
use serde::{Deserialize, Serialize};

/// Metrics of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class name.
    pub class: String,
    /// Of the rows predicted as this class, the share that are.
    pub precision: f64,
    /// Of the rows of this class, the share predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Rows of this class.
    pub support: u64,
}

/// Recall of the rows carrying some original labels (e.g. slow DoS), which
/// the coarse classes hide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRecall {
    /// What the group is (e.g. `slow_dos`).
    pub name: String,
    /// Rows in the group.
    pub support: u64,
    /// Share of them predicted as their true class.
    pub recall: f64,
}

/// An evaluation of predictions against the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Per class, in `class_names` order, classes with support or
    /// predictions only.
    pub classes: Vec<ClassMetrics>,
    /// Mean F1 over the classes listed in `classes` that have support.
    pub macro_f1: f64,
    /// Share of benign rows predicted as any other class (0 without benign
    /// rows).
    pub benign_fpr: f64,
    /// Share of rows predicted correctly.
    pub accuracy: f64,
    /// Counts, `[true][predicted]`, over all `class_names`.
    pub confusion: Vec<Vec<u64>>,
    /// The class names indexing `confusion`.
    pub class_names: Vec<String>,
    /// Rows evaluated.
    pub rows: u64,
    /// Recall of label groups (filled by the caller, e.g. slow DoS).
    #[serde(default)]
    pub groups: Vec<LabelRecall>,
}

impl EvalReport {
    /// The recall of a named group, if measured.
    pub fn group_recall(&self, name: &str) -> Option<f64> {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.recall)
    }
}

fn div(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Evaluates predictions. The benign class is the one whose name maps to
/// `Normal` (`Normal`, `BENIGN`). Class indices beyond `class_names` are
/// ignored.
pub fn evaluate(truth: &[u32], pred: &[u32], class_names: &[String]) -> EvalReport {
    let k = class_names.len();
    let mut confusion = vec![vec![0u64; k]; k];
    let mut rows = 0;
    for (&t, &p) in truth.iter().zip(pred) {
        if (t as usize) < k && (p as usize) < k {
            confusion[t as usize][p as usize] += 1;
            rows += 1;
        }
    }
    let mut classes = Vec::new();
    let mut f1_sum = 0.0;
    let mut f1_n = 0;
    let mut correct = 0;
    for c in 0..k {
        let tp = confusion[c][c];
        correct += tp;
        let support: u64 = confusion[c].iter().sum();
        let predicted: u64 = confusion.iter().map(|r| r[c]).sum();
        if support == 0 && predicted == 0 {
            continue;
        }
        let precision = div(tp, predicted);
        let recall = div(tp, support);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        if support > 0 {
            f1_sum += f1;
            f1_n += 1;
        }
        classes.push(ClassMetrics {
            class: class_names[c].clone(),
            precision,
            recall,
            f1,
            support,
        });
    }
    let benign_fpr = class_names
        .iter()
        .position(|n| coarse_class(n) == BENIGN_CLASS)
        .map_or(0.0, |b| {
            let support: u64 = confusion[b].iter().sum();
            div(support - confusion[b][b], support)
        });
    EvalReport {
        classes,
        macro_f1: if f1_n == 0 { 0.0 } else { f1_sum / f1_n as f64 },
        benign_fpr,
        accuracy: div(correct, rows),
        confusion,
        class_names: class_names.to_vec(),
        rows,
        groups: Vec::new(),
    }
}

/// Recall over the rows whose original label satisfies `member`.
pub fn group_recall(
    name: &str,
    original_labels: &[String],
    truth: &[u32],
    pred: &[u32],
    member: impl Fn(&str) -> bool,
) -> LabelRecall {
    let mut support = 0;
    let mut hit = 0;
    for ((l, &t), &p) in original_labels.iter().zip(truth).zip(pred) {
        if member(l) {
            support += 1;
            hit += u64::from(t == p);
        }
    }
    LabelRecall {
        name: name.to_string(),
        support,
        recall: div(hit, support),
    }
}

/// A plain-text report: the per-class table, the summary and the
/// confusion matrix.
pub fn format_report(r: &EvalReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<28} {:>9} {:>9} {:>9} {:>8}",
        "class", "precision", "recall", "f1", "support"
    );
    for c in &r.classes {
        let _ = writeln!(
            s,
            "{:<28} {:>9.4} {:>9.4} {:>9.4} {:>8}",
            c.class, c.precision, c.recall, c.f1, c.support
        );
    }
    let _ = writeln!(
        s,
        "\nmacro_f1 {:.4}  benign_fpr {:.4}%  accuracy {:.4}  rows {}",
        r.macro_f1,
        r.benign_fpr * 100.0,
        r.accuracy,
        r.rows
    );
    for g in &r.groups {
        let _ = writeln!(
            s,
            "recall[{}] {:.4} (support {})",
            g.name, g.recall, g.support
        );
    }
    let _ = writeln!(s, "\nconfusion (rows = true, columns = predicted):");
    let short: Vec<String> = r
        .class_names
        .iter()
        .map(|n| n.chars().take(10).collect())
        .collect();
    let _ = write!(s, "{:<12}", "");
    for n in &short {
        let _ = write!(s, " {n:>10}");
    }
    let _ = writeln!(s);
    for (i, row) in r.confusion.iter().enumerate() {
        let _ = write!(s, "{:<12}", short[i]);
        for v in row {
            let _ = write!(s, " {v:>10}");
        }
        let _ = writeln!(s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_hand() {
        let names: Vec<String> = ["Normal", "DoS"].iter().map(|s| s.to_string()).collect();
        // 4 normal (1 predicted DoS), 2 DoS (both right).
        let truth = [0, 0, 0, 0, 1, 1];
        let pred = [0, 0, 0, 1, 1, 1];
        let r = evaluate(&truth, &pred, &names);
        assert_eq!(r.confusion, vec![vec![3, 1], vec![0, 2]]);
        assert!((r.benign_fpr - 0.25).abs() < 1e-12);
        assert!((r.classes[1].precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.classes[1].recall - 1.0).abs() < 1e-12);
        assert!((r.accuracy - 5.0 / 6.0).abs() < 1e-12);
        let f1n = 2.0 * 1.0 * 0.75 / 1.75;
        let f1d = 2.0 * (2.0 / 3.0) / (2.0 / 3.0 + 1.0);
        assert!((r.macro_f1 - (f1n + f1d) / 2.0).abs() < 1e-12);
        assert!(format_report(&r).contains("macro_f1"));
    }
}
