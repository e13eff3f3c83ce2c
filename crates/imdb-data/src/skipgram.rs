//! Skip-gram word vectors with negative sampling (word2vec), trained on the corpus' own
//! reviews on every core, with the same vectors for a seed whatever the number of cores.
//!
//! word2vec runs its threads "Hogwild": they update shared vectors without locks, so two runs
//! differ. Here the reviews are dealt to a fixed number of shards ([`SHARDS`]), each with its
//! own copy of the vectors; rayon runs the shards of a round on however many threads it has,
//! and after every round ([`ROUND_TOKENS`] words per shard) each vector moves by the sum of
//! what every shard did to it — what Hogwild applies, here in a fixed order. Rounds are short
//! because the shards push a frequent word the same way: with 2^14 words per shard the sum
//! already overshoots (worse neighbours), with 2^18 it diverges; the mean instead of the sum
//! is stable at any length but trains frequent words a quarter as fast (about a point lower
//! downstream). The shards, their random streams and the merge never depend on the thread
//! count, so one thread and two give the same vectors, bit for bit. The hot loops (dot
//! products and updates over a vector) keep 16 partial sums and are compiled for AVX-512,
//! AVX2 and plain x86-64, chosen at run time; without fused multiply-adds the three give the
//! same numbers. The logistic function comes
//! from word2vec's table (1,000 entries on [-6, 6]).

use rayon::prelude::*;

use crate::embeddings::{AlignedVectors, random_rows};
use crate::split::{SeededRng, derive_seed};
use crate::vocab::{INDEX_FROM, UNRANKED};

/// Shards the reviews are dealt to: fixed, so that the vectors do not depend on the cores.
pub const SHARDS: usize = 4;
/// Words (before subsampling) each shard reads between two merges.
pub const ROUND_TOKENS: usize = 1 << 13;
/// Entries of the logistic table, over `[-MAX_EXP, MAX_EXP]` (word2vec's values).
const EXP_TABLE_SIZE: usize = 1000;
const MAX_EXP: f32 = 6.0;
/// Entries of the noise table (a power of two: an index is 20 random bits).
const NOISE_BITS: u32 = 20;

/// Settings of the skip-gram trainer (word2vec's skip-gram with negative sampling).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkipGramConfig {
    /// Vector size.
    pub dim: usize,
    /// Largest distance between a word and a context word (each pair uses a random window up
    /// to this, as word2vec does).
    pub window: usize,
    /// Negative samples per pair.
    pub negatives: usize,
    /// Passes over the reviews.
    pub epochs: usize,
    /// Initial step size, decayed linearly to 1/10,000 of it.
    pub learning_rate: f32,
    /// Frequent words are dropped with probability `1 - sqrt(t / frequency) - t / frequency`.
    pub subsample: f64,
    /// Fixes every random choice.
    pub seed: u64,
}

impl Default for SkipGramConfig {
    fn default() -> Self {
        Self {
            dim: 128,
            window: 5,
            negatives: 5,
            epochs: 1,
            learning_rate: 0.025,
            subsample: 1e-4,
            seed: 1,
        }
    }
}

/// Trains skip-gram vectors for the ids `4…num_words-1` on `reviews` (each a sequence of word
/// ranks, as in [`crate::TokenizedReview::ranks`]); returns them aligned like
/// [`crate::load_word_vectors`]. No labels are read: the unlabelled reviews are made for this.
pub fn train_skipgram(
    reviews: &[&[u32]],
    num_words: usize,
    config: &SkipGramConfig,
) -> AlignedVectors {
    train_skipgram_with_progress(reviews, num_words, config, &mut |_, _| {})
}

/// [`train_skipgram`], telling `progress` after every round how many words were read so far
/// and how many there are in all (every epoch counted).
pub fn train_skipgram_with_progress(
    reviews: &[&[u32]],
    num_words: usize,
    config: &SkipGramConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> AlignedVectors {
    let dim = config.dim.max(1);
    let words = num_words.saturating_sub(INDEX_FROM as usize + 1);
    let mut counts = vec![0u64; words];
    for review in reviews {
        for &rank in review.iter() {
            if rank != UNRANKED && (rank as usize) < words {
                counts[rank as usize] += 1;
            }
        }
    }
    let total: u64 = counts.iter().sum();
    let keep: Vec<f32> = counts
        .iter()
        .map(|&c| {
            if c == 0 || config.subsample <= 0.0 {
                1.0
            } else {
                let f = c as f64 / total as f64;
                ((config.subsample / f).sqrt() + config.subsample / f).min(1.0) as f32
            }
        })
        .collect();
    let shared = Shared {
        noise: noise_table(&counts),
        keep,
        logistic: logistic_table(),
        words,
        dim,
        config: *config,
    };
    let mut rng = SeededRng::new(config.seed);
    let mut model = Vectors {
        input: (0..words * dim)
            .map(|_| (rng.next_f32() - 0.5) / dim as f32)
            .collect(),
        output: vec![0.0f32; words * dim],
    };
    // Reviews dealt round-robin to the shards; each shard's words in every epoch.
    let dealt: Vec<Vec<&[u32]>> = (0..SHARDS)
        .map(|s| reviews.iter().skip(s).step_by(SHARDS).copied().collect())
        .collect();
    let shard_words: Vec<u64> = dealt
        .iter()
        .map(|rs| rs.iter().map(|r| known_words(r, words)).sum::<u64>())
        .collect();
    let planned = total * config.epochs as u64;
    let mut shards: Vec<Shard> = (0..SHARDS)
        .map(|s| Shard {
            index: s,
            vectors: model.clone(),
            touched: Touched::new(words),
            next: 0,
            epoch: 0,
            rng: SeededRng::new(derive_seed(config.seed, &[s as u64, 0])),
            read: 0,
            planned: shard_words[s] * config.epochs as u64,
            sentence: Vec::new(),
            grad: vec![0.0; dim],
        })
        .collect();
    let kernels = Kernels::detect();
    loop {
        shards
            .par_iter_mut()
            .zip(dealt.par_iter())
            .for_each(|(shard, reviews)| kernels.round(shard, reviews, &shared));
        merge(&mut model, &mut shards, dim);
        let read: u64 = shards.iter().map(|s| s.read).sum();
        progress(read.min(planned), planned);
        if shards.iter().all(|s| s.epoch >= config.epochs) {
            break;
        }
    }
    let mut weights = random_rows(num_words, dim, config.seed ^ 0x5eed);
    let offset = (INDEX_FROM as usize + 1) * dim;
    weights[offset..offset + words * dim].copy_from_slice(&model.input);
    AlignedVectors {
        weights,
        dim,
        found: counts.iter().filter(|&&c| c > 0).count(),
        total: words,
    }
}

/// Words of `review` the vectors are trained for.
fn known_words(review: &[u32], words: usize) -> u64 {
    review
        .iter()
        .filter(|&&r| r != UNRANKED && (r as usize) < words)
        .count() as u64
}

/// What every shard reads and nobody writes.
struct Shared {
    noise: Vec<u32>,
    keep: Vec<f32>,
    logistic: Vec<f32>,
    words: usize,
    dim: usize,
    config: SkipGramConfig,
}

/// Input (the word vectors) and output (the context vectors) weights, `words × dim` each.
#[derive(Clone)]
struct Vectors {
    input: Vec<f32>,
    output: Vec<f32>,
}

/// The rows a shard changed in the current round, per matrix.
struct Touched {
    input: Vec<bool>,
    output: Vec<bool>,
}

impl Touched {
    fn new(words: usize) -> Self {
        Self {
            input: vec![false; words],
            output: vec![false; words],
        }
    }
}

/// One shard: its copy of the vectors, where it is in its reviews, its random stream.
struct Shard {
    /// Which shard (its random streams derive from it).
    index: usize,
    vectors: Vectors,
    touched: Touched,
    /// Next review of the shard's list.
    next: usize,
    epoch: usize,
    rng: SeededRng,
    /// Words read so far (every epoch), for the learning rate.
    read: u64,
    planned: u64,
    sentence: Vec<usize>,
    grad: Vec<f32>,
}

/// Rows merged by one task of [`merge`].
const MERGE_ROWS: usize = 512;

/// One block of rows of one matrix in every shard: the rows, and which of them the shard
/// changed.
type ShardBlocks<'a> = (Vec<&'a mut [f32]>, Vec<&'a mut [bool]>);

/// After a round: every row any shard changed moves by the sum of the changes of the shards
/// that changed it, added in shard order, and every shard's copy takes the result. Rows are
/// independent, so blocks of them are merged on every core (the order within a row is fixed).
fn merge(model: &mut Vectors, shards: &mut [Shard], dim: usize) {
    for input in [true, false] {
        let global = if input {
            &mut model.input
        } else {
            &mut model.output
        };
        let blocks = global.len().div_ceil(MERGE_ROWS * dim);
        // Each block's rows and flags in every shard, shard by shard.
        let mut by_block: Vec<ShardBlocks<'_>> =
            (0..blocks).map(|_| (Vec::new(), Vec::new())).collect();
        for shard in shards.iter_mut() {
            let (rows, flags) = if input {
                (&mut shard.vectors.input, &mut shard.touched.input)
            } else {
                (&mut shard.vectors.output, &mut shard.touched.output)
            };
            let pieces = rows
                .chunks_mut(MERGE_ROWS * dim)
                .zip(flags.chunks_mut(MERGE_ROWS));
            for ((rows, flags), block) in pieces.zip(by_block.iter_mut()) {
                block.0.push(rows);
                block.1.push(flags);
            }
        }
        global
            .par_chunks_mut(MERGE_ROWS * dim)
            .zip(by_block.into_par_iter())
            .for_each(|(global, (mut locals, mut flags))| {
                let mut base = vec![0.0f32; dim];
                for row in 0..global.len() / dim {
                    if !flags.iter().any(|f| f[row]) {
                        continue;
                    }
                    let span = row * dim..(row + 1) * dim;
                    base.copy_from_slice(&global[span.clone()]);
                    for (local, flag) in locals.iter().zip(flags.iter()) {
                        if flag[row] {
                            for ((g, &l), &b) in global[span.clone()]
                                .iter_mut()
                                .zip(&local[span.clone()])
                                .zip(&base)
                            {
                                *g += l - b;
                            }
                        }
                    }
                    for local in locals.iter_mut() {
                        local[span.clone()].copy_from_slice(&global[span.clone()]);
                    }
                    for flag in flags.iter_mut() {
                        flag[row] = false;
                    }
                }
            });
    }
}

/// The round trainer compiled for the best instruction set the CPU has.
#[derive(Clone, Copy)]
struct Kernels {
    round: fn(&mut Shard, &[&[u32]], &Shared),
}

impl Kernels {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Self {
                    round: |s, r, c| unsafe { round_avx512(s, r, c) },
                };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Self {
                    round: |s, r, c| unsafe { round_avx2(s, r, c) },
                };
            }
        }
        Self { round: round_plain }
    }

    fn round(&self, shard: &mut Shard, reviews: &[&[u32]], shared: &Shared) {
        (self.round)(shard, reviews, shared)
    }
}

/// # Safety
/// The CPU must have AVX-512F (checked by [`Kernels::detect`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn round_avx512(shard: &mut Shard, reviews: &[&[u32]], shared: &Shared) {
    round_plain(shard, reviews, shared)
}

/// # Safety
/// The CPU must have AVX2 (checked by [`Kernels::detect`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn round_avx2(shard: &mut Shard, reviews: &[&[u32]], shared: &Shared) {
    round_plain(shard, reviews, shared)
}

/// One round of one shard: its next reviews until it has read [`ROUND_TOKENS`] words (or
/// finished its last epoch). Inlined into each instruction set's version.
#[inline(always)]
fn round_plain(shard: &mut Shard, reviews: &[&[u32]], shared: &Shared) {
    let config = &shared.config;
    let dim = shared.dim;
    let mut read_in_round = 0usize;
    while read_in_round < ROUND_TOKENS && shard.epoch < config.epochs {
        if shard.next == reviews.len() {
            shard.next = 0;
            shard.epoch += 1;
            shard.rng = SeededRng::new(derive_seed(
                config.seed,
                &[shard.index as u64, shard.epoch as u64],
            ));
            continue;
        }
        let review = reviews[shard.next];
        shard.next += 1;
        shard.sentence.clear();
        for &rank in review {
            if rank == UNRANKED || rank as usize >= shared.words {
                continue;
            }
            read_in_round += 1;
            shard.read += 1;
            if shard.rng.next_f32() < shared.keep[rank as usize] {
                shard.sentence.push(rank as usize);
            }
        }
        let progress = (shard.read as f64 / shard.planned.max(1) as f64).min(1.0) as f32;
        let lr = config.learning_rate * (1.0 - progress).max(1e-4);
        let Shard {
            vectors,
            touched,
            rng,
            sentence,
            grad,
            ..
        } = shard;
        for (pos, &center) in sentence.iter().enumerate() {
            let reach = 1 + rng.below(config.window.max(1) as u64) as usize;
            let lo = pos.saturating_sub(reach);
            let hi = (pos + reach + 1).min(sentence.len());
            for (ctx_pos, &context) in sentence.iter().enumerate().take(hi).skip(lo) {
                if ctx_pos == pos {
                    continue;
                }
                // Predict `center` from `context`'s input vector, as word2vec does.
                grad.fill(0.0);
                let v = context * dim..(context + 1) * dim;
                touched.input[context] = true;
                for k in 0..=config.negatives {
                    let (target, label) = if k == 0 {
                        (center, 1.0f32)
                    } else {
                        let t =
                            shared.noise[(rng.next_u64() >> (64 - NOISE_BITS)) as usize] as usize;
                        if t == center {
                            continue;
                        }
                        (t, 0.0)
                    };
                    let o = target * dim..(target + 1) * dim;
                    touched.output[target] = true;
                    let dot = dot(&vectors.input[v.clone()], &vectors.output[o.clone()]);
                    let g = (label - logistic(&shared.logistic, dot)) * lr;
                    axpy(g, &vectors.output[o.clone()], grad);
                    axpy(g, &vectors.input[v.clone()], &mut vectors.output[o]);
                }
                let row = &mut vectors.input[v];
                for (x, &d) in row.iter_mut().zip(grad.iter()) {
                    *x += d;
                }
            }
        }
    }
}

/// `σ(x)` from the table; 0 or 1 beyond `±MAX_EXP` (word2vec clips there too).
#[inline(always)]
fn logistic(table: &[f32], x: f32) -> f32 {
    if x >= MAX_EXP {
        1.0
    } else if x <= -MAX_EXP {
        0.0
    } else {
        let i = ((x + MAX_EXP) * (EXP_TABLE_SIZE as f32 / MAX_EXP / 2.0)) as usize;
        table[i.min(EXP_TABLE_SIZE - 1)]
    }
}

/// word2vec's table: `σ` at the centre of each of [`EXP_TABLE_SIZE`] steps over
/// `[-MAX_EXP, MAX_EXP]`.
fn logistic_table() -> Vec<f32> {
    (0..EXP_TABLE_SIZE)
        .map(|i| {
            let x = (i as f32 / EXP_TABLE_SIZE as f32 * 2.0 - 1.0) * MAX_EXP;
            let e = x.exp();
            e / (e + 1.0)
        })
        .collect()
}

/// `a · b` with 16 partial sums (vectorizes; the same order on every instruction set).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (a16, a_rest) = a.split_at(a.len() / 16 * 16);
    let (b16, b_rest) = b.split_at(a16.len());
    for (ca, cb) in a16.chunks_exact(16).zip(b16.chunks_exact(16)) {
        for i in 0..16 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let mut sum = 0.0f32;
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum += x * y;
    }
    // Pairwise, in a fixed order.
    let mut width = 8;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0] + sum
}

/// `y += g · x`.
#[inline(always)]
fn axpy(g: f32, x: &[f32], y: &mut [f32]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += g * xi;
    }
}

/// A table of word indices drawn in proportion to `count^0.75` (word2vec's noise
/// distribution), `2^NOISE_BITS` long.
fn noise_table(counts: &[u64]) -> Vec<u32> {
    let size = 1usize << NOISE_BITS;
    let weights: Vec<f64> = counts.iter().map(|&c| (c as f64).powf(0.75)).collect();
    let sum: f64 = weights.iter().sum();
    if sum == 0.0 {
        return (0..size)
            .map(|i| (i % counts.len().max(1)) as u32)
            .collect();
    }
    let mut table = Vec::with_capacity(size);
    let mut cumulative = 0.0;
    let mut word = 0usize;
    for i in 0..size {
        let position = (i as f64 + 0.5) / size as f64;
        while word + 1 < weights.len() && (cumulative + weights[word]) / sum < position {
            cumulative += weights[word];
            word += 1;
        }
        table.push(word as u32);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embeddings::nearest;
    use crate::vocab::Vocabulary;

    fn topics(count: usize, seed: u64) -> Vec<Vec<u32>> {
        // Two topics that never share a review.
        let mut rng = SeededRng::new(seed);
        (0..count)
            .map(|i| {
                let topic = if i % 2 == 0 {
                    [0u32, 1, 2, 3]
                } else {
                    [4u32, 5, 6, 7]
                };
                (0..30).map(|_| topic[rng.below(4) as usize]).collect()
            })
            .collect()
    }

    #[test]
    fn skipgram_brings_co_occurring_words_together() {
        let reviews = topics(400, 2);
        let refs: Vec<&[u32]> = reviews.iter().map(Vec::as_slice).collect();
        let config = SkipGramConfig {
            dim: 16,
            epochs: 3,
            subsample: 0.0,
            ..SkipGramConfig::default()
        };
        let v = train_skipgram(&refs, 12, &config);
        assert_eq!(v.weights.len(), 12 * 16);
        let words: Vec<String> = (0..8).map(|i| format!("w{i}")).collect();
        let vocab = Vocabulary::from_ranked_words(words);
        for (word, same) in [("w0", ["w1", "w2", "w3"]), ("w5", ["w4", "w6", "w7"])] {
            let near = nearest(&v, &vocab, word, 3);
            assert!(
                near.iter().all(|(w, _)| same.contains(&w.as_str())),
                "{word}: {near:?}"
            );
        }
    }

    #[test]
    fn the_same_vectors_on_every_run_and_any_number_of_threads() {
        // Enough words for several rounds, so that merges happen.
        let reviews = topics(3 * SHARDS * ROUND_TOKENS / 30 + 7, 9);
        let refs: Vec<&[u32]> = reviews.iter().map(Vec::as_slice).collect();
        let config = SkipGramConfig {
            dim: 20,
            epochs: 2,
            subsample: 1e-2,
            ..SkipGramConfig::default()
        };
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let mut reports = Vec::new();
                    let v = train_skipgram_with_progress(&refs, 12, &config, &mut |done, all| {
                        reports.push((done, all))
                    });
                    (v, reports)
                })
        };
        let (one, reports) = on(1);
        let (two, _) = on(2);
        let (three, _) = on(3);
        assert_eq!(one, two, "1 and 2 threads");
        assert_eq!(one, three, "1 and 3 threads");
        assert_eq!(one, on(2).0, "two runs");
        assert_ne!(
            one,
            train_skipgram(&refs, 12, &SkipGramConfig { seed: 2, ..config }),
            "another seed"
        );
        // Progress: rising, ending at every word of every epoch.
        let all = 2 * refs.iter().map(|r| r.len() as u64).sum::<u64>();
        assert!(reports.len() > 3, "{reports:?}");
        assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(reports.last(), Some(&(all, all)));
    }

    #[test]
    fn dot_and_logistic_match_their_definitions() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let exact: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (*x as f64) * (*y as f64))
            .sum();
        assert!((dot(&a, &b) as f64 - exact).abs() < 1e-5);
        let table = logistic_table();
        for x in [-7.0f32, -5.9, -1.0, 0.0, 0.3, 2.5, 5.99, 6.0, 9.0] {
            let expected = 1.0 / (1.0 + (-x).exp());
            assert!((logistic(&table, x) - expected).abs() < 0.01, "{x}");
        }
        let counts = [10u64, 0, 1000, 1];
        let noise = noise_table(&counts);
        assert_eq!(noise.len(), 1 << NOISE_BITS);
        let share = |w| noise.iter().filter(|&&t| t == w).count() as f64 / noise.len() as f64;
        let weights: Vec<f64> = counts.iter().map(|&c| (c as f64).powf(0.75)).collect();
        let sum: f64 = weights.iter().sum();
        for (w, weight) in weights.iter().enumerate() {
            assert!((share(w as u32) - weight / sum).abs() < 1e-4, "{w}");
        }
    }
}
