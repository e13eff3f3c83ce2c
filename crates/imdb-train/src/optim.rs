//! Adam in one pass per parameter.
//!
//! Burn's Adam updates each parameter with about fourteen tensor operations, each a full pass
//! over the parameter with a fresh allocation; for the notebook's 2.6 million parameters that
//! is a third of a training step. [`FusedAdam`] computes the same update (`m̂ / (√v̂ + ε)`, as
//! Burn and PyTorch do) in a single pass on the CPU backends, in place where the buffers are not
//! shared, and with plain tensor operations on other backends. Its state is recorded like any
//! Burn optimizer's, so checkpoints resume exactly.

use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource};
use burn::tensor::{Device, Tensor};
use burn_pack::Scalar;
use imdb_model::kernels::adam::AdamStep;
use imdb_model::ops::{fused_adam, has_fused_kernels};

/// Adam with a single-pass update. Build it with [`FusedAdam::new`] and wrap it in a
/// `ModuleOptimizer` (`ModuleOptimizer::from(FusedAdam::new(..))`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
}

impl FusedAdam {
    /// Adam with these decay rates and ε.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        Self {
            beta_1,
            beta_2,
            epsilon,
        }
    }
}

/// The moments and step count of one parameter.
#[derive(Debug, Clone)]
pub struct FusedAdamState<const D: usize> {
    /// First moment.
    pub moment_1: Tensor<D>,
    /// Second moment.
    pub moment_2: Tensor<D>,
    /// Steps taken.
    pub time: u64,
}

impl<const D: usize> RecordState for FusedAdamState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(prefix, "moment_1", self.moment_1.to_data());
        out.push_tensor(prefix, "moment_2", self.moment_2.to_data());
        out.push_scalar(prefix, "time", Scalar::UInt(self.time));
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let moment_1 = Tensor::from_data(src.take_tensor(prefix, "moment_1")?, device);
        let moment_2 = Tensor::from_data(src.take_tensor(prefix, "moment_2")?, device);
        let time = match src.take_scalar(prefix, "time")? {
            Scalar::UInt(t) => t,
            Scalar::Int(t) => u64::try_from(t).ok()?,
            _ => return None,
        };
        Some(Self {
            moment_1,
            moment_2,
            time,
        })
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = FusedAdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (moment_1, moment_2, time) = match state {
            Some(s) => (s.moment_1, s.moment_2, s.time + 1),
            None => (grad.zeros_like(), grad.zeros_like(), 1),
        };
        let step = AdamStep {
            lr: lr as f32,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            time: time.min(u32::MAX as u64) as u32,
        };
        let (tensor, moment_1, moment_2) = if has_fused_kernels(&tensor.device()) {
            fused_adam(tensor, grad, moment_1, moment_2, step)
        } else {
            composed_adam(tensor, grad, moment_1, moment_2, step)
        };
        (
            tensor,
            Some(FusedAdamState {
                moment_1,
                moment_2,
                time,
            }),
        )
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.moment_1 = state.moment_1.to_device(device);
        state.moment_2 = state.moment_2.to_device(device);
        state
    }
}

/// The same update as tensor operations, for backends without the fused kernel.
fn composed_adam<const D: usize>(
    tensor: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    step: AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (b1, b2) = (step.beta_1 as f64, step.beta_2 as f64);
    let m = moment_1 * b1 + grad.clone() * (1.0 - b1);
    let v = moment_2 * b2 + grad.square() * (1.0 - b2);
    let t = step.time.max(1) as i32;
    let bc2 = (1.0 - b2.powi(t)).sqrt();
    let scale = step.lr as f64 * bc2 / (1.0 - b1.powi(t));
    let update = m.clone() * scale / (v.clone().sqrt() + step.epsilon as f64 * bc2);
    (tensor - update, m, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::AdamConfig;
    use burn::tensor::TensorData;

    fn tensor(values: &[f32], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::from(values), device)
    }

    fn values(t: &Tensor<1>) -> Vec<f32> {
        t.to_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn fused_and_composed_agree() {
        let device = Device::flex();
        let fused = FusedAdam::new(0.9, 0.999, 1e-7);
        let (mut p_fused, mut p_composed) = (
            tensor(&[0.5, -1.0, 2.0], &device),
            tensor(&[0.5, -1.0, 2.0], &device),
        );
        let mut state: Option<FusedAdamState<1>> = None;
        let (mut m, mut v) = (tensor(&[0.0; 3], &device), tensor(&[0.0; 3], &device));
        for t in 1..=4u32 {
            let g = tensor(&[0.3 * t as f32, -0.2, 1.0], &device);
            let (p, s) = fused.step(0.01, p_fused, g.clone(), state);
            p_fused = p;
            state = s;
            let step = AdamStep {
                lr: 0.01,
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-7,
                time: t,
            };
            let (p, m2, v2) = composed_adam(p_composed, g, m, v, step);
            (p_composed, m, v) = (p, m2, v2);
        }
        for (a, b) in values(&p_fused).iter().zip(values(&p_composed)) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert_eq!(state.unwrap().time, 4);
    }

    #[derive(burn::module::Module, Debug)]
    struct Tiny {
        weight: burn::module::Param<Tensor<2>>,
    }

    /// Three Adam steps on `x·W` with `optim`; returns W.
    fn train_tiny(mut optim: burn::optim::ModuleOptimizer) -> Vec<f32> {
        let device = Device::flex().autodiff();
        let w = TensorData::new(vec![0.1f32, -0.2, 0.3, 0.4, -0.5, 0.6], [3, 2]);
        let mut model = Tiny {
            weight: burn::module::Param::from_data(w, &device),
        };
        for step in 0..3 {
            let x: Tensor<2> = Tensor::from_data(
                TensorData::new(vec![1.0f32, step as f32, -1.0, 0.5, 2.0, -0.3], [2, 3]),
                &device,
            );
            let loss = x.matmul(model.weight.val()).tanh().sum();
            let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(0.05, model, grads);
        }
        model.weight.val().to_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn same_updates_as_burns_adam() {
        let burn_adam = AdamConfig::new().with_epsilon(1e-7).init();
        let fused = burn::optim::ModuleOptimizer::from(FusedAdam::new(0.9, 0.999, 1e-7));
        let (a, b) = (train_tiny(burn_adam), train_tiny(fused));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
        assert!(
            a.iter()
                .zip([0.1f32, -0.2, 0.3, 0.4, -0.5, 0.6])
                .any(|(x, y)| (x - y).abs() > 1e-3)
        );
    }

    #[test]
    fn state_round_trips_through_a_record() {
        let device = Device::flex();
        let state = FusedAdamState {
            moment_1: tensor(&[1.0, 2.0], &device),
            moment_2: tensor(&[3.0, 4.0], &device),
            time: 7,
        };
        let mut sink = StateSink::default();
        state.state_flatten("p", &mut sink);
        let mut source = StateSource::new(sink.scalars.into_iter().collect());
        for (name, data) in sink.tensors {
            source.insert_tensor(name, data);
        }
        let back = FusedAdamState::<1>::state_unflatten("p", &mut source, &device).unwrap();
        assert_eq!(back.time, 7);
        assert_eq!(values(&back.moment_2), [3.0, 4.0]);
    }
}
