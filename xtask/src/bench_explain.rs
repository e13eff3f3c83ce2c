//! `cargo xtask bench explain`: what an explanation costs, and whether it is faithful.
//!
//! On a seeded sample of the run's own test reviews: the time to explain them (per review,
//! and per review of the full `maxlen` length), then, for k = 1 … `max_k`, the fall of the
//! predicted class's probability when the k words with the largest weights are deleted,
//! beside the fall when k words drawn at random are deleted. A faithful explanation names
//! the words the verdict rests on: deleting them costs the verdict more than deleting others.
//! A stacked model is explained and measured as a whole: the words are every word of each
//! review (its n-gram part reads them all) and the probabilities are the stack's.

use std::time::Instant;

use imdb_data::{SeededRng, Vocabulary, derive_seed, kept_range};
use imdb_train::explain::{
    Occlusion, RowLayout, StackedSequence, occlude, occlude_stacked, probabilities_without,
};
use imdb_train::metrics::ClassProbabilities;

use crate::cli::ExplainBenchArgs;
use crate::error::XtaskError;

/// The id a sequence may start with: not a word, so never deleted.
const START_ID: u32 = imdb_data::vocab::START_ID;

/// Mean fall of the verdict's probability at one k.
#[derive(Debug, Clone, Copy)]
struct CurvePoint {
    k: usize,
    reviews: usize,
    top: f64,
    random: f64,
    /// Share of reviews where deleting the top k costs more than deleting k random words.
    top_wins: f64,
}

/// Runs the command.
pub fn run(args: &ExplainBenchArgs) -> Result<(), XtaskError> {
    if args.reviews == 0 || args.max_k == 0 {
        return Err(XtaskError::Usage(
            "give --reviews and --max-k of at least 1".into(),
        ));
    }
    let device = args.backend.device()?;
    let saved = crate::data::load_model(&args.model, &device)?;
    let pre = saved.manifest.preprocessing;
    let (_, corpus, data) = crate::data::trained_data(&args.model, &saved)?;
    let set = &data.test;
    let mut order: Vec<usize> = (0..set.len()).collect();
    SeededRng::new(args.seed).shuffle(&mut order);
    order.truncate(args.reviews);
    // What each explained review is: every id of it with the part the network reads (for a
    // network alone, the ids it reads, all kept).
    let all: Vec<Vec<u32>> = order
        .iter()
        .map(|&i| match &saved.stack {
            Some(_) => Vocabulary::encode_ranks(&corpus.test[set.source[i]].ranks, pre.num_words),
            None => set.sequences.real(i).to_vec(),
        })
        .collect();
    let texts: Vec<StackedSequence<'_>> = all
        .iter()
        .map(|ids| StackedSequence {
            all: ids,
            kept: match &saved.stack {
                Some(_) => kept_range(ids.len(), pre.maxlen, pre.truncating),
                None => 0..ids.len(),
            },
        })
        .collect();
    let layout = RowLayout {
        padding: pre.padding,
        fixed_steps: (!saved.model.config.mask_padding).then_some(pre.maxlen),
    };
    let outputs = saved.model.outputs();
    let session = saved.session();
    let predictor = session.predictor();
    let explain = |texts: &[StackedSequence<'_>]| -> Result<Vec<Occlusion>, XtaskError> {
        Ok(match &saved.stack {
            Some(stack) => occlude_stacked(predictor, stack, (texts, None), layout, &device)?,
            None => {
                let ids: Vec<&[u32]> = texts.iter().map(|t| t.all).collect();
                occlude(predictor, outputs, &ids, layout, &device)?
            }
        })
    };

    let started = Instant::now();
    let occluded = explain(&texts)?;
    let seconds = started.elapsed().as_secs_f64();
    let sequences: Vec<&[u32]> = all.iter().map(Vec::as_slice).collect();
    let words: usize = sequences.iter().map(|s| s.len()).sum();
    let full: Vec<StackedSequence<'_>> = texts
        .iter()
        .filter(|t| t.kept.len() == pre.maxlen)
        .cloned()
        .collect();
    let full_started = Instant::now();
    explain(&full)?;
    let full_ms = 1000.0 * full_started.elapsed().as_secs_f64() / full.len().max(1) as f64;
    println!(
        "explained {} test reviews ({:.0} ids each on average) in {seconds:.2} s: {:.1} ms per \
         review; the {} reviews of {} ids: {full_ms:.1} ms each",
        sequences.len(),
        words as f64 / sequences.len() as f64,
        1000.0 * seconds / sequences.len() as f64,
        full.len(),
        pre.maxlen
    );

    // Every deletion of every k, both kinds, in one list of rows.
    let mut rows: Vec<(StackedSequence<'_>, Vec<usize>)> = Vec::new();
    let mut owners: Vec<(usize, usize)> = Vec::new();
    for (r, (seq, occlusion)) in sequences.iter().zip(&occluded).enumerate() {
        let candidates: Vec<usize> = (0..seq.len()).filter(|&i| seq[i] != START_ID).collect();
        let mut by_weight = candidates.clone();
        by_weight.sort_by(|&a, &b| occlusion.weights[b].total_cmp(&occlusion.weights[a]));
        let mut shuffled = candidates.clone();
        SeededRng::new(derive_seed(args.seed, &[order[r] as u64])).shuffle(&mut shuffled);
        for k in 1..=args.max_k {
            // Only reviews that keep a word after the deletion.
            if candidates.len() <= k {
                break;
            }
            for chosen in [&by_weight[..k], &shuffled[..k]] {
                rows.push((texts[r].clone(), chosen.to_vec()));
                owners.push((r, k));
            }
        }
    }
    let refs: Vec<(StackedSequence<'_>, &[usize])> = rows
        .iter()
        .map(|(t, d)| (t.clone(), d.as_slice()))
        .collect();
    let probabilities: ClassProbabilities = probabilities_without(
        predictor,
        outputs,
        saved.stack.as_ref(),
        &refs,
        layout,
        &device,
    )?;
    // Sums by k: the top-k fall, the random fall, reviews where top-k costs more, reviews.
    let mut falls = vec![(0.0f64, 0.0f64, 0usize, 0usize); args.max_k + 1];
    // The rows come in pairs, top-k then random, of one review and one k.
    for (pair, owner) in owners.chunks_exact(2).enumerate() {
        let (r, k) = owner[0];
        let o = &occluded[r];
        let class = o.class as usize;
        let fall = |row: usize| f64::from(o.probabilities[class] - probabilities.row(row)[class]);
        let (top, random) = (fall(2 * pair), fall(2 * pair + 1));
        let sums = &mut falls[k];
        sums.0 += top;
        sums.1 += random;
        sums.2 += usize::from(top > random);
        sums.3 += 1;
    }
    let curve: Vec<CurvePoint> = (1..=args.max_k)
        .filter(|&k| falls[k].3 > 0)
        .map(|k| {
            let (top, random, wins, n) = falls[k];
            CurvePoint {
                k,
                reviews: n,
                top: top / n as f64,
                random: random / n as f64,
                top_wins: wins as f64 / n as f64,
            }
        })
        .collect();
    println!(" k  reviews  fall (top-k words)  fall (k random words)  top-k costs more");
    for p in &curve {
        println!(
            "{:>2}  {:>7}  {:>18.4}  {:>21.4}  {:>15.1}%",
            p.k,
            p.reviews,
            p.top,
            p.random,
            100.0 * p.top_wins
        );
    }
    let points: Vec<serde_json::Value> = curve
        .iter()
        .map(|p| {
            serde_json::json!({
                "k": p.k,
                "reviews": p.reviews,
                "top": p.top,
                "random": p.random,
                "top_wins": p.top_wins,
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "reviews": sequences.len(),
            "ms_per_review": 1000.0 * seconds / sequences.len() as f64,
            "full_length": full.len(),
            // No review of the full length: no time per one (null, not NaN).
            "ms_per_full_review": if full.is_empty() { None } else { Some(full_ms) },
            "maxlen": pre.maxlen,
            "curve": points,
        })
    );
    Ok(())
}
