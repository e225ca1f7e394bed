//! The aggregator's catch-up rate: how fast `flowdb::PacketFeed` reads a
//! backlog of committed packet rows out of PostgreSQL.
//!
//! ```text
//! cargo run --release -p netanalyzer-benches --bin catchup -- [--records N] [--batch N] [--poll N] [--rounds N]
//! ```
//!
//! Generates `N` (default 1 000 000) mixed-traffic records with
//! `netanalyzer_capture::gen` (every scenario, the bench seed), starts an
//! embedded PostgreSQL cluster in a temporary directory with
//! `durable: false`, writes them with [`PacketWriter::write_batch`] in
//! batches of `--batch` rows (default 10 000, as the server does: ledger
//! row + binary COPY per transaction), then times a fresh [`PacketFeed`]
//! reading them all back with `poll(max_rows = --poll)` (default 100 000)
//! until it is caught up. The callback only touches each record (the
//! aggregator's own work is not included). Prints rows/s of the write and
//! of the best of `--rounds` (default 3) reads, and checks the row count.

use netanalyzer_benches::{gen_config, parse_positive_flags, FrameSet, ScratchPostgres};
use netanalyzer_capture::gen::Scenario;
use netanalyzer_core::PacketBatch;
use netanalyzer_store::flowdb::{PacketFeed, Position};
use netanalyzer_store::pg::{self, PacketWriter};
use std::process::ExitCode;
use std::time::Instant;

struct Args {
    records: u64,
    batch: usize,
    poll: u64,
    rounds: u64,
}

fn parse_args() -> Result<Args, String> {
    let (mut records, mut batch, mut poll, mut rounds) = (1_000_000, 10_000, 100_000, 3);
    parse_positive_flags(
        std::env::args().skip(1),
        &mut [
            ("--records", &mut records),
            ("--batch", &mut batch),
            ("--poll", &mut poll),
            ("--rounds", &mut rounds),
        ],
    )?;
    Ok(Args {
        records,
        batch: batch as usize,
        poll,
        rounds,
    })
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    eprintln!("generating {} records ...", args.records);
    let recs = FrameSet::generate(&gen_config(args.records, &Scenario::ALL)).records();
    let scratch = ScratchPostgres::start("netanalyzer-pg-catchup-")?;
    let pg = scratch.pg;
    let mut c = pg::connect(&pg.conninfo())?;
    pg::migrate(&mut c)?;

    let mut w = PacketWriter::new(pg::connect(&pg.conninfo())?);
    let t = Instant::now();
    for (seq, chunk) in recs.chunks(args.batch).enumerate() {
        let mut b = PacketBatch::new("bench", 1, seq as u64);
        b.records = chunk.to_vec();
        w.write_batch(&b)?;
    }
    let write_secs = t.elapsed().as_secs_f64();
    c.batch_execute("VACUUM ANALYZE")?;
    println!(
        "{} records in batches of {}, embedded PostgreSQL (durable=false)",
        recs.len(),
        args.batch
    );
    println!(
        "write (PacketWriter::write_batch): {:.2} s, {:.0} rows/s",
        write_secs,
        recs.len() as f64 / write_secs
    );

    let mut best = f64::INFINITY;
    for round in 0..args.rounds {
        let mut feed = PacketFeed::new(Position::default());
        let (mut rows, mut polls, mut checksum) = (0u64, 0u64, 0u64);
        let t = Instant::now();
        loop {
            let o = feed.poll(&mut c, args.poll, &mut |_, r| {
                checksum = checksum.wrapping_add(r.ts_ns ^ u64::from(r.wire_len));
            })?;
            if o.batches == 0 {
                break;
            }
            rows += o.rows;
            polls += 1;
        }
        let secs = t.elapsed().as_secs_f64();
        if rows != recs.len() as u64 {
            return Err(format!("read {rows} rows, wrote {}", recs.len()).into());
        }
        println!(
            "read round {}: {rows} rows in {polls} polls, {secs:.2} s, {:.0} rows/s (checksum {checksum:x})",
            round + 1,
            rows as f64 / secs
        );
        best = best.min(secs);
    }
    println!(
        "catch-up (PacketFeed::poll, max_rows {}): best {:.0} rows/s",
        args.poll,
        recs.len() as f64 / best
    );
    drop(c);
    drop(w);
    pg.stop()?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("catchup: {e}");
            ExitCode::FAILURE
        }
    }
}
