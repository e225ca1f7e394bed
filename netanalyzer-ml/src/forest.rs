//! The random forest: trained with smartcore, then flattened into arrays
//! for fast inference.
//!
//! smartcore's `RandomForestClassifier` gives no confidence and seeds every
//! tree's feature sampling alike, so [`train_smartcore`] trains one
//! single-tree smartcore forest per tree (its bootstrap and per-split
//! feature sampling, each with its own seed) and joins the trees into one
//! smartcore `RandomForestClassifier` (through serde). [`FlatForest`] is
//! that forest flattened: its majority vote is exactly smartcore's
//! `predict` (same `<=` test, same lowest-class tie break), and it also
//! reports the share of trees that voted for the winner.

use crate::dataset::{clean, Dataset};
use crate::MlError;
use netanalyzer_core::Prediction;
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

/// The smartcore forest type we train.
pub type SmartcoreForest = RandomForestClassifier<f64, u32, DenseMatrix<f64>, Vec<u32>>;

/// Most classes a forest can have.
pub const MAX_CLASSES: usize = 64;

/// Training parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ForestParams {
    /// Trees in the forest.
    pub n_trees: u16,
    /// Maximum tree depth (`None`: unlimited).
    pub max_depth: Option<u16>,
    /// Minimum rows in a leaf.
    pub min_samples_leaf: usize,
    /// Features tried per split (`None`: √features, smartcore's default).
    pub mtry: Option<usize>,
    /// Random seed; tree `i` uses `seed + i`.
    pub seed: u64,
    /// Oversample smaller classes (by repeating their rows) up to
    /// `balance_target` rows before bootstrapping.
    pub balance_classes: bool,
    /// Rows per class after balancing (classes above it are untouched).
    pub balance_target: usize,
    /// Most times balancing repeats a row (caps the oversampling of very
    /// rare classes).
    pub balance_max_repeat: usize,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            n_trees: 32,
            max_depth: Some(20),
            min_samples_leaf: 1,
            mtry: None,
            seed: 42,
            balance_classes: true,
            balance_target: 5000,
            balance_max_repeat: 50,
        }
    }
}

/// One flattened node. An inner node sends a row to `left` when
/// `row[feature] <= threshold`, else to `left + 1`. A leaf has
/// `feature == LEAF` and its class in `left`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlatNode {
    /// Split threshold.
    pub threshold: f64,
    /// Feature index, or [`LEAF`].
    pub feature: u32,
    /// Left child index (right = left + 1), or the class of a leaf.
    pub left: u32,
}

/// Marks a leaf in [`FlatNode::feature`].
pub const LEAF: u32 = u32::MAX;

/// A flattened forest: every tree's nodes in one array, roots in `roots`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlatForest {
    nodes: Vec<FlatNode>,
    roots: Vec<u32>,
    n_features: usize,
    n_classes: usize,
    /// Per-class vote weights of the decision rule (empty: the plain
    /// majority vote, exactly smartcore's). Left out of the serialised form
    /// when empty, so unweighted forests keep their bytes and hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    vote_weights: Vec<f64>,
}

/// smartcore's tree node, read through serde (its fields are private).
#[derive(Deserialize)]
struct ScNode {
    output: usize,
    split_feature: usize,
    split_value: Option<f64>,
    true_child: Option<usize>,
    false_child: Option<usize>,
}

#[derive(Deserialize)]
struct ScTree {
    nodes: Vec<ScNode>,
    classes: Vec<u32>,
}

#[derive(Deserialize)]
struct ScForest {
    trees: Option<Vec<ScTree>>,
}

impl FlatForest {
    /// Flattens a smartcore forest trained with `n_features` features and
    /// labels in `0..n_classes`.
    ///
    /// # Errors
    /// [`MlError::Train`] when the forest cannot be read through serde or
    /// is malformed.
    pub fn from_smartcore(
        f: &SmartcoreForest,
        n_features: usize,
        n_classes: usize,
    ) -> Result<FlatForest, MlError> {
        let v = serde_json::to_value(f).map_err(|e| MlError::Train(e.to_string()))?;
        let sc: ScForest = serde_json::from_value(v).map_err(|e| MlError::Train(e.to_string()))?;
        let trees = sc.trees.unwrap_or_default();
        let bad = |m: &str| MlError::Train(format!("malformed smartcore tree: {m}"));
        let mut nodes = Vec::new();
        let mut roots = Vec::with_capacity(trees.len());
        for t in &trees {
            let base = nodes.len();
            roots.push(base as u32);
            // Emit nodes breadth first so both children sit side by side.
            let mut map = vec![u32::MAX; t.nodes.len()];
            let mut queue = std::collections::VecDeque::from([0usize]);
            map[0] = base as u32;
            nodes.push(FlatNode {
                threshold: 0.0,
                feature: LEAF,
                left: 0,
            });
            while let Some(i) = queue.pop_front() {
                let n = t.nodes.get(i).ok_or_else(|| bad("child index"))?;
                let slot = map[i] as usize;
                match (n.true_child, n.false_child) {
                    (Some(a), Some(b)) => {
                        if n.split_feature >= n_features || a >= map.len() || b >= map.len() {
                            return Err(bad("split feature or child out of range"));
                        }
                        let left = nodes.len();
                        map[a] = left as u32;
                        map[b] = left as u32 + 1;
                        nodes.push(FlatNode {
                            threshold: 0.0,
                            feature: LEAF,
                            left: 0,
                        });
                        nodes.push(FlatNode {
                            threshold: 0.0,
                            feature: LEAF,
                            left: 0,
                        });
                        nodes[slot] = FlatNode {
                            // smartcore compares with NaN when a split has no
                            // value: always false, i.e. always right.
                            threshold: n.split_value.unwrap_or(f64::NAN),
                            feature: n.split_feature as u32,
                            left: left as u32,
                        };
                        queue.push_back(a);
                        queue.push_back(b);
                    }
                    _ => {
                        let class = *t.classes.get(n.output).ok_or_else(|| bad("leaf class"))?;
                        if class as usize >= n_classes {
                            return Err(bad("class out of range"));
                        }
                        nodes[slot] = FlatNode {
                            threshold: 0.0,
                            feature: LEAF,
                            left: class,
                        };
                    }
                }
            }
        }
        if roots.is_empty() {
            return Err(MlError::Train("the forest has no trees".into()));
        }
        if n_classes > MAX_CLASSES {
            return Err(MlError::Train(format!(
                "{n_classes} classes; at most {MAX_CLASSES} are supported"
            )));
        }
        Ok(FlatForest {
            nodes,
            roots,
            n_features,
            n_classes,
            vote_weights: Vec::new(),
        })
    }

    /// Checks the structure a decoded forest must have before it may
    /// predict: at least one tree, at most [`MAX_CLASSES`] classes, roots
    /// and children inside the node array, every child after its parent
    /// (so no walk can loop), split features below `n_features` and leaf
    /// classes below `n_classes`. A model file is checked with this on
    /// load, so a corrupt or hostile file is refused instead of panicking
    /// or spinning in `predict`.
    ///
    /// # Errors
    /// A description of the first defect found.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.nodes.len();
        if self.roots.is_empty() {
            return Err("the forest has no trees".into());
        }
        if self.n_classes == 0 || self.n_classes > MAX_CLASSES {
            return Err(format!(
                "{} classes; 1 to {MAX_CLASSES} are supported",
                self.n_classes
            ));
        }
        if !self.vote_weights.is_empty()
            && (self.vote_weights.len() != self.n_classes
                || !self
                    .vote_weights
                    .iter()
                    .all(|w| w.is_finite() && *w > 0.0 && *w <= 1e6))
        {
            return Err(format!(
                "{} vote weights for {} classes (each must be finite, > 0 and <= 1e6)",
                self.vote_weights.len(),
                self.n_classes
            ));
        }
        if let Some(r) = self.roots.iter().find(|&&r| r as usize >= n) {
            return Err(format!("tree root {r} is outside the {n} nodes"));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if node.feature == LEAF {
                if node.left as usize >= self.n_classes {
                    return Err(format!("leaf {i} votes for class {}", node.left));
                }
            } else if node.feature as usize >= self.n_features {
                return Err(format!("node {i} splits on feature {}", node.feature));
            } else if (node.left as usize) <= i || node.left as usize + 1 >= n {
                return Err(format!("node {i} has children at {}", node.left));
            }
        }
        Ok(())
    }

    /// Trees in the forest.
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Nodes over all trees.
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Features a row must have.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Classes the forest votes among.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// The per-class vote weights (empty: plain majority vote).
    pub fn vote_weights(&self) -> &[f64] {
        &self.vote_weights
    }

    /// Sets a decision rule on top of the trees' votes: class `c` scores
    /// `votes[c] * weights[c]` and the highest score wins (ties go to the
    /// lowest class). A weight above 1 lets a rare class win with fewer
    /// votes (class-prior correction). `confidence` stays the share of
    /// trees voting for the predicted class. An empty slice (or all
    /// weights equal) restores the plain majority vote, exactly
    /// smartcore's `predict`.
    ///
    /// # Errors
    /// When `weights` is neither empty nor one finite weight in (0, 1e6]
    /// per class.
    pub fn set_vote_weights(&mut self, weights: &[f64]) -> Result<(), MlError> {
        let old = std::mem::replace(&mut self.vote_weights, weights.to_vec());
        if let Err(e) = self.validate() {
            self.vote_weights = old;
            return Err(MlError::Train(e));
        }
        if self.vote_weights.iter().all(|&w| w == 1.0) {
            self.vote_weights.clear();
        }
        Ok(())
    }

    #[inline(always)]
    fn leaf(&self, root: u32, row: &[f64]) -> u32 {
        let nodes = &self.nodes[..];
        let mut i = root as usize;
        loop {
            let n = nodes[i];
            if n.feature == LEAF {
                return n.left;
            }
            // NaN never reaches here in practice (rows are cleaned); a NaN
            // would go right, as in smartcore.
            let v = row.get(n.feature as usize).copied().unwrap_or(0.0);
            // Exactly smartcore's test: `v <= threshold` goes left.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            let right = !(v <= n.threshold);
            i = n.left as usize + usize::from(right);
        }
    }

    /// The class of each tree for a row (same order as the trees).
    pub fn tree_votes(&self, row: &[f64]) -> Vec<u32> {
        self.roots.iter().map(|&r| self.leaf(r, row)).collect()
    }

    fn vote(&self, votes: &[u16; MAX_CLASSES]) -> Prediction {
        let mut best = 0;
        if self.vote_weights.is_empty() {
            for c in 1..self.n_classes {
                if votes[c] > votes[best] {
                    best = c;
                }
            }
        } else {
            let w = &self.vote_weights;
            let mut best_score = f64::from(votes[0]) * w[0];
            for c in 1..self.n_classes.min(w.len()) {
                let score = f64::from(votes[c]) * w[c];
                if score > best_score {
                    best = c;
                    best_score = score;
                }
            }
        }
        Prediction {
            class: best,
            confidence: f64::from(votes[best]) / self.roots.len() as f64,
        }
    }

    /// Classifies one row (features in the forest's order, already
    /// cleaned): the majority vote (ties go to the lowest class, as in
    /// smartcore) and the share of trees that voted for it. Missing
    /// trailing features read as 0.
    pub fn predict(&self, row: &[f64]) -> Prediction {
        let mut votes = [0u16; MAX_CLASSES];
        for &r in &self.roots {
            votes[self.leaf(r, row) as usize & (MAX_CLASSES - 1)] += 1;
        }
        self.vote(&votes)
    }

    /// Classifies `rows` (row-major, `width` values each), appending to
    /// `out`. Walks four rows through each tree at once, so the four
    /// independent node chains overlap their memory latency.
    pub fn predict_batch(&self, rows: &[f64], width: usize, out: &mut Vec<Prediction>) {
        if width == 0 {
            return;
        }
        let n = rows.len() / width;
        out.reserve(n);
        let mut chunks = rows[..n * width].chunks_exact(4 * width);
        for quad in &mut chunks {
            let r: [&[f64]; 4] = std::array::from_fn(|k| &quad[k * width..(k + 1) * width]);
            let mut votes = [[0u16; MAX_CLASSES]; 4];
            for &root in &self.roots {
                let c = self.leaf4(root, r);
                for k in 0..4 {
                    votes[k][c[k] as usize & (MAX_CLASSES - 1)] += 1;
                }
            }
            for v in &votes {
                out.push(self.vote(v));
            }
        }
        for row in chunks.remainder().chunks_exact(width) {
            out.push(self.predict(row));
        }
    }

    #[inline(always)]
    fn leaf4(&self, root: u32, rows: [&[f64]; 4]) -> [u32; 4] {
        let nodes = &self.nodes[..];
        let mut idx = [root as usize; 4];
        let mut done = [false; 4];
        loop {
            let mut all = true;
            for k in 0..4 {
                if done[k] {
                    continue;
                }
                let n = nodes[idx[k]];
                if n.feature == LEAF {
                    done[k] = true;
                    idx[k] = n.left as usize;
                    continue;
                }
                all = false;
                let v = rows[k].get(n.feature as usize).copied().unwrap_or(0.0);
                #[allow(clippy::neg_cmp_op_on_partial_ord)]
                let right = !(v <= n.threshold);
                idx[k] = n.left as usize + usize::from(right);
            }
            if all {
                return idx.map(|i| i as u32);
            }
        }
    }
}

/// Per-class row repetition factors for balancing: a class with `n` rows
/// below `target` is repeated `ceil(target / n)` times (at most
/// `max_repeat` times).
fn balance_factors(ds: &Dataset, target: usize, max_repeat: usize) -> Vec<usize> {
    ds.class_counts()
        .iter()
        .map(|(_, n)| {
            let n = *n as usize;
            if n == 0 || n >= target {
                1
            } else {
                target.div_ceil(n).min(max_repeat.max(1))
            }
        })
        .collect()
}

/// Trains the smartcore forest: tree `i` is a one-tree smartcore
/// `RandomForestClassifier` (bootstrap per class, `mtry` features per
/// split) seeded `seed + i`; the trees are then joined into one smartcore
/// forest. `progress(done, total)` is called after each tree.
///
/// # Errors
/// [`MlError::Dataset`] with fewer than 2 classes present or no rows,
/// [`MlError::Train`] when smartcore fails.
pub fn train_smartcore(
    ds: &Dataset,
    p: &ForestParams,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SmartcoreForest, MlError> {
    let w = ds.width();
    if ds.rows() == 0 || w == 0 {
        return Err(MlError::Dataset(
            "no rows or no features to train on".into(),
        ));
    }
    let present = ds.class_counts().iter().filter(|(_, n)| *n > 0).count();
    if present < 2 {
        return Err(MlError::Dataset(format!(
            "{present} class present; training needs at least 2"
        )));
    }
    let factors = if p.balance_classes {
        balance_factors(ds, p.balance_target, p.balance_max_repeat)
    } else {
        vec![1; ds.class_names.len()]
    };
    let mut x = Vec::with_capacity(ds.x.len());
    let mut y = Vec::with_capacity(ds.rows());
    for i in 0..ds.rows() {
        let c = ds.y[i];
        for _ in 0..factors[c as usize] {
            x.extend(ds.row(i).iter().map(|&v| clean(v)));
            y.push(c);
        }
    }
    let rows = y.len();
    let m = DenseMatrix::new(rows, w, x, false).map_err(|e| MlError::Train(e.to_string()))?;
    let total = usize::from(p.n_trees.max(1));
    let mut trees: Vec<serde_json::Value> = Vec::with_capacity(total);
    let mut classes = serde_json::Value::Null;
    for t in 0..total {
        let params = RandomForestClassifierParameters {
            max_depth: p.max_depth,
            min_samples_leaf: p.min_samples_leaf.max(1),
            n_trees: 1,
            m: p.mtry.map(|m| m.clamp(1, w)),
            seed: p.seed.wrapping_add(t as u64),
            ..Default::default()
        };
        let f = SmartcoreForest::fit(&m, &y, params).map_err(|e| MlError::Train(e.to_string()))?;
        let mut v = serde_json::to_value(&f).map_err(|e| MlError::Train(e.to_string()))?;
        if let Some(ts) = v.get_mut("trees").and_then(|t| t.as_array_mut()) {
            trees.append(ts);
        }
        if classes.is_null() {
            classes = v.get("classes").cloned().unwrap_or_default();
        }
        progress(t + 1, total);
    }
    let joined = serde_json::json!({ "trees": trees, "classes": classes, "samples": null });
    serde_json::from_value(joined).map_err(|e| MlError::Train(format!("joining trees: {e}")))
}

/// Trains a forest on `ds` and flattens it (see [`train_smartcore`]).
///
/// # Errors
/// As [`train_smartcore`] and [`FlatForest::from_smartcore`].
pub fn train_forest(
    ds: &Dataset,
    p: &ForestParams,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<FlatForest, MlError> {
    let f = train_smartcore(ds, p, progress)?;
    FlatForest::from_smartcore(&f, ds.width(), ds.class_names.len())
}

#[cfg(test)]
mod validate_tests {
    use super::*;

    fn leaf(class: u32) -> FlatNode {
        FlatNode {
            threshold: 0.0,
            feature: LEAF,
            left: class,
        }
    }

    fn forest(nodes: Vec<FlatNode>) -> FlatForest {
        FlatForest {
            nodes,
            roots: vec![0],
            n_features: 2,
            n_classes: 2,
            vote_weights: Vec::new(),
        }
    }

    #[test]
    fn a_well_formed_forest_passes() {
        let split = FlatNode {
            threshold: 1.0,
            feature: 1,
            left: 1,
        };
        let f = forest(vec![split, leaf(0), leaf(1)]);
        assert_eq!(f.validate(), Ok(()));
        assert_eq!(f.predict(&[0.0, 5.0]).class, 1);
    }

    #[test]
    fn hostile_shapes_are_refused() {
        let looping = FlatNode {
            threshold: 1.0,
            feature: 0,
            left: 0,
        };
        assert!(forest(vec![looping, leaf(0)]).validate().is_err());
        let past_end = FlatNode {
            threshold: 1.0,
            feature: 0,
            left: 1,
        };
        assert!(forest(vec![past_end, leaf(0)]).validate().is_err());
        let bad_feature = FlatNode {
            threshold: 1.0,
            feature: 7,
            left: 1,
        };
        assert!(forest(vec![bad_feature, leaf(0), leaf(1)])
            .validate()
            .is_err());
        assert!(forest(vec![leaf(9)]).validate().is_err());
        let mut bad_weights = forest(vec![leaf(0)]);
        assert!(bad_weights.set_vote_weights(&[1.0]).is_err());
        assert!(bad_weights.set_vote_weights(&[1.0, f64::NAN]).is_err());
        assert!(bad_weights.set_vote_weights(&[1.0, 0.0]).is_err());
        assert!(bad_weights.vote_weights().is_empty());
        let mut no_trees = forest(vec![leaf(0)]);
        no_trees.roots.clear();
        assert!(no_trees.validate().is_err());
    }

    #[test]
    fn vote_weights_let_a_rare_class_win() {
        // Three trees: two vote class 0, one votes class 1.
        let mut f = FlatForest {
            nodes: vec![leaf(0), leaf(0), leaf(1)],
            roots: vec![0, 1, 2],
            n_features: 2,
            n_classes: 2,
            vote_weights: Vec::new(),
        };
        let plain = f.predict(&[0.0, 0.0]);
        assert_eq!(plain.class, 0);
        let hash = rmp_serde::to_vec(&f).unwrap();
        f.set_vote_weights(&[1.0, 1.0]).unwrap();
        // Equal weights are the plain vote, stored as no weights.
        assert!(f.vote_weights().is_empty());
        assert_eq!(rmp_serde::to_vec(&f).unwrap(), hash);
        f.set_vote_weights(&[1.0, 2.0]).unwrap();
        // 2 × 1 vs 1 × 2: a tie goes to the lowest class.
        assert_eq!(f.predict(&[0.0, 0.0]).class, 0);
        f.set_vote_weights(&[1.0, 2.5]).unwrap();
        let p = f.predict(&[0.0, 0.0]);
        assert_eq!(p.class, 1);
        assert!((p.confidence - 1.0 / 3.0).abs() < 1e-12);
        let mut batch = Vec::new();
        f.predict_batch(&[0.0; 10], 2, &mut batch);
        assert!(batch.iter().all(|b| *b == p));
        assert_eq!(f.validate(), Ok(()));
        let back: FlatForest =
            rmp_serde::from_slice(&rmp_serde::to_vec_named(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }
}
