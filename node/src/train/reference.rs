//! The reference evaluator: the loss every verifier attests, with the same bits on every
//! x86-64 CPU (and any IEEE-754 machine).
//!
//! candle's CPU kernels pick their inner loops by the CPU's features at run time (SSE,
//! AVX2, AVX-512, FMA), so the same model and batch give losses that differ in the last
//! bits from one machine to the next, and an `f32` loss near 2 resolves only ~2.4e-7: more
//! than the 1e-9 units attestations carry. Here instead:
//!
//! - every value is an `f64`; weights are the model's exact fixed-point values;
//! - every reduction has one fixed order, documented at [`dot`] and [`ExampleLoss`]: no
//!   kernel dispatch, no fused multiply-add (Rust never contracts `a * b + c`), no
//!   reassociation (the compiler may not reorder float sums);
//! - `exp`, `ln` and `erf` come from the pure-Rust `libm` crate; `sqrt` is IEEE-exact;
//! - examples are evaluated in parallel, but each has its own sum and the per-example sums
//!   are added in example order, so the thread count changes nothing.
//!
//! The networks are the same as the training path's ([`super::net`], [`super::transformer`]);
//! `node/tests/reproducible_eval.rs` checks both agree within a stated bound and that this
//! evaluator's bits do not change under CPUs without AVX2, FMA or AVX-512.

use std::collections::HashMap;

use pogo_circuits::model::Model;
use rayon::prelude::*;

use super::data::Examples;
use super::task::ModelSpec;

/// Layer-norm epsilon, as in the training path.
const NORM_EPS: f64 = 1e-5;

/// Why the reference evaluator could not evaluate a model.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The model lacks a tensor the task's network has.
    #[error("the model has no tensor {0:?} (is it this task's model?)")]
    Missing(String),
    /// A tensor's shape is not the network's.
    #[error("tensor {name:?} has shape {given:?}; this task's network needs {expected:?}")]
    Shape {
        /// The tensor.
        name: String,
        /// Its shape in the model.
        given: Vec<usize>,
        /// The network's.
        expected: Vec<usize>,
    },
    /// The examples do not fit the network.
    #[error("{0}")]
    Examples(String),
}

/// The model's tensors by name, as exact `f64` values.
struct Weights {
    values: Vec<f64>,
    index: HashMap<String, (usize, Vec<usize>)>,
}

impl Weights {
    fn new(model: &Model) -> Self {
        let mut index = HashMap::new();
        let mut offset = 0;
        for t in model.tensors() {
            index.insert(t.name.clone(), (offset, t.shape.clone()));
            offset += t.len();
        }
        Weights { values: model.to_f64(), index }
    }

    /// The tensor `name`, which must have shape `shape`.
    fn get(&self, name: &str, shape: &[usize]) -> Result<&[f64], ReferenceError> {
        let (offset, given) = self.index.get(name).ok_or_else(|| ReferenceError::Missing(name.into()))?;
        if given != shape {
            return Err(ReferenceError::Shape { name: name.into(), given: given.clone(), expected: shape.to_vec() });
        }
        Ok(&self.values[*offset..*offset + shape.iter().product::<usize>()])
    }

    fn linear(&self, prefix: &str, inputs: usize, outputs: usize) -> Result<Linear<'_>, ReferenceError> {
        Ok(Linear {
            weight: self.get(&format!("{prefix}.weight"), &[outputs, inputs])?,
            bias: self.get(&format!("{prefix}.bias"), &[outputs])?,
            inputs,
        })
    }

    fn norm(&self, prefix: &str, dim: usize) -> Result<Norm<'_>, ReferenceError> {
        self.norm_named(prefix, dim, "scale", NORM_EPS)
    }

    /// A norm whose scale tensor is `{prefix}.{scale_name}` (BERT's is `weight`).
    fn norm_named(&self, prefix: &str, dim: usize, scale_name: &str, eps: f64) -> Result<Norm<'_>, ReferenceError> {
        Ok(Norm {
            scale: self.get(&format!("{prefix}.{scale_name}"), &[dim])?,
            bias: self.get(&format!("{prefix}.bias"), &[dim])?,
            eps,
        })
    }
}

/// Lanes of [`dot`]'s partial sums.
const LANES: usize = 8;

/// `Σ a[i]·b[i]` in one fixed order: eight partial sums, lane `k` adding the products of
/// indices `i ≡ k (mod 8)` in increasing `i`, then combined as
/// `((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7))`. Independent lanes let the CPU overlap the adds
/// (the order of each sum stays the same whatever the CPU or vector width).
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut s = [0f64; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..LANES {
            s[k] += x[k] * y[k];
        }
    }
    for (k, (x, y)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
        s[k] += x * y;
    }
    ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
}

/// `y = W x + b` with `W` as `[outputs, inputs]` rows (candle's and PyTorch's layout).
struct Linear<'a> {
    weight: &'a [f64],
    bias: &'a [f64],
    inputs: usize,
}

impl Linear<'_> {
    fn apply(&self, x: &[f64]) -> Vec<f64> {
        self.weight.chunks_exact(self.inputs).zip(self.bias).map(|(row, b)| dot(row, x) + b).collect()
    }

    /// [`Linear::apply`] to every vector of `xs`, with the same bits: each output is the same
    /// `dot(row, x) + b`. Rows are the outer loop so that each row is read from memory once
    /// for all of `xs` rather than once per vector (a wide layer's weights do not fit in cache).
    fn apply_all(&self, xs: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let mut out: Vec<Vec<f64>> = xs.iter().map(|_| Vec::with_capacity(self.bias.len())).collect();
        for (row, b) in self.weight.chunks_exact(self.inputs).zip(self.bias) {
            for (o, x) in out.iter_mut().zip(xs) {
                o.push(dot(row, x) + b);
            }
        }
        out
    }
}

/// Layer norm: `(x − mean) / sqrt(var + eps) · scale + bias`, population variance, sums in
/// index order.
struct Norm<'a> {
    scale: &'a [f64],
    bias: &'a [f64],
    eps: f64,
}

impl Norm<'_> {
    fn apply(&self, x: &[f64]) -> Vec<f64> {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let denom = (var + self.eps).sqrt();
        x.iter().zip(self.scale).zip(self.bias).map(|((v, s), b)| (v - mean) / denom * s + b).collect()
    }
}

/// Cross-entropy of `logits` against `target`: `ln Σ exp(l − max) + max − l_target`, the
/// sum in index order.
fn cross_entropy(logits: &[f64], target: usize) -> f64 {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = logits.iter().map(|l| libm::exp(l - max)).sum();
    libm::log(sum) + max - logits[target]
}

/// One attention head at one position: scores `q·k_s · scale` over the keys in order,
/// softmaxed (the maximum subtracted, the exponentials summed in order), and `out += Σ_s
/// (e_s / total) · v_s`, in key order.
fn attend<'v>(
    q: &[f64],
    keys: impl Iterator<Item = &'v [f64]>,
    values: impl Iterator<Item = &'v [f64]>,
    scale: f64,
    out: &mut [f64],
) {
    let scores: Vec<f64> = keys.map(|k| dot(q, k) * scale).collect();
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = scores.iter().map(|s| libm::exp(s - max)).collect();
    let total: f64 = e.iter().sum();
    for (es, v) in e.iter().zip(values) {
        let weight = es / total;
        for (o, vv) in out.iter_mut().zip(v) {
            *o += weight * vv;
        }
    }
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

/// One example's summed loss and how many predictions it made (1 for a labelled example,
/// `context` for a text window). The batch's loss is `Σ sums / Σ counts`, both summed in
/// example order.
type ExampleLoss = (f64, usize);

/// The mean cross-entropy (nats) of `model` on every example of `examples`: the loss a
/// verifier attests (see [`crate::roles::loss_units`] for its rounding to units).
pub fn loss(spec: &ModelSpec, model: &Model, examples: &Examples) -> Result<f64, ReferenceError> {
    let all: Vec<usize> = (0..examples.len()).collect();
    loss_on(spec, model, examples, &all)
}

/// [`loss`] on the examples at `indices`.
pub fn loss_on(spec: &ModelSpec, model: &Model, examples: &Examples, indices: &[usize]) -> Result<f64, ReferenceError> {
    if indices.is_empty() {
        return Err(ReferenceError::Examples("no examples to evaluate".into()));
    }
    if let Some(&i) = indices.iter().find(|&&i| i >= examples.len()) {
        return Err(ReferenceError::Examples(format!("example {i} of {}", examples.len())));
    }
    let w = Weights::new(model);
    let per_example: Vec<ExampleLoss> = match (spec, examples) {
        (ModelSpec::Mlp { hidden }, Examples::Labelled { features, labels, dim }) => {
            let mlp = Mlp::new(&w, hidden, *dim, model)?;
            indices
                .par_iter()
                .map(|&i| {
                    let x: Vec<f64> = features[i * dim..(i + 1) * dim].iter().map(|&v| f64::from(v)).collect();
                    mlp.loss(&x, labels[i] as usize)
                })
                .collect::<Result<_, _>>()?
        }
        (ModelSpec::Transformer { layers, dim, heads }, Examples::Text { tokens, starts, context }) => {
            let t = Transformer::new(&w, *layers, *dim, *heads, *context)?;
            indices
                .par_iter()
                .map(|&i| t.loss(&tokens[starts[i]..starts[i] + context + 1]))
                .collect::<Result<_, _>>()?
        }
        (ModelSpec::Encoder { .. }, Examples::Tokens { ids, labels, context }) => {
            let e = Encoder::new(&w, spec)?;
            indices
                .par_iter()
                .map(|&i| e.loss(&ids[i * context..(i + 1) * context], labels[i] as usize))
                .collect::<Result<_, _>>()?
        }
        _ => return Err(ReferenceError::Examples("the examples are not of the kind this network reads".into())),
    };
    let (mut sum, mut count) = (0f64, 0usize);
    for (s, c) in per_example {
        sum += s;
        count += c;
    }
    Ok(sum / count as f64)
}

struct Mlp<'a> {
    layers: Vec<Linear<'a>>,
    classes: usize,
}

impl<'a> Mlp<'a> {
    fn new(w: &'a Weights, hidden: &[usize], inputs: usize, model: &Model) -> Result<Self, ReferenceError> {
        // The class count is the last layer's output width, read off the model.
        let last = format!("layer{}.bias", hidden.len());
        let classes = model
            .tensors()
            .iter()
            .find(|t| t.name == last)
            .map(|t| t.len())
            .ok_or_else(|| ReferenceError::Missing(last.clone()))?;
        let widths: Vec<usize> = std::iter::once(inputs).chain(hidden.iter().copied()).chain([classes]).collect();
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, d)| w.linear(&format!("layer{i}"), d[0], d[1]))
            .collect::<Result<_, _>>()?;
        Ok(Mlp { layers, classes })
    }

    fn loss(&self, x: &[f64], label: usize) -> Result<ExampleLoss, ReferenceError> {
        if label >= self.classes {
            return Err(ReferenceError::Examples(format!("label {label} of a {}-class network", self.classes)));
        }
        let mut h = x.to_vec();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.apply(&h);
            if i + 1 < self.layers.len() {
                h.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
        Ok((cross_entropy(&h, label), 1))
    }
}

struct Block<'a> {
    norm1: Norm<'a>,
    qkv: Linear<'a>,
    proj: Linear<'a>,
    norm2: Norm<'a>,
    up: Linear<'a>,
    down: Linear<'a>,
}

struct Transformer<'a> {
    tokens: &'a [f64],
    positions: &'a [f64],
    blocks: Vec<Block<'a>>,
    norm: Norm<'a>,
    head: Linear<'a>,
    dim: usize,
    heads: usize,
    context: usize,
    vocabulary: usize,
}

impl<'a> Transformer<'a> {
    fn new(w: &'a Weights, layers: usize, dim: usize, heads: usize, context: usize) -> Result<Self, ReferenceError> {
        if heads == 0 || !dim.is_multiple_of(heads) {
            return Err(ReferenceError::Examples(format!("{heads} heads do not divide the width {dim}")));
        }
        let vocabulary = w
            .index
            .get("tokens.weight")
            .and_then(|(_, s)| s.first().copied())
            .ok_or_else(|| ReferenceError::Missing("tokens.weight".into()))?;
        let blocks = (0..layers)
            .map(|i| {
                let p = format!("block{i}");
                Ok(Block {
                    norm1: w.norm(&format!("{p}.norm1"), dim)?,
                    qkv: w.linear(&format!("{p}.qkv"), dim, 3 * dim)?,
                    proj: w.linear(&format!("{p}.proj"), dim, dim)?,
                    norm2: w.norm(&format!("{p}.norm2"), dim)?,
                    up: w.linear(&format!("{p}.up"), dim, 4 * dim)?,
                    down: w.linear(&format!("{p}.down"), 4 * dim, dim)?,
                })
            })
            .collect::<Result<_, ReferenceError>>()?;
        Ok(Transformer {
            tokens: w.get("tokens.weight", &[vocabulary, dim])?,
            positions: w.get("positions.weight", &[context, dim])?,
            blocks,
            norm: w.norm("norm", dim)?,
            head: w.linear("head", dim, vocabulary)?,
            dim,
            heads,
            context,
            vocabulary,
        })
    }

    /// The summed next-token loss over a window of `context + 1` tokens.
    fn loss(&self, window: &[u32]) -> Result<ExampleLoss, ReferenceError> {
        let (t, c) = (self.context, self.dim);
        if let Some(&bad) = window.iter().find(|&&id| id as usize >= self.vocabulary) {
            return Err(ReferenceError::Examples(format!("token {bad} of a {}-token vocabulary", self.vocabulary)));
        }
        let mut x: Vec<Vec<f64>> = (0..t)
            .map(|p| {
                let tok = &self.tokens[window[p] as usize * c..][..c];
                let pos = &self.positions[p * c..][..c];
                tok.iter().zip(pos).map(|(a, b)| a + b).collect()
            })
            .collect();
        for block in &self.blocks {
            self.block(block, &mut x);
        }
        let mut sum = 0f64;
        for (p, xp) in x.iter().enumerate() {
            sum += cross_entropy(&self.head.apply(&self.norm.apply(xp)), window[p + 1] as usize);
        }
        Ok((sum, t))
    }

    /// `x + attn(norm1(x))`, then `x + down(gelu(up(norm2(x))))`; attention is causal, each
    /// head's scores `q·k / sqrt(head width)` softmaxed over positions `0..=p` in order.
    fn block(&self, b: &Block, x: &mut [Vec<f64>]) {
        let (c, hd) = (self.dim, self.dim / self.heads);
        let scale = 1.0 / (hd as f64).sqrt();
        // Per position: [q (heads × hd), k, v], the training path's reshape (t, 3, heads, hd).
        let qkv: Vec<Vec<f64>> = x.iter().map(|xp| b.qkv.apply(&b.norm1.apply(xp))).collect();
        for (p, xp) in x.iter_mut().enumerate() {
            let mut attn = vec![0f64; c];
            for h in 0..self.heads {
                let qkv = &qkv;
                let keys = (0..=p).map(|s| &qkv[s][c + h * hd..][..hd]);
                let values = (0..=p).map(|s| &qkv[s][2 * c + h * hd..][..hd]);
                attend(&qkv[p][h * hd..][..hd], keys, values, scale, &mut attn[h * hd..][..hd]);
            }
            for (v, a) in xp.iter_mut().zip(b.proj.apply(&attn)) {
                *v += a;
            }
        }
        for xp in x.iter_mut() {
            let hidden: Vec<f64> = b.up.apply(&b.norm2.apply(xp)).into_iter().map(gelu).collect();
            for (v, m) in xp.iter_mut().zip(b.down.apply(&hidden)) {
                *v += m;
            }
        }
    }
}

struct EncoderLayer<'a> {
    query: Linear<'a>,
    key: Linear<'a>,
    value: Linear<'a>,
    attention_out: Linear<'a>,
    attention_norm: Norm<'a>,
    up: Linear<'a>,
    down: Linear<'a>,
    out_norm: Norm<'a>,
}

/// The training path's [`super::encoder::Encoder`], evaluated over the non-padding tokens
/// only (what the training path's mask and pooling compute: padding is never attended to
/// nor pooled).
struct Encoder<'a> {
    words: &'a [f64],
    positions: &'a [f64],
    types: &'a [f64],
    norm: Norm<'a>,
    layers: Vec<EncoderLayer<'a>>,
    head: Linear<'a>,
    dim: usize,
    heads: usize,
    vocabulary: usize,
    max_positions: usize,
    classes: usize,
}

impl<'a> Encoder<'a> {
    fn new(w: &'a Weights, spec: &ModelSpec) -> Result<Self, ReferenceError> {
        let &ModelSpec::Encoder { layers, dim, heads, hidden, vocabulary, positions, norm_eps, .. } = spec else {
            return Err(ReferenceError::Examples("not an encoder".into()));
        };
        if heads == 0 || !dim.is_multiple_of(heads) {
            return Err(ReferenceError::Examples(format!("{heads} heads do not divide the width {dim}")));
        }
        let classes = w
            .index
            .get("head.bias")
            .and_then(|(_, s)| s.first().copied())
            .ok_or_else(|| ReferenceError::Missing("head.bias".into()))?;
        let norm = |p: &str| w.norm_named(p, dim, "weight", norm_eps);
        let layers = (0..layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                Ok(EncoderLayer {
                    query: w.linear(&format!("{p}.attention.self.query"), dim, dim)?,
                    key: w.linear(&format!("{p}.attention.self.key"), dim, dim)?,
                    value: w.linear(&format!("{p}.attention.self.value"), dim, dim)?,
                    attention_out: w.linear(&format!("{p}.attention.output.dense"), dim, dim)?,
                    attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                    up: w.linear(&format!("{p}.intermediate.dense"), dim, hidden)?,
                    down: w.linear(&format!("{p}.output.dense"), hidden, dim)?,
                    out_norm: norm(&format!("{p}.output.LayerNorm"))?,
                })
            })
            .collect::<Result<_, ReferenceError>>()?;
        Ok(Encoder {
            words: w.get("embeddings.word_embeddings.weight", &[vocabulary, dim])?,
            positions: w.get("embeddings.position_embeddings.weight", &[positions, dim])?,
            types: w.get("embeddings.token_type_embeddings.weight", &[super::encoder::TOKEN_TYPES, dim])?,
            norm: norm("embeddings.LayerNorm")?,
            layers,
            head: w.linear("head", dim, classes)?,
            dim,
            heads,
            vocabulary,
            max_positions: positions,
            classes,
        })
    }

    /// The cross-entropy of one record (ids, 0 for padding) against its label.
    fn loss(&self, ids: &[u32], label: usize) -> Result<ExampleLoss, ReferenceError> {
        let c = self.dim;
        if label >= self.classes {
            return Err(ReferenceError::Examples(format!("label {label} of a {}-class network", self.classes)));
        }
        if ids.len() > self.max_positions {
            return Err(ReferenceError::Examples(format!("{} ids for {} positions", ids.len(), self.max_positions)));
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.vocabulary) {
            return Err(ReferenceError::Examples(format!("token {bad} of a {}-token vocabulary", self.vocabulary)));
        }
        // word + (position + type 0), the training path's order of additions.
        let mut x: Vec<Vec<f64>> = ids
            .iter()
            .enumerate()
            .filter(|(_, &id)| id != 0)
            .map(|(p, &id)| {
                let (word, pos) = (&self.words[id as usize * c..][..c], &self.positions[p * c..][..c]);
                let e: Vec<f64> = (0..c).map(|j| word[j] + (pos[j] + self.types[j])).collect();
                self.norm.apply(&e)
            })
            .collect();
        if x.is_empty() {
            return Err(ReferenceError::Examples("a record of padding only".into()));
        }
        for layer in &self.layers {
            x = self.layer(layer, &x);
        }
        let mut pooled = vec![0f64; c];
        for xp in &x {
            for (s, v) in pooled.iter_mut().zip(xp) {
                *s += v;
            }
        }
        let n = x.len() as f64;
        pooled.iter_mut().for_each(|s| *s /= n);
        Ok((cross_entropy(&self.head.apply(&pooled), label), 1))
    }

    /// `norm(x + out(attention(x)))`, then `norm(x + down(gelu(up(x))))`; each head's scores
    /// `q·k / sqrt(head width)` softmaxed over every token in order.
    fn layer(&self, l: &EncoderLayer, x: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let hd = self.dim / self.heads;
        let scale = 1.0 / (hd as f64).sqrt();
        let (q, k, v) = (l.query.apply_all(x), l.key.apply_all(x), l.value.apply_all(x));
        let attended: Vec<Vec<f64>> = (0..x.len())
            .map(|p| {
                let mut attn = vec![0f64; self.dim];
                for h in 0..self.heads {
                    let keys = k.iter().map(|x| &x[h * hd..][..hd]);
                    let values = v.iter().map(|x| &x[h * hd..][..hd]);
                    attend(&q[p][h * hd..][..hd], keys, values, scale, &mut attn[h * hd..][..hd]);
                }
                attn
            })
            .collect();
        let a: Vec<Vec<f64>> = x
            .iter()
            .zip(l.attention_out.apply_all(&attended))
            .map(|(xp, o)| l.attention_norm.apply(&xp.iter().zip(o).map(|(xv, o)| xv + o).collect::<Vec<_>>()))
            .collect();
        let hidden: Vec<Vec<f64>> = l.up.apply_all(&a).into_iter().map(|h| h.into_iter().map(gelu).collect()).collect();
        a.iter()
            .zip(l.down.apply_all(&hidden))
            .map(|(ap, d)| l.out_norm.apply(&ap.iter().zip(d).map(|(av, d)| av + d).collect::<Vec<_>>()))
            .collect()
    }
}
