//! The n-gram models of an experiment's stacked runs, fitted once per set of data: the runs of
//! one seed (a control and its variants) stack on the same sets with the same settings, and
//! the two n-gram fits cost about 20 s a run on IMDB. A fit is kept in memory until the last
//! run that needs it is done (about 70 MB each at the default 2^24 buckets).

use std::collections::HashMap;

use imdb_train::ngram_stack::FittedNgrams;

use crate::config::RunConfig;
use crate::error::XtaskError;

/// The n-gram models a run stacks with, and whether an earlier run fitted them.
pub struct RunNgrams<'a> {
    /// The fitted models.
    pub fitted: &'a FittedNgrams,
    /// Whether they were fitted for an earlier run (this run then is not charged their fit).
    pub fitted_earlier: bool,
}

impl RunNgrams<'_> {
    /// The seconds of fitting the models that this run is charged: the fit's for the run that
    /// fitted them, none for the runs that share them.
    pub fn fit_seconds(&self) -> f64 {
        if self.fitted_earlier {
            0.0
        } else {
            self.fitted.seconds()
        }
    }
}

/// Fitted n-gram models by what they depend on, with how many runs still need each.
#[derive(Default)]
pub struct NgramCache {
    fitted: HashMap<String, FittedNgrams>,
    uses: HashMap<String, usize>,
}

/// What a stack's n-gram models depend on: the run's data settings and seed (which fix its
/// sets) and its n-gram settings; `None` for a run that does not stack.
fn key(config: &RunConfig) -> Option<String> {
    let ngram = config.ngram_stack.as_ref()?;
    Some(serde_json::json!([config.data, config.seed, ngram]).to_string())
}

impl NgramCache {
    /// A cache for these runs (their configs, one seed each, in the order they run).
    pub fn new<'a>(runs: impl IntoIterator<Item = &'a RunConfig>) -> Self {
        let mut cache = Self::default();
        for key in runs.into_iter().filter_map(key) {
            *cache.uses.entry(key).or_default() += 1;
        }
        cache
    }

    /// The run's n-gram models, fitted by `fit` now unless an earlier run fitted them; `None`
    /// for a run that does not stack.
    pub fn get_or_fit(
        &mut self,
        config: &RunConfig,
        fit: impl FnOnce() -> Result<Option<FittedNgrams>, imdb_train::TrainError>,
    ) -> Result<Option<RunNgrams<'_>>, XtaskError> {
        let Some(key) = key(config) else {
            return Ok(None);
        };
        let fitted_earlier = self.fitted.contains_key(&key);
        if !fitted_earlier {
            let Some(fitted) = fit()? else {
                return Ok(None);
            };
            self.fitted.insert(key.clone(), fitted);
        }
        Ok(self.fitted.get(&key).map(|fitted| RunNgrams {
            fitted,
            fitted_earlier,
        }))
    }

    /// Marks the run done (whether it ran or had finished before): its models are dropped once
    /// no later run needs them.
    pub fn release(&mut self, config: &RunConfig) {
        let Some(key) = key(config) else { return };
        if let Some(uses) = self.uses.get_mut(&key) {
            *uses = uses.saturating_sub(1);
            if *uses == 0 {
                self.uses.remove(&key);
                self.fitted.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64, stacked: bool) -> RunConfig {
        RunConfig {
            seed,
            ngram_stack: stacked.then(imdb_model::ngram::NgramConfig::default),
            ..RunConfig::default()
        }
    }

    #[test]
    fn runs_on_the_same_sets_share_a_key_kept_until_the_last_is_done() {
        let runs = [
            config(1, true),
            config(2, true),
            config(1, true),
            config(1, false),
        ];
        assert_eq!(key(&runs[0]), key(&runs[2]));
        assert_ne!(
            key(&runs[0]),
            key(&runs[1]),
            "another seed draws other sets"
        );
        assert_eq!(key(&runs[3]), None);
        let mut cache = NgramCache::new(&runs);
        let shared = key(&runs[0]).unwrap();
        assert_eq!(cache.uses[&shared], 2);
        // A run without a stack fits nothing.
        let mut fits = 0;
        let got = cache.get_or_fit(&runs[3], || {
            fits += 1;
            Ok(None)
        });
        assert!(got.unwrap().is_none());
        assert_eq!(fits, 0);
        cache.release(&runs[0]);
        assert_eq!(cache.uses[&shared], 1);
        cache.release(&runs[2]);
        assert!(!cache.uses.contains_key(&shared));
        assert!(cache.fitted.is_empty());
    }
}
