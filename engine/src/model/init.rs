//! Parameters built from host-side seeded draws (see `rng.rs`).

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use crate::rng::SeededRng;

/// Draws parameters in a fixed order from one seeded stream.
pub struct Initializer<'a> {
    pub rng: SeededRng,
    pub device: &'a Device,
}

impl<'a> Initializer<'a> {
    pub fn new(seed: u64, device: &'a Device) -> Self {
        Self { rng: SeededRng::derive(seed, "weights"), device }
    }

    fn normal_data(&mut self, shape: Vec<usize>, std: f64) -> TensorData {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| (self.rng.normal() * std) as f32).collect();
        TensorData::new(values, shape)
    }

    pub fn normal<const D: usize>(&mut self, shape: [usize; D], std: f64) -> Param<Tensor<D>> {
        Param::from_data(self.normal_data(shape.to_vec(), std), self.device)
    }

    pub fn constant<const D: usize>(&self, shape: [usize; D], value: f32) -> Param<Tensor<D>> {
        let n: usize = shape.iter().product();
        Param::from_data(TensorData::new(vec![value; n], shape.to_vec()), self.device)
    }

    /// A linear layer `[d_in] -> [d_out]` with N(0, std) weights and a zero bias.
    pub fn linear(&mut self, d_in: usize, d_out: usize, std: f64, bias: bool) -> Linear {
        Linear {
            weight: self.normal([d_in, d_out], std),
            bias: bias.then(|| self.constant([d_out], 0.0)),
        }
    }

    /// A linear layer without bias whose weight starts at zero: the reward head, as
    /// transformers' `*ForSequenceClassification` has it (`score`, no bias: under the
    /// Bradley-Terry loss a bias cancels between chosen and rejected and gets no gradient).
    pub fn zero_linear(&self, d_in: usize, d_out: usize) -> Linear {
        Linear { weight: self.constant([d_in, d_out], 0.0), bias: None }
    }

    pub fn embedding(&mut self, n: usize, d: usize, std: f64) -> Embedding {
        Embedding { weight: self.normal([n, d], std) }
    }

    /// Unit scale, zero shift: nothing random to draw.
    pub fn layer_norm(&self, d: usize, epsilon: f64) -> LayerNorm {
        LayerNormConfig::new(d).with_epsilon(epsilon).init(self.device)
    }
}
