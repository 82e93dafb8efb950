//! Rotary position embeddings (RoFormer), as `LlamaRotaryEmbedding` computes them: each pair of a
//! head's dimensions `(i, i + hd/2)` (the "rotate half" layout) is rotated by `position · θᵢ`,
//! `θᵢ = rope_theta^(−2i/hd)`, optionally rescaled as Llama 3.1/3.2 do (`rope_type: llama3`).
//! The angles are computed on the host in f32, as transformers does, and uploaded per call: a
//! `[t, hd]` table is small next to any layer's work.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};

/// The frequency schedule a config's rope parameters select.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// `rope_type: default`: the plain schedule.
    Default,
    /// `rope_type: llama3`: long wavelengths divided by `factor`, short ones kept, a smooth
    /// blend between (`_compute_llama3_parameters`).
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_position_embeddings: f64 },
}

/// The inverse frequencies of one head (`hd / 2` of them).
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
}

impl Rope {
    pub fn new(head_dim: usize, theta: f64, scaling: RopeScaling) -> Result<Self> {
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(Error::Config(format!("head_dim must be a positive even number, got {head_dim}")));
        }
        // transformers: 1 / base^(arange(0, dim, 2) / dim) in f32.
        let mut inv_freq: Vec<f32> =
            (0..head_dim / 2).map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_dim as f32)).collect();
        if let RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } = scaling
        {
            let (factor, low, high, old) = (
                factor as f32,
                low_freq_factor as f32,
                high_freq_factor as f32,
                original_max_position_embeddings as f32,
            );
            let (low_wavelen, high_wavelen) = (old / low, old / high);
            for f in &mut inv_freq {
                let wavelen = 2.0 * std::f32::consts::PI / *f;
                let scaled = if wavelen > low_wavelen { *f / factor } else { *f };
                // transformers: ~(wavelen < high) & ~(wavelen > low); the same for the finite
                // wavelengths of positive frequencies.
                let medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
                *f = if medium {
                    let smooth = (old / wavelen - low) / (high - low);
                    (1.0 - smooth) * scaled / factor + smooth * scaled
                } else {
                    scaled
                };
            }
        }
        Ok(Self { inv_freq })
    }

    /// `cos` and `sin` of the angles of positions `past..past + t`, `[1, 1, t, hd]` each, the
    /// frequencies repeated over both halves (`cat(freqs, freqs)`).
    pub fn cos_sin(&self, past: usize, t: usize, device: &Device) -> (Tensor<4>, Tensor<4>) {
        let half = self.inv_freq.len();
        let hd = 2 * half;
        let mut cos = Vec::with_capacity(t * hd);
        let mut sin = Vec::with_capacity(t * hd);
        for p in past..past + t {
            for _half in 0..2 {
                for f in &self.inv_freq {
                    let angle = (p as f32 * f) as f64;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
        let table = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [1, 1, t, hd]), device);
        (table(cos), table(sin))
    }
}

/// `x · cos + rotate_half(x) · sin`, `rotate_half(x) = cat(−x₂, x₁)` over the head dimension.
///
/// # Shapes
/// - x: `[b, heads, t, hd]`, cos and sin: `[1, 1, t, hd]` → `[b, heads, t, hd]`
pub fn apply(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let hd = x.dims()[3];
    let x1 = x.clone().narrow(3, 0, hd / 2);
    let x2 = x.clone().narrow(3, hd / 2, hd / 2);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_scaling_keeps_short_wavelengths_and_divides_long_ones() {
        let plain = Rope::new(64, 500000.0, RopeScaling::Default).unwrap();
        let scaled = Rope::new(
            64,
            500000.0,
            RopeScaling::Llama3 {
                factor: 32.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192.0,
            },
        )
        .unwrap();
        // The first frequency (wavelength 2π) is far below 8192/4: unchanged.
        assert_eq!(plain.inv_freq[0], scaled.inv_freq[0]);
        // The last (wavelength ≈ 2π · 500000^(62/64)) is far above 8192: divided by the factor.
        let last = plain.inv_freq.len() - 1;
        assert!((scaled.inv_freq[last] - plain.inv_freq[last] / 32.0).abs() <= 1e-12);
    }

    #[test]
    fn an_odd_head_dim_is_refused() {
        assert!(Rope::new(7, 10000.0, RopeScaling::Default).is_err());
    }
}
