//! The tensor types hafrm reads, and their dequantisation to f32: the float types of
//! safetensors and GGUF, and llama.cpp's block quantisations (ggml-quants.c's layouts).

/// A stored tensor's element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorType {
    F32,
    F16,
    Bf16,
    /// Blocks of 32: an f16 scale, 32 signed bytes.
    Q8_0,
    /// Blocks of 32: an f16 scale, 32 nibbles offset by 8.
    Q4_0,
    /// Blocks of 32: an f16 scale and an f16 minimum, 32 nibbles.
    Q4_1,
    /// Super-blocks of 256: f16 scale and minimum, 8 six-bit sub-scales and minima, nibbles.
    Q4K,
    /// Q4_K with a fifth bit per value.
    Q5K,
    /// Super-blocks of 256: 16 signed 8-bit sub-scales, six-bit values, an f16 scale.
    Q6K,
}

/// The GGUF tensor types hafrm reads, for messages.
pub const GGUF_SUPPORTED: &str = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K";

/// ggml's names of its type ids (ggml.h's `ggml_type`), so that an unsupported one is named.
const GGML_NAMES: [(u32, &str); 32] = [
    (0, "F32"), (1, "F16"), (2, "Q4_0"), (3, "Q4_1"), (6, "Q5_0"), (7, "Q5_1"), (8, "Q8_0"), (9, "Q8_1"),
    (10, "Q2_K"), (11, "Q3_K"), (12, "Q4_K"), (13, "Q5_K"), (14, "Q6_K"), (15, "Q8_K"), (16, "IQ2_XXS"),
    (17, "IQ2_XS"), (18, "IQ3_XXS"), (19, "IQ1_S"), (20, "IQ4_NL"), (21, "IQ3_S"), (22, "IQ2_S"), (23, "IQ4_XS"),
    (24, "I8"), (25, "I16"), (26, "I32"), (27, "I64"), (28, "F64"), (29, "IQ1_M"), (30, "BF16"), (34, "TQ1_0"),
    (35, "TQ2_0"), (39, "MXFP4"),
];

impl TensorType {
    /// The type of ggml type id `id`; an unsupported one is named in the error.
    pub fn from_ggml(id: u32) -> Result<Self, String> {
        Ok(match id {
            0 => Self::F32,
            1 => Self::F16,
            30 => Self::Bf16,
            8 => Self::Q8_0,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            other => {
                let name = GGML_NAMES.iter().find(|(i, _)| *i == other).map_or("an unknown type", |(_, n)| n);
                return Err(format!("type {name} (ggml type {other}), which hafrm cannot read (supported: {GGUF_SUPPORTED})"));
            }
        })
    }

    /// The type of a safetensors `dtype`.
    pub fn from_safetensors(dtype: &str) -> Option<Self> {
        match dtype {
            "F32" => Some(Self::F32),
            "F16" => Some(Self::F16),
            "BF16" => Some(Self::Bf16),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Bf16 => "BF16",
            Self::Q8_0 => "Q8_0",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q4K => "Q4_K",
            Self::Q5K => "Q5_K",
            Self::Q6K => "Q6_K",
        }
    }

    /// (values, bytes) of one block.
    pub fn block(self) -> (usize, usize) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::Bf16 => (1, 2),
            Self::Q8_0 => (32, 34),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q4K => (256, 144),
            Self::Q5K => (256, 176),
            Self::Q6K => (256, 210),
        }
    }

    /// The bytes `n` values take, or why they cannot be stored (`n` not whole blocks).
    pub fn byte_len(self, n: usize) -> Result<usize, String> {
        let (values, bytes) = self.block();
        if n % values != 0 {
            return Err(format!("{n} values are not whole {} blocks of {values}", self.name()));
        }
        Ok(n / values * bytes)
    }

    /// `raw` (exactly `byte_len(n)` bytes) as f32 values.
    pub fn decode(self, raw: &[u8]) -> Vec<f32> {
        let (_, block_bytes) = self.block();
        let blocks = raw.chunks_exact(block_bytes);
        match self {
            Self::F32 => raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect(),
            Self::F16 => raw.chunks_exact(2).map(|b| half_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect(),
            Self::Bf16 => raw.chunks_exact(2).map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)).collect(),
            Self::Q8_0 => blocks.flat_map(|b| {
                let d = f16_at(b, 0);
                b[2..].iter().map(move |&q| d * f32::from(q as i8))
            }).collect(),
            Self::Q4_0 => blocks.flat_map(|b| {
                let d = f16_at(b, 0);
                nibbles(&b[2..18]).map(move |q| d * (f32::from(q) - 8.0))
            }).collect(),
            Self::Q4_1 => blocks.flat_map(|b| {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                nibbles(&b[4..20]).map(move |q| d * f32::from(q) + m)
            }).collect(),
            Self::Q4K | Self::Q5K => blocks.flat_map(|b| k_quant_45(b, self == Self::Q5K)).collect(),
            Self::Q6K => blocks.flat_map(q6_k).collect(),
        }
    }
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    half_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

/// A 32-value block's nibbles: the low nibbles are values 0..16, the high ones 16..32.
fn nibbles(qs: &[u8]) -> impl Iterator<Item = u8> + '_ {
    qs.iter().map(|q| q & 0x0f).chain(qs.iter().map(|q| q >> 4))
}

/// Sub-block `j`'s six-bit scale and minimum, packed in Q4_K's and Q5_K's 12 bytes.
fn scale_min(scales: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        ((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4), (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4))
    }
}

/// One Q4_K (or, with `fifth_bit`, Q5_K) super-block: 8 sub-blocks of 32 values, each
/// `d * scale * q - dmin * min`. Sub-block `g`'s values are the low (even `g`) or high (odd)
/// nibbles of 32 bytes; Q5_K's fifth bit of value `l` is bit `g` of `qh[l]`.
fn k_quant_45(block: &[u8], fifth_bit: bool) -> Vec<f32> {
    let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
    let scales = &block[4..16];
    let (qh, qs) = if fifth_bit { (&block[16..48], &block[48..176]) } else { (&[][..], &block[16..144]) };
    let mut out = Vec::with_capacity(256);
    for g in 0..8 {
        let (scale, min) = scale_min(scales, g);
        let (scale, min) = (d * f32::from(scale), dmin * f32::from(min));
        for l in 0..32 {
            let mut q = (qs[(g / 2) * 32 + l] >> (4 * (g % 2))) & 0x0f;
            if fifth_bit {
                q |= ((qh[l] >> g) & 1) << 4;
            }
            out.push(scale * f32::from(q) - min);
        }
    }
    out
}

/// One Q6_K super-block: 8 groups of 32 values, each `d * scale[e / 16] * (q - 32)`, a
/// value's low four bits in `ql` and its high two in `qh`.
fn q6_k(block: &[u8]) -> Vec<f32> {
    let (ql, qh, scales) = (&block[..128], &block[128..192], &block[192..208]);
    let d = f16_at(block, 208);
    let mut out = Vec::with_capacity(256);
    for g in 0..8 {
        let (half, t) = (g / 4, g % 4);
        for l in 0..32 {
            let low = (ql[half * 64 + (t % 2) * 32 + l] >> (4 * (t / 2))) & 0x0f;
            let high = (qh[half * 32 + l] >> (2 * t)) & 3;
            let q = i32::from(low | (high << 4)) - 32;
            let e = g * 32 + l;
            out.push(d * f32::from(scales[e / 16] as i8) * q as f32);
        }
    }
    out
}

/// IEEE half precision to single.
pub fn half_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exponent = u32::from((h >> 10) & 0x1f);
    let mantissa = u32::from(h & 0x3ff);
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise it.
            let shift = m.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((m << shift) & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_widens_exactly() {
        for (bits, value) in [(0x3c00u16, 1.0f32), (0xc000, -2.0), (0x3555, 0.333_251_95), (0x0001, 5.960_464_5e-8), (0x7bff, 65504.0), (0x0000, 0.0)] {
            assert_eq!(half_to_f32(bits), value, "{bits:#06x}");
        }
        assert!(half_to_f32(0x7e00).is_nan() && half_to_f32(0x7c00) == f32::INFINITY);
    }

    #[test]
    fn hand_built_blocks_decode() {
        // Q8_0: scale 0.5 (f16 0x3800), values -128..=-97.
        let mut block = vec![0x00, 0x38];
        block.extend((0..32).map(|i: i32| (i - 128) as i8 as u8));
        assert_eq!(TensorType::Q8_0.decode(&block)[..3], [-64.0, -63.5, -63.0]);
        // Q4_1: scale 2, minimum -1; byte 0x3a holds 10 (value 0) and 3 (value 16).
        let mut block = vec![0x00, 0x40, 0x00, 0xbc, 0x3a];
        block.extend([0u8; 15]);
        let values = TensorType::Q4_1.decode(&block);
        assert_eq!((values[0], values[16], values[1]), (19.0, 5.0, -1.0));
        let unsupported = TensorType::from_ggml(6).unwrap_err();
        assert!(unsupported.contains("Q5_0") && unsupported.contains("Q4_K"), "{unsupported}");
        assert!(TensorType::Q4K.byte_len(100).unwrap_err().contains("not whole Q4_K blocks of 256"));
    }
}
