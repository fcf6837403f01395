//! A BERT-style encoder classifier (MiniLM, BERT-base and their kin) built from candle
//! primitives whose gradients candle knows, so a pretrained checkpoint fine-tunes on CPU and
//! GPU alike.
//!
//! Written here rather than taken from candle-transformers' `BertModel` because that model
//! normalizes with candle-nn's fused layer-norm kernel, which has no backward pass (it
//! runs inference only); the layers and tensor names are Hugging Face's, so the same
//! checkpoints load. The head is ours: mean pooling over the non-padding tokens (as
//! sentence-transformers pools) and one linear layer `head` to the classes.

use candle_core::{DType, Module, Tensor, D};
use candle_nn::{embedding, linear, Embedding, Linear, VarBuilder};

use super::transformer::Norm;

/// The shape of an encoder (from the task's model spec).
#[derive(Debug, Clone, Copy)]
pub struct EncoderShape {
    /// Blocks.
    pub layers: usize,
    /// Embedding width.
    pub dim: usize,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward width.
    pub hidden: usize,
    /// Word-piece vocabulary.
    pub vocabulary: usize,
    /// Learned positions.
    pub positions: usize,
    /// Layer-norm epsilon.
    pub norm_eps: f64,
}

/// Token types the embeddings hold (BERT's sentence A and B); every token here is type 0.
pub const TOKEN_TYPES: usize = 2;

/// One post-norm block: `x = norm(x + attention(x))`, then `x = norm(x + ff(x))`.
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    up: Linear,
    down: Linear,
    out_norm: Norm,
}

impl Layer {
    fn new(s: &EncoderShape, vb: VarBuilder) -> candle_core::Result<Self> {
        let (attn, c) = (vb.pp("attention"), s.dim);
        Ok(Layer {
            query: linear(c, c, attn.pp("self").pp("query"))?,
            key: linear(c, c, attn.pp("self").pp("key"))?,
            value: linear(c, c, attn.pp("self").pp("value"))?,
            attention_out: linear(c, c, attn.pp("output").pp("dense"))?,
            attention_norm: Norm::named(c, attn.pp("output").pp("LayerNorm"), "weight", s.norm_eps)?,
            up: linear(c, s.hidden, vb.pp("intermediate").pp("dense"))?,
            down: linear(s.hidden, c, vb.pp("output").pp("dense"))?,
            out_norm: Norm::named(c, vb.pp("output").pp("LayerNorm"), "weight", s.norm_eps)?,
        })
    }

    /// `x: [b, t, c]`; `mask: [b, 1, 1, t]`, 0 for tokens and a large negative number for padding.
    fn forward(&self, x: &Tensor, mask: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let hd = c / heads;
        let split = |l: &Linear| -> candle_core::Result<Tensor> {
            l.forward(x)?.reshape((b, t, heads, hd))?.transpose(1, 2)?.contiguous()
        };
        let (q, k, v) = (split(&self.query)?, split(&self.key)?, split(&self.value)?);
        let scores = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (hd as f64).sqrt()))?.broadcast_add(mask)?;
        let attn = candle_nn::ops::softmax(&scores, D::Minus1)?.matmul(&v)?.transpose(1, 2)?.reshape((b, t, c))?;
        let x = self.attention_norm.forward(&(x + self.attention_out.forward(&attn)?)?)?;
        let ff = self.down.forward(&self.up.forward(&x)?.gelu_erf()?)?;
        self.out_norm.forward(&(x + ff)?)
    }
}

/// Embeddings, blocks, mean pooling and the classification head.
pub struct Encoder {
    words: Embedding,
    positions: Embedding,
    types: Embedding,
    norm: Norm,
    layers: Vec<Layer>,
    head: Linear,
    heads: usize,
    max_positions: usize,
    /// Leading stages (the embeddings, then layers) that are frozen whole: the activations
    /// after them are detached, so backward passes stop there.
    frozen_stages: usize,
}

impl Encoder {
    /// Blocks.
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// Detaches the activations after the first `stages` stages (0: none; 1: the
    /// embeddings; 1 + k: the embeddings and layers 0..k). Only for stages whose every
    /// tensor is frozen: the forward pass is unchanged, and nothing below trains.
    pub fn set_frozen_stages(&mut self, stages: usize) {
        self.frozen_stages = stages;
    }
    /// An encoder of shape `s` classifying into `classes`.
    pub fn new(s: &EncoderShape, classes: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let e = vb.pp("embeddings");
        Ok(Encoder {
            words: embedding(s.vocabulary, s.dim, e.pp("word_embeddings"))?,
            positions: embedding(s.positions, s.dim, e.pp("position_embeddings"))?,
            types: embedding(TOKEN_TYPES, s.dim, e.pp("token_type_embeddings"))?,
            norm: Norm::named(s.dim, e.pp("LayerNorm"), "weight", s.norm_eps)?,
            layers: (0..s.layers)
                .map(|i| Layer::new(s, vb.pp("encoder").pp("layer").pp(i)))
                .collect::<Result<_, _>>()?,
            head: linear(s.dim, classes, vb.pp("head"))?,
            heads: s.heads,
            max_positions: s.positions,
            frozen_stages: 0,
        })
    }

    /// Class logits `[b, classes]` for token ids `[b, t]` (id 0 is padding, ignored by
    /// attention and pooling).
    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t > self.max_positions {
            candle_core::bail!("{t} tokens is more than the model's {} positions", self.max_positions);
        }
        let device = ids.device();
        let keep = ids.ne(0u32)?.to_dtype(DType::F32)?; // [b, t]
        let positions = self.positions.forward(&Tensor::arange(0u32, t as u32, device)?)?;
        let types = self.types.forward(&Tensor::zeros(t, DType::U32, device)?)?;
        let mut x = self.norm.forward(&self.words.forward(ids)?.broadcast_add(&(positions + types)?)?)?;
        if self.frozen_stages == 1 {
            x = x.detach();
        }
        let mask = ((&keep - 1.0)? * 1e9)?.reshape((b, 1, 1, t))?;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, &mask, self.heads)?;
            if self.frozen_stages == i + 2 {
                x = x.detach();
            }
        }
        let keep = keep.unsqueeze(2)?; // [b, t, 1]
        let pooled = x.broadcast_mul(&keep)?.sum(1)?.broadcast_div(&keep.sum(1)?)?;
        self.head.forward(&pooled)
    }
}
