//! Operations over all of a module's parameters: deterministic ids, global gradient-norm
//! clipping, and asynchronous reads to the host (the only kind of read-back a browser's
//! WebGPU device allows).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::error::{Error, Result};

/// Renumbers parameters 0, 1, 2… in visiting order, so that a model rebuilt from its config
/// has the ids its saved optimizer state refers to.
pub fn number_params<M: Module>(module: M) -> M {
    struct Numberer(u64);
    impl ModuleMapper for Numberer {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (_, value, mapper) = param.consume();
            self.0 += 1;
            Param::from_mapped_value(ParamId::from(self.0 - 1), value, mapper)
        }
    }
    module.map(&mut Numberer(0))
}

/// The global L2 norm of all gradients of `module` (a device scalar, `[1]`).
pub fn global_grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    struct SquaredNorm<'a> {
        grads: &'a GradientsParams,
        sum: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SquaredNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.get::<D>(param.id) {
                let squared = grad.square().sum();
                self.sum = Some(match self.sum.take() {
                    Some(sum) => sum + squared,
                    None => squared,
                });
            }
        }
    }
    let mut visitor = SquaredNorm { grads, sum: None };
    module.visit(&mut visitor);
    visitor.sum.map(Tensor::sqrt)
}

/// Scales all gradients so that their global norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`; Burn's own norm clipping works per parameter). The scale stays on the
/// device: no read-back. Returns the norm before clipping.
pub fn clip_global_grad_norm<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> Option<Tensor<1>> {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        coefficient: Tensor<1>,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.remove::<D>(param.id) {
                let scaled = grad * self.coefficient.clone().unsqueeze::<D>();
                self.grads.register(param.id, scaled);
            }
        }
    }
    let norm = global_grad_norm(module, grads)?;
    let coefficient = norm.clone().add_scalar(1e-6).recip().mul_scalar(max_norm).clamp_max(1.0);
    module.visit(&mut Scale { grads, coefficient });
    Some(norm)
}

/// Reads a tensor back to the host as `f32`s, asynchronously (the only read-back a browser's
/// WebGPU device allows). `what` names the values in errors.
pub async fn read_floats<const D: usize>(tensor: Tensor<D>, what: &str) -> Result<Vec<f32>> {
    let fail = |e: &dyn std::fmt::Debug| Error::Backend(format!("reading {what}: {e:?}"));
    tensor.into_data_async().await.map_err(|e| fail(&e))?.convert::<f32>().try_into_vec::<f32>().map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    #[test]
    fn global_norm_clipping_scales_all_gradients_together() {
        let device = Device::flex().autodiff();
        let layer: Linear = LinearConfig::new(2, 2).init(&device);
        // loss = 3 * sum(weight) + 4 * sum(bias): every weight gradient is 3, every bias one 4,
        // so the global norm is sqrt(4 * 9 + 2 * 16) = sqrt(68).
        let loss = layer.weight.val().sum().mul_scalar(3.0) + layer.bias.as_ref().unwrap().val().sum().mul_scalar(4.0);
        let mut grads = GradientsParams::from_grads(loss.backward(), &layer);
        let norm = clip_global_grad_norm(&layer, &mut grads, 1.0).unwrap();
        let norm: f32 = norm.into_scalar();
        assert!((norm - 68f32.sqrt()).abs() < 1e-5, "{norm}");
        let weight: Vec<f32> = grads.get::<2>(layer.weight.id).unwrap().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        let bias: Vec<f32> = grads.get::<1>(layer.bias.as_ref().unwrap().id).unwrap().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        let scale = 1.0 / 68f32.sqrt();
        assert!(weight.iter().all(|g| (g - 3.0 * scale).abs() < 1e-5), "{weight:?}");
        assert!(bias.iter().all(|g| (g - 4.0 * scale).abs() < 1e-5), "{bias:?}");
        // Below the limit nothing changes.
        let mut small = GradientsParams::from_grads((layer.weight.val().sum().mul_scalar(0.01)).backward(), &layer);
        clip_global_grad_norm(&layer, &mut small, 1.0);
        let kept: Vec<f32> = small.get::<2>(layer.weight.id).unwrap().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        assert!(kept.iter().all(|g| (g - 0.01).abs() < 1e-7), "{kept:?}");
    }
}
