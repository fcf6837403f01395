//! A small decoder-only transformer (GPT-style, pre-norm) built from candle primitives whose
//! gradients candle knows, so it trains on CPU and GPU alike. Layer norm is written out
//! here because candle-nn's fused layer-norm kernel has no backward pass.

use candle_core::{Module, Tensor, D};
use candle_nn::{embedding, linear, Embedding, Init, Linear, VarBuilder};

/// Layer normalization with a learned scale and bias, from candle primitives (so it has
/// gradients): `(x − mean) / sqrt(var + eps) · scale + bias`.
pub(super) struct Norm {
    scale: Tensor,
    bias: Tensor,
    eps: f64,
}

impl Norm {
    /// This transformer's norm: tensors `scale` and `bias`, epsilon 1e-5.
    fn new(dim: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Self::named(dim, vb, "scale", 1e-5)
    }

    /// A norm whose scale tensor is called `scale_name` (BERT: `weight`) and bias `bias`.
    pub(super) fn named(dim: usize, vb: VarBuilder, scale_name: &str, eps: f64) -> candle_core::Result<Self> {
        Ok(Norm {
            scale: vb.get_with_hints(dim, scale_name, Init::Const(1.0))?,
            bias: vb.get_with_hints(dim, "bias", Init::Const(0.0))?,
            eps,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed.broadcast_mul(&self.scale)?.broadcast_add(&self.bias)
    }
}

/// Pre-norm block: `x + attn(norm(x))`, then `x + mlp(norm(x))`.
struct Block {
    norm1: Norm,
    qkv: Linear,
    proj: Linear,
    norm2: Norm,
    up: Linear,
    down: Linear,
    heads: usize,
}

impl Block {
    fn new(dim: usize, heads: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Block {
            norm1: Norm::new(dim, vb.pp("norm1"))?,
            qkv: linear(dim, 3 * dim, vb.pp("qkv"))?,
            proj: linear(dim, dim, vb.pp("proj"))?,
            norm2: Norm::new(dim, vb.pp("norm2"))?,
            up: linear(dim, 4 * dim, vb.pp("up"))?,
            down: linear(4 * dim, dim, vb.pp("down"))?,
            heads,
        })
    }

    /// `mask`: `[t, t]`, 0 on and below the diagonal, a large negative number above.
    fn forward(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let hd = c / self.heads;
        // [b, t, 3c] -> [3, b, heads, t, hd]
        let qkv =
            self.qkv.forward(&self.norm1.forward(x)?)?.reshape((b, t, 3, self.heads, hd))?.permute((2, 0, 3, 1, 4))?;
        let (q, k, v) = (qkv.get(0)?.contiguous()?, qkv.get(1)?.contiguous()?, qkv.get(2)?.contiguous()?);
        let scores = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (hd as f64).sqrt()))?.broadcast_add(mask)?;
        let attn = candle_nn::ops::softmax(&scores, D::Minus1)?.matmul(&v)?;
        let attn = attn.transpose(1, 2)?.reshape((b, t, c))?;
        let x = (x + self.proj.forward(&attn)?)?;
        let mlp = self.down.forward(&self.up.forward(&self.norm2.forward(&x)?)?.gelu_erf()?)?;
        x + mlp
    }
}

/// Token and position embeddings, blocks, a final norm and the next-token head.
pub struct Transformer {
    tokens: Embedding,
    positions: Embedding,
    blocks: Vec<Block>,
    norm: Norm,
    head: Linear,
    context: usize,
}

impl Transformer {
    /// A transformer over `vocabulary` tokens reading up to `context` of them.
    pub fn new(
        vocabulary: usize,
        context: usize,
        layers: usize,
        dim: usize,
        heads: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        Ok(Transformer {
            tokens: embedding(vocabulary, dim, vb.pp("tokens"))?,
            positions: embedding(context, dim, vb.pp("positions"))?,
            blocks: (0..layers)
                .map(|i| Block::new(dim, heads, vb.pp(format!("block{i}"))))
                .collect::<Result<_, _>>()?,
            norm: Norm::new(dim, vb.pp("norm"))?,
            head: linear(dim, vocabulary, vb.pp("head"))?,
            context,
        })
    }

    /// Next-token logits `[b, t, vocabulary]` for token ids `[b, t]` (`t ≤ context`).
    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (_, t) = ids.dims2()?;
        if t > self.context {
            candle_core::bail!("{t} tokens is more than the model's context of {}", self.context);
        }
        let device = ids.device();
        let positions = Tensor::arange(0u32, t as u32, device)?;
        let mut x = self.tokens.forward(ids)?.broadcast_add(&self.positions.forward(&positions)?)?;
        let mask: Vec<f32> = (0..t * t).map(|i| if i % t > i / t { -1e9 } else { 0.0 }).collect();
        let mask = Tensor::from_vec(mask, (t, t), device)?;
        for block in &self.blocks {
            x = block.forward(&x, &mask)?;
        }
        self.head.forward(&self.norm.forward(&x)?)
    }
}
