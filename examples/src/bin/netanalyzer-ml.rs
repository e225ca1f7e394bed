//! `netanalyzer-ml`: train, evaluate and inspect flow classifiers.
//!
//! ```text
//! netanalyzer-ml train --csv FILE... --out MODEL [--trees N --max-depth D --seed S
//!                      --labels coarse|original --test-share 0.3 --description TEXT] [--json]
//! netanalyzer-ml train --pcap FILE... [--label-file FILE... | --label CLASS] --out MODEL [same options]
//! netanalyzer-ml evaluate --model MODEL --csv FILE... [--json]
//! netanalyzer-ml inspect --model MODEL [--json]
//! ```
//!
//! `train` holds out the later `--test-share` of every label (by time),
//! trains on the rest, evaluates on the held-out part and stores those
//! metrics in the model. The stored model is the one trained on the
//! earlier part, so its metrics describe exactly it (`--test-share 0`
//! trains on everything and stores no metrics).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use netanalyzer_ml::dataset::{self, is_slow_dos, Dataset, LabelMap};
use netanalyzer_ml::eval::{self, EvalReport};
use netanalyzer_ml::forest::{train_forest, ForestParams};
use netanalyzer_ml::model::{Model, TrainingInfo};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "netanalyzer-ml",
    version,
    about = "Train, evaluate and inspect flow classifiers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Labels {
    /// The 8 coarse classes (Normal, DoS, DDoS, PortScan, ...).
    Coarse,
    /// The labels as written in the data.
    Original,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a model, evaluate it on a held-out time split, save it.
    Train(Box<TrainArgs>),
    /// Evaluate a model on labelled data.
    Evaluate {
        /// The model file.
        #[arg(long)]
        model: PathBuf,
        /// CIC-format CSV files.
        #[arg(long, num_args = 1.., required = true)]
        csv: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a model over captures as the sniffer's `--aggregate` does and
    /// print the flows per class and the alerts of each capture.
    Detect {
        /// The model file [default: the embedded default model].
        #[arg(long)]
        model: Option<PathBuf>,
        /// Captures (pcap or pcapng).
        #[arg(long, num_args = 1.., required = true)]
        pcap: Vec<PathBuf>,
        /// Print JSON (one object per capture).
        #[arg(long)]
        json: bool,
    },
    /// Print a model's metadata.
    Inspect {
        /// The model file.
        #[arg(long)]
        model: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct TrainArgs {
    /// CIC-format CSV files (original 2017, CNS2022 or 2018 column names).
    #[arg(long, num_args = 1.., required_unless_present = "pcap")]
    csv: Vec<PathBuf>,
    /// Labelled captures (pcap or pcapng): flows are built with the default
    /// flow table and labelled by `--label-file` or `--label`.
    #[arg(long, num_args = 1.., conflicts_with = "csv")]
    pcap: Vec<PathBuf>,
    /// netanalyzer-gen labels files, one per `--pcap` in the same order
    /// [default: each pcap's FILE.labels.csv].
    #[arg(long, num_args = 1.., requires = "pcap", conflicts_with = "label")]
    label_file: Vec<PathBuf>,
    /// One class for every flow of every `--pcap` (a coarse class, a
    /// generator scenario or a CIC label).
    #[arg(long, requires = "pcap")]
    label: Option<String>,
    /// Also read every `--pcap` through this BPF filter (tcpdump syntax)
    /// and add its flows: another sensor's view of the same traffic, e.g.
    /// `dst net 203.0.113.0/24` (only what reaches the victims). Repeatable.
    #[arg(long, requires = "pcap")]
    view: Vec<String>,
    /// Read only the frames matching this BPF filter (tcpdump syntax) from
    /// every `--pcap`, in every view.
    #[arg(long, requires = "pcap")]
    filter: Option<String>,
    /// Where to write the model.
    #[arg(long)]
    out: PathBuf,
    /// Trees in the forest.
    #[arg(long)]
    trees: Option<u16>,
    /// Maximum tree depth (0 = unlimited).
    #[arg(long)]
    max_depth: Option<u16>,
    /// Minimum rows per leaf.
    #[arg(long)]
    min_leaf: Option<usize>,
    /// Features tried per split (default: sqrt of the feature count).
    #[arg(long)]
    mtry: Option<usize>,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Oversample classes smaller than this many rows (0 = no balancing).
    #[arg(long)]
    balance: Option<usize>,
    /// Label mapping.
    #[arg(long, value_enum, default_value = "coarse")]
    labels: Labels,
    /// Share of every label's latest rows held out for evaluation.
    #[arg(long, default_value_t = 0.3)]
    test_share: f64,
    /// Features to leave out (comma-separated core names).
    #[arg(long, value_delimiter = ',')]
    drop: Vec<String>,
    /// Most times class balancing repeats a row.
    #[arg(long)]
    balance_max_repeat: Option<usize>,
    /// Vote weight of a class in the decision rule, `CLASS=W` (repeatable,
    /// default 1): class c wins by the highest `votes[c] * W`.
    #[arg(long, value_name = "CLASS=W")]
    class_weight: Vec<String>,
    /// What the training data is.
    #[arg(long, default_value = "")]
    description: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Where labelled training rows come from. Labelled captures (a pcap plus
/// the generator's labels file, or a pcap plus one label) will be a second
/// variant, turned into rows with `dataset::from_flows`.
enum Source {
    /// CIC-format CSV files.
    Csv(Vec<PathBuf>),
    /// Labelled captures (see `netanalyzer_examples::labelled`).
    Pcap {
        pcaps: Vec<PathBuf>,
        label_files: Vec<PathBuf>,
        label: Option<String>,
        views: Vec<String>,
        filter: Option<String>,
    },
}

impl Source {
    fn load(&self, map: LabelMap) -> Result<Dataset> {
        match self {
            Source::Csv(paths) => load_csvs(paths, map),
            Source::Pcap {
                pcaps,
                label_files,
                label,
                views,
                filter,
            } => load_pcaps(
                pcaps,
                label_files,
                label.as_deref(),
                views,
                filter.as_deref(),
            ),
        }
    }

    fn names(&self) -> Vec<String> {
        match self {
            Source::Csv(p) => p.iter().map(|p| p.display().to_string()).collect(),
            Source::Pcap { pcaps, .. } => pcaps.iter().map(|p| p.display().to_string()).collect(),
        }
    }
}

fn load_csvs(paths: &[PathBuf], map: LabelMap) -> Result<Dataset> {
    let total: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("reading  {bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ds = dataset::load_cic_csv(paths, map, &mut |b| pb.set_position(b))
        .with_context(|| format!("reading {}", paths_str(paths)))?;
    pb.finish_and_clear();
    Ok(ds)
}

/// Flows of labelled captures as a data set (coarse classes). Prints what
/// the labelling did, unmatched flows included, on standard error.
fn load_pcaps(
    pcaps: &[PathBuf],
    label_files: &[PathBuf],
    label: Option<&str>,
    views: &[String],
    filter: Option<&str>,
) -> Result<Dataset> {
    use netanalyzer_examples::labelled;
    if !label_files.is_empty() && label_files.len() != pcaps.len() {
        bail!(
            "{} --label-file for {} --pcap: give one per capture, in the same order",
            label_files.len(),
            pcaps.len()
        );
    }
    let filters: Vec<Option<String>> = std::iter::once(filter.map(str::to_owned))
        .chain(views.iter().map(|v| {
            Some(match filter {
                Some(f) => format!("({f}) and ({v})"),
                None => v.clone(),
            })
        }))
        .collect();
    let pb = ProgressBar::new((pcaps.len() * filters.len()) as u64);
    pb.set_style(
        ProgressStyle::with_template("reading  {bar:40} {pos}/{len} captures {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut all = labelled::LabelReport::default();
    let mut packets = 0u64;
    for (i, pcap) in pcaps.iter().enumerate() {
        let rows = match label {
            Some(_) => Vec::new(),
            None => {
                let lf = label_files
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| netanalyzer_capture::gen::default_labels_path(pcap));
                labelled::read_labels(&lf)?
            }
        };
        for filter in &filters {
            pb.set_message(pcap.display().to_string());
            let cfg = netanalyzer_ml::flow::FlowConfig::default();
            let cf = labelled::read_flows(pcap, cfg, filter.as_deref())?;
            packets += cf.packets;
            let rep = match label {
                Some(l) => labelled::label_all(cf.flows, l),
                None => labelled::label_with_rows(cf.flows, &rows),
            };
            all.extend(rep);
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    eprintln!(
        "labelled {} flows from {} captures x {} views ({packets} packets); unmatched: {} flows ({} packets), unknown scenario: {}",
        all.flows.len(),
        pcaps.len(),
        filters.len(),
        all.unmatched,
        all.unmatched_packets,
        all.unknown_scenario
    );
    for (s, n) in &all.per_scenario {
        eprintln!("  {s:<20} {n}");
    }
    if all.flows.is_empty() {
        bail!("no labelled flows in {}", paths_str(pcaps));
    }
    Ok(dataset::from_flows(&all.flows, &all.labels))
}

fn paths_str(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Evaluates a forest's predictions on `ds` and adds the slow-DoS group.
fn evaluate_on(model: &Model, ds: &Dataset) -> Result<EvalReport> {
    let binding_order = reorder(ds, &model.meta.feature_names)?;
    let mut preds = Vec::with_capacity(ds.rows());
    model
        .forest()
        .predict_batch(&binding_order.x, binding_order.width(), &mut preds);
    // Map the data's classes onto the model's by name.
    let pred: Vec<u32> = preds.iter().map(|p| p.class as u32).collect();
    let truth: Vec<u32> =
        ds.y.iter()
            .map(|&y| {
                let name = &ds.class_names[y as usize];
                model
                    .meta
                    .class_names
                    .iter()
                    .position(|c| c == name)
                    .map_or(u32::MAX, |i| i as u32)
            })
            .collect();
    let mut r = eval::evaluate(&truth, &pred, &model.meta.class_names);
    let g = eval::group_recall("slow_dos", &ds.original_labels, &truth, &pred, is_slow_dos);
    if g.support > 0 {
        r.groups.push(g);
    }
    Ok(r)
}

/// The data's columns in the model's feature order.
fn reorder(ds: &Dataset, names: &[String]) -> Result<Dataset> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    ds.select_features(&names)
        .context("the data lacks features the model needs")
}

fn train(a: TrainArgs) -> Result<()> {
    let source = if a.pcap.is_empty() {
        Source::Csv(a.csv.clone())
    } else {
        Source::Pcap {
            pcaps: a.pcap.clone(),
            label_files: a.label_file.clone(),
            label: a.label.clone(),
            views: a.view.clone(),
            filter: a.filter.clone(),
        }
    };
    let map = match a.labels {
        Labels::Coarse => LabelMap::Coarse,
        Labels::Original => LabelMap::Original,
    };
    let mut ds = source.load(map)?;
    if !a.drop.is_empty() {
        let d: Vec<&str> = a.drop.iter().map(String::as_str).collect();
        ds = ds.drop_features(&d);
    }
    if !(0.0..1.0).contains(&a.test_share) {
        bail!("--test-share must be in [0, 1)");
    }
    let d = ForestParams::default();
    let params = ForestParams {
        n_trees: a.trees.unwrap_or(d.n_trees),
        max_depth: match a.max_depth {
            Some(0) => None,
            Some(x) => Some(x),
            None => d.max_depth,
        },
        min_samples_leaf: a.min_leaf.unwrap_or(d.min_samples_leaf),
        mtry: a.mtry.or(d.mtry),
        seed: a.seed.unwrap_or(d.seed),
        balance_classes: a.balance.map_or(d.balance_classes, |b| b > 0),
        balance_target: a.balance.filter(|&b| b > 0).unwrap_or(d.balance_target),
        balance_max_repeat: a.balance_max_repeat.unwrap_or(d.balance_max_repeat),
    };
    let (train_ds, test_ds) = if a.test_share > 0.0 {
        ds.time_split(a.test_share)
    } else {
        (ds, Dataset::default())
    };
    let pb = ProgressBar::new(u64::from(params.n_trees));
    pb.set_style(
        ProgressStyle::with_template("training {bar:40} {pos}/{len} trees {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t0 = std::time::Instant::now();
    let mut weights = vec![1.0; train_ds.class_names.len()];
    for cw in &a.class_weight {
        let (name, w) = cw
            .split_once('=')
            .with_context(|| format!("--class-weight {cw:?}: expected CLASS=W"))?;
        let c = train_ds
            .class_names
            .iter()
            .position(|n| n == name.trim())
            .with_context(|| format!("--class-weight: no class {name:?}"))?;
        weights[c] = w
            .trim()
            .parse()
            .with_context(|| format!("--class-weight {cw:?}: bad weight"))?;
    }
    let mut forest = train_forest(&train_ds, &params, &mut |done, _| {
        pb.set_position(done as u64)
    })
    .context("training the forest")?;
    pb.finish_and_clear();
    let train_secs = t0.elapsed().as_secs_f64();
    let info = TrainingInfo {
        description: a.description.clone(),
        sources: source.names(),
        ..Default::default()
    };
    forest
        .set_vote_weights(&weights)
        .context("--class-weight")?;
    let mut model = Model::new(forest, &train_ds, info, params, None);
    if test_ds.rows() > 0 {
        let r = evaluate_on(&model, &test_ds)?;
        model.meta.metrics = Some(r);
    }
    model
        .save(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    if a.json {
        let j = serde_json::json!({
            "model": a.out.display().to_string(),
            "model_version": model.meta.model_version,
            "train_rows": train_ds.rows(),
            "test_rows": test_ds.rows(),
            "train_seconds": train_secs,
            "trees": model.forest().n_trees(),
            "nodes": model.forest().n_nodes(),
            "metrics": model.meta.metrics,
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        println!(
            "trained {} trees ({} nodes) on {} rows in {:.1} s; wrote {} ({})",
            model.forest().n_trees(),
            model.forest().n_nodes(),
            train_ds.rows(),
            train_secs,
            a.out.display(),
            model.meta.model_version
        );
        if let Some(r) = &model.meta.metrics {
            println!(
                "\nheld-out later {:.0}% of every label ({} rows):",
                a.test_share * 100.0,
                test_ds.rows()
            );
            print!("{}", eval::format_report(r));
        }
    }
    Ok(())
}

fn evaluate(model: &Path, csv: &[PathBuf], json: bool) -> Result<()> {
    let m = Model::load(model).with_context(|| format!("loading {}", model.display()))?;
    let map = if m.meta.class_names.len() == netanalyzer_core::COARSE_CLASSES.len()
        && m.meta
            .class_names
            .iter()
            .zip(netanalyzer_core::COARSE_CLASSES)
            .all(|(a, b)| a == b)
    {
        LabelMap::Coarse
    } else {
        LabelMap::Original
    };
    let ds = load_csvs(csv, map)?;
    let r = evaluate_on(&m, &ds)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", eval::format_report(&r));
    }
    Ok(())
}

fn inspect(model: &Path, json: bool) -> Result<()> {
    let m = Model::load(model).with_context(|| format!("loading {}", model.display()))?;
    let bound = m.bind();
    if json {
        let mut v = serde_json::to_value(&m.meta)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("trees".into(), m.forest().n_trees().into());
            o.insert("nodes".into(), m.forest().n_nodes().into());
            o.insert(
                "binds".into(),
                match &bound {
                    Ok(_) => serde_json::Value::Bool(true),
                    Err(e) => serde_json::Value::String(e.to_string()),
                },
            );
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let meta = &m.meta;
    println!(
        "model        {} (format {})",
        meta.model_version, meta.format_version
    );
    println!("hash         {}", meta.model_hash);
    println!("created      {}", meta.created_at);
    println!(
        "forest       {} trees, {} nodes",
        m.forest().n_trees(),
        m.forest().n_nodes()
    );
    println!("params       {:?}", meta.params);
    if !m.forest().vote_weights().is_empty() {
        println!("vote weights {:?}", m.forest().vote_weights());
    }
    println!(
        "features     {} : {}",
        meta.feature_names.len(),
        meta.feature_names.join(", ")
    );
    println!("classes      {}", meta.class_names.join(", "));
    println!("description  {}", meta.training.description);
    println!("sources      {}", meta.training.sources.join(", "));
    println!("data hash    {}", meta.training.data_hash);
    println!("train rows   {}", meta.training.rows);
    for (c, n) in &meta.training.class_counts {
        println!("  {c:<26} {n}");
    }
    match &bound {
        Ok(_) => println!("binds        yes (all features computed by the aggregator)"),
        Err(e) => println!("binds        NO: {e}"),
    }
    if let Some(r) = &meta.metrics {
        println!("\nheld-out evaluation:");
        print!("{}", eval::format_report(r));
    }
    Ok(())
}

fn detect(model: Option<&Path>, pcaps: &[PathBuf], json: bool) -> Result<()> {
    use netanalyzer_examples::labelled::detect_capture;
    let m = match model {
        Some(p) => Model::load(p).with_context(|| format!("loading {}", p.display()))?,
        None => netanalyzer_ml::model::default_model().context("loading the default model")?,
    };
    if !json {
        println!("model {}", m.version());
    }
    for pcap in pcaps {
        let d = detect_capture(
            pcap,
            m.clone(),
            netanalyzer_ml::alert::AlertConfig::default(),
        )?;
        if json {
            let j = serde_json::json!({
                "pcap": pcap.display().to_string(),
                "packets": d.packets,
                "flows": d.flows,
                "predictions": d.predictions.iter().filter(|(_, n)| *n > 0)
                    .map(|(c, n)| (c.clone(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
                "alerts": d.alerts,
            });
            println!("{}", serde_json::to_string(&j)?);
            continue;
        }
        let preds: Vec<String> = d
            .predictions
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        println!(
            "{}: {} packets, {} flows ({})",
            pcap.display(),
            d.packets,
            d.flows,
            preds.join(", ")
        );
        for a in &d.alerts {
            println!(
                "  alert {:<10} {:<8} flows {:<6} sources {:<5} target {} conf {:.2}",
                a.class,
                a.severity.as_str(),
                a.flow_count,
                a.source_count,
                a.target,
                a.confidence
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Train(a) => train(*a),
        Cmd::Evaluate { model, csv, json } => evaluate(&model, &csv, json),
        Cmd::Inspect { model, json } => inspect(&model, json),
        Cmd::Detect { model, pcap, json } => detect(model.as_deref(), &pcap, json),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netanalyzer-ml: {e:#}");
            ExitCode::FAILURE
        }
    }
}
