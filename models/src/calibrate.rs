//! Calibration and out-of-scope detection.
//!
//! The policy turns probabilities into actions (answer, clarify, hand off), so
//! a 0.9 must mean "right about 90% of the time". Neural heads are usually
//! over-confident; temperature scaling (Guo et al., 2017) fixes that with one
//! scalar fitted on validation data, never on the test/held-out set.
//! Out-of-scope detection combines a trained `out_of_scope` class with a
//! threshold on the calibrated top probability, also chosen on validation data.
//!
//! What the service applies to every message ([`softmax`], [`argmax`],
//! [`is_out_of_scope`]) is always built; fitting temperatures and choosing
//! thresholds on validation data is training (feature `train`).

mod inference;
#[cfg(feature = "train")]
mod temperature;
#[cfg(feature = "train")]
mod thresholds;

pub use inference::{argmax, is_out_of_scope, softmax};
#[cfg(feature = "train")]
pub use temperature::{expected_calibration_error, fit_temperature, mean_nll, ECE_BINS};
#[cfg(feature = "train")]
pub use thresholds::{
    choose_fbeta_threshold, choose_oos_threshold, choose_threshold_at_precision, evaluate_oos,
    precision_recall, OosOperatingPoint,
};

#[cfg(all(test, feature = "train"))]
mod tests;
