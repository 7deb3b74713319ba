//! Reading a tokenizer from a GGUF file (llama.cpp's model format) without
//! llama.cpp.
//!
//! A GGUF file starts with the magic `GGUF`, a u32 version, the tensor count
//! and the metadata count (u64 each), then the metadata: key (a string),
//! value type (u32), value. Strings are a u64 byte length and the bytes;
//! arrays are an element type (u32), a u64 count and the elements. Numbers
//! are little-endian, or big-endian in files written for big-endian machines
//! (recognised by the byte-swapped version number). Versions 2 and 3 are
//! read (they share this layout); version 1 is obsolete and rejected. Only
//! the metadata is read; the tensor section after it is never touched.
//!
//! Every length is checked against the bytes left in the file before
//! anything is allocated, so a damaged or hostile file gives an error, not a
//! huge allocation or a panic.
//!
//! ## The tokenizer
//!
//! - `tokenizer.ggml.model`: `"gpt2"` is byte-level BPE
//!   ([`VocabType::ByteLevel`]), `"llama"` is SentencePiece
//!   ([`VocabType::SentencePiece`]); anything else is an error naming it.
//! - `tokenizer.ggml.tokens`: the pieces; token `i` is piece `i`.
//! - `tokenizer.ggml.token_type` (optional; missing means all normal):
//!   1 normal and any unknown value decode with [`decode_piece`]; 2 unknown,
//!   3 control and 5 unused are special tokens, kept as their text and never
//!   produced by text rules; 4 user-defined is literal text (SentencePiece
//!   files: `▁` still reads as a space); 6 byte is `<0xNN>`, the byte `NN`.
//! - Stop ids: `tokenizer.ggml.eos_token_id`, `eot_token_id` and
//!   `eom_token_id` when present, plus every control token whose text is in
//!   [`END_OF_GENERATION_TEXTS`] (`<|im_end|>`, `<end_of_turn>`, ...), as
//!   llama.cpp treats them as ending generation. BOS, padding and unknown ids
//!   are not stop ids. A declared id outside the vocabulary is an error.
//! - The vocabulary size is the number of tokens; pass a larger size to
//!   [`GgufTokenizer::into_vocabulary`] when the model's logits are padded.

use super::decode::replace_space_mark;
use super::{decode_piece, parse_byte_piece, TokenId, VocabType, Vocabulary};
use crate::error::{Error, ErrorKind, Result};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// The first four bytes of every GGUF file.
pub const MAGIC: &[u8; 4] = b"GGUF";

/// Texts of control tokens that end generation (besides the declared EOS,
/// EOT and EOM ids).
pub const END_OF_GENERATION_TEXTS: &[&str] = &[
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|end_of_text|>",
    "<EOT>",
    "<|return|>",
    "<|call|>",
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
];

/// Keys holding the declared end-of-generation ids.
const STOP_ID_KEYS: &[&str] = &[
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.eot_token_id",
    "tokenizer.ggml.eom_token_id",
];

/// Deepest array nesting accepted (real files use none).
const MAX_NESTING: u32 = 8;

/// The type tag of a metadata value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// `u8` (tag 0).
    U8,
    /// `i8` (tag 1).
    I8,
    /// `u16` (tag 2).
    U16,
    /// `i16` (tag 3).
    I16,
    /// `u32` (tag 4).
    U32,
    /// `i32` (tag 5).
    I32,
    /// `f32` (tag 6).
    F32,
    /// `bool`, one byte (tag 7).
    Bool,
    /// A string (tag 8).
    String,
    /// An array (tag 9).
    Array,
    /// `u64` (tag 10).
    U64,
    /// `i64` (tag 11).
    I64,
    /// `f64` (tag 12).
    F64,
}

impl ValueType {
    /// The type with tag `tag`.
    pub fn from_tag(tag: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match tag {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The tag of this type in the file.
    pub fn tag(self) -> u32 {
        use ValueType::*;
        match self {
            U8 => 0,
            I8 => 1,
            U16 => 2,
            I16 => 3,
            U32 => 4,
            I32 => 5,
            F32 => 6,
            Bool => 7,
            String => 8,
            Array => 9,
            U64 => 10,
            I64 => 11,
            F64 => 12,
        }
    }

    /// Size in bytes of a fixed-size value (`None` for strings and arrays).
    fn fixed_size(self) -> Option<u64> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// The fewest bytes one value of this type takes in the file.
    fn min_size(self) -> u64 {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            t => t.fixed_size().unwrap_or(1),
        }
    }

    fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

/// A list of strings stored back to back (strings are raw bytes: GGUF
/// strings should be UTF-8 but nothing here relies on it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StringArray {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl StringArray {
    /// Number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Is the array empty?
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// String `i`, if in range.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.get(start..end)
    }

    /// The strings in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }

    fn push(&mut self, s: &[u8]) {
        self.data.extend_from_slice(s);
        self.ends.push(self.data.len());
    }
}

/// A metadata array; all elements have one type.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(StringArray),
    Array(Vec<Array>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Array {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    /// Is the array empty?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn element_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::F32(_) => ValueType::F32,
            Array::Bool(_) => ValueType::Bool,
            Array::String(_) => ValueType::String,
            Array::Array(_) => ValueType::Array,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F64(_) => ValueType::F64,
        }
    }

    /// The elements as `i64` if this is an array of integers (u64 values
    /// above `i64::MAX` saturate).
    pub fn to_i64s(&self) -> Option<Vec<i64>> {
        fn all<T: Copy>(v: &[T], f: impl Fn(T) -> i64) -> Option<Vec<i64>> {
            Some(v.iter().map(|&x| f(x)).collect())
        }
        match self {
            Array::U8(v) => all(v, i64::from),
            Array::I8(v) => all(v, i64::from),
            Array::U16(v) => all(v, i64::from),
            Array::I16(v) => all(v, i64::from),
            Array::U32(v) => all(v, i64::from),
            Array::I32(v) => all(v, i64::from),
            Array::U64(v) => all(v, |x| i64::try_from(x).unwrap_or(i64::MAX)),
            Array::I64(v) => all(v, |x| x),
            _ => None,
        }
    }
}

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    /// Raw bytes (should be UTF-8).
    String(Vec<u8>),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// The value as an integer, if it is one (any width or sign).
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(x) => x.into(),
            Value::I8(x) => x.into(),
            Value::U16(x) => x.into(),
            Value::I16(x) => x.into(),
            Value::U32(x) => x.into(),
            Value::I32(x) => x.into(),
            Value::U64(x) => x.into(),
            Value::I64(x) => x.into(),
            _ => return None,
        })
    }

    /// The value as text, if it is a UTF-8 string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => std::str::from_utf8(s).ok(),
            _ => None,
        }
    }

    /// The value as an array, if it is one.
    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// The header and (selected) metadata of a GGUF file.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    /// Format version (2 or 3).
    pub version: u32,
    /// Were numbers stored big-endian?
    pub big_endian: bool,
    /// Number of tensors the file declares (not read).
    pub tensor_count: u64,
    /// Number of metadata entries in the file (kept or not).
    pub kv_count: u64,
    /// Byte offset just past the metadata.
    pub end_offset: u64,
    entries: Vec<(String, Value)>,
}

impl Metadata {
    /// Read the header and metadata from `reader`, which holds `len` bytes.
    /// Values whose key `keep` rejects are checked and skipped, not stored.
    pub fn read<R: Read>(reader: R, len: u64, mut keep: impl FnMut(&str) -> bool) -> Result<Self> {
        let mut r = Reader {
            inner: reader,
            pos: 0,
            len,
            big_endian: false,
        };
        let magic: Option<[u8; 4]> = if len >= 4 {
            Some(r.array("the magic")?)
        } else {
            None
        };
        if magic.as_ref() != Some(MAGIC) {
            return Err(vocab_err(
                "not a GGUF file (it does not start with the bytes \"GGUF\")",
            ));
        }
        let raw_version: [u8; 4] = r.array("the version")?;
        let mut version = u32::from_le_bytes(raw_version);
        if version != 0 && version & 0xFFFF == 0 {
            r.big_endian = true;
            version = version.swap_bytes();
        }
        if !(2..=3).contains(&version) {
            return Err(vocab_err(format!(
                "unsupported GGUF version {version} (versions 2 and 3 are supported)"
            )));
        }
        let tensor_count = r.u64("the tensor count")?;
        let kv_count = r.u64("the metadata count")?;
        let mut entries = Vec::new();
        for _ in 0..kv_count {
            let key_bytes = r.string("a metadata key")?;
            let key = String::from_utf8_lossy(&key_bytes).into_owned();
            let tag = r.u32("a value type")?;
            let ty = ValueType::from_tag(tag).ok_or_else(|| {
                vocab_err(format!(
                    "metadata key {key:?} has unknown value type {tag} (at byte {})",
                    r.pos - 4
                ))
            })?;
            if keep(&key) {
                let v = r.value(ty, 0)?;
                entries.push((key, v));
            } else {
                r.skip_value(ty, 0)?;
            }
        }
        Ok(Metadata {
            version,
            big_endian: r.big_endian,
            tensor_count,
            kv_count,
            end_offset: r.pos,
            entries,
        })
    }

    /// Read every metadata entry of the file at `path`.
    pub fn read_path(path: &Path) -> Result<Self> {
        let (file, len) = open(path)?;
        Self::read(BufReader::with_capacity(1 << 20, file), len, |_| true)
            .map_err(|e| with_path(&e, path))
    }

    /// The value stored under `key`, if kept.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The kept entries, in file order.
    pub fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }
}

fn vocab_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Vocab, msg)
}

/// `e` with `path: ` before its message.
pub fn with_path(e: &Error, path: &Path) -> Error {
    Error::new(e.kind(), format!("{}: {}", path.display(), e.message()))
}

fn open(path: &Path) -> Result<(File, u64)> {
    let cannot = |e: io::Error| vocab_err(format!("cannot read {}: {e}", path.display()));
    let file = File::open(path).map_err(cannot)?;
    let len = file.metadata().map_err(cannot)?.len();
    Ok((file, len))
}

/// A byte reader that knows how many bytes the file has left.
struct Reader<R> {
    inner: R,
    pos: u64,
    len: u64,
    big_endian: bool,
}

impl<R: Read> Reader<R> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Fail unless `n` more bytes are left for `what`.
    fn need(&self, n: u64, what: &str) -> Result<()> {
        if n > self.remaining() {
            return Err(self.truncated(what));
        }
        Ok(())
    }

    fn truncated(&self, what: &str) -> Error {
        vocab_err(format!(
            "truncated GGUF file: {what} at byte {} runs past the end of the file ({} bytes)",
            self.pos, self.len
        ))
    }

    fn io(&self, e: &io::Error, what: &str) -> Error {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.truncated(what)
        } else {
            vocab_err(format!(
                "cannot read GGUF file at byte {} ({what}): {e}",
                self.pos
            ))
        }
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.need(buf.len() as u64, what)?;
        self.inner.read_exact(buf).map_err(|e| self.io(&e, what))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.fill(&mut b, what)?;
        if self.big_endian {
            b.reverse();
        }
        Ok(b)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<()> {
        self.need(n, what)?;
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())
            .map_err(|e| self.io(&e, what))?;
        self.pos += copied;
        if copied != n {
            return Err(self.truncated(what));
        }
        Ok(())
    }

    /// A string's length, checked against the bytes left.
    fn string_len(&mut self, what: &str) -> Result<u64> {
        let n = self.u64(what)?;
        self.need(n, what)?;
        Ok(n)
    }

    fn string(&mut self, what: &str) -> Result<Vec<u8>> {
        let n = self.string_len(what)?;
        let mut v = vec![0u8; n as usize];
        self.fill(&mut v, what)?;
        Ok(v)
    }

    /// An array header: element type and count, the count checked against
    /// the bytes left (each element takes at least its minimum size).
    fn array_header(&mut self) -> Result<(ValueType, u64)> {
        let tag = self.u32("an array element type")?;
        let ty = ValueType::from_tag(tag).ok_or_else(|| {
            vocab_err(format!(
                "unknown array element type {tag} (at byte {})",
                self.pos - 4
            ))
        })?;
        let n = self.u64("an array length")?;
        if n.checked_mul(ty.min_size())
            .map_or(true, |bytes| bytes > self.remaining())
        {
            return Err(vocab_err(format!(
                "truncated GGUF file: an array of {n} {} values at byte {} does not fit in the file ({} bytes)",
                ty.name(),
                self.pos,
                self.len
            )));
        }
        Ok((ty, n))
    }

    fn nesting(&self, depth: u32) -> Result<()> {
        if depth > MAX_NESTING {
            return Err(vocab_err(format!(
                "GGUF arrays nested more than {MAX_NESTING} deep (at byte {})",
                self.pos
            )));
        }
        Ok(())
    }

    fn value(&mut self, ty: ValueType, depth: u32) -> Result<Value> {
        const W: &str = "a metadata value";
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.array(W)?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(W)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(W)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(W)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array(W)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(W)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(W)?)),
            ValueType::Bool => Value::Bool(self.array::<1>(W)?[0] != 0),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array(W)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(W)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(W)?)),
            ValueType::String => Value::String(self.string("a string value")?),
            ValueType::Array => {
                self.nesting(depth + 1)?;
                Value::Array(self.array_value(depth + 1)?)
            }
        })
    }

    /// Read `n` fixed-size elements of `N` bytes each, converting each with `f`.
    fn elems<const N: usize, T>(&mut self, n: u64, f: impl Fn([u8; N]) -> T) -> Result<Vec<T>> {
        // The header check bounds `n` by the bytes left in the file.
        let mut out = Vec::with_capacity(n as usize);
        let mut raw = vec![0u8; N * n as usize];
        self.fill(&mut raw, "array elements")?;
        for chunk in raw.chunks_exact_mut(N) {
            if self.big_endian {
                chunk.reverse();
            }
            let mut b = [0u8; N];
            b.copy_from_slice(chunk);
            out.push(f(b));
        }
        Ok(out)
    }

    fn array_value(&mut self, depth: u32) -> Result<Array> {
        let (ty, n) = self.array_header()?;
        Ok(match ty {
            ValueType::U8 => Array::U8(self.elems(n, u8::from_le_bytes)?),
            ValueType::I8 => Array::I8(self.elems(n, i8::from_le_bytes)?),
            ValueType::U16 => Array::U16(self.elems(n, u16::from_le_bytes)?),
            ValueType::I16 => Array::I16(self.elems(n, i16::from_le_bytes)?),
            ValueType::U32 => Array::U32(self.elems(n, u32::from_le_bytes)?),
            ValueType::I32 => Array::I32(self.elems(n, i32::from_le_bytes)?),
            ValueType::F32 => Array::F32(self.elems(n, f32::from_le_bytes)?),
            ValueType::Bool => Array::Bool(self.elems(n, |b: [u8; 1]| b[0] != 0)?),
            ValueType::U64 => Array::U64(self.elems(n, u64::from_le_bytes)?),
            ValueType::I64 => Array::I64(self.elems(n, i64::from_le_bytes)?),
            ValueType::F64 => Array::F64(self.elems(n, f64::from_le_bytes)?),
            ValueType::String => {
                let mut a = StringArray {
                    data: Vec::new(),
                    ends: Vec::with_capacity(n as usize),
                };
                let mut buf = Vec::new();
                for _ in 0..n {
                    let len = self.string_len("a string in an array")?;
                    buf.resize(len as usize, 0);
                    self.fill(&mut buf, "a string in an array")?;
                    a.push(&buf);
                }
                Array::String(a)
            }
            ValueType::Array => {
                self.nesting(depth + 1)?;
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.array_value(depth + 1)?);
                }
                Array::Array(v)
            }
        })
    }

    fn skip_value(&mut self, ty: ValueType, depth: u32) -> Result<()> {
        match ty {
            ValueType::String => {
                let n = self.string_len("a string value")?;
                self.skip(n, "a string value")
            }
            ValueType::Array => {
                self.nesting(depth + 1)?;
                let (ety, n) = self.array_header()?;
                match ety.fixed_size() {
                    // The header check makes this product fit.
                    Some(size) => self.skip(n * size, "array elements"),
                    None => (0..n).try_for_each(|_| self.skip_value(ety, depth + 1)),
                }
            }
            t => self.skip(t.fixed_size().unwrap_or(0), "a metadata value"),
        }
    }
}

/// A tokenizer read from GGUF metadata, before it becomes a [`Vocabulary`].
#[derive(Clone, Debug)]
pub struct GgufTokenizer {
    /// The `tokenizer.ggml.model` name (`"gpt2"` or `"llama"`).
    pub model: String,
    /// How the pieces were decoded.
    pub vocab_type: VocabType,
    /// The exact bytes of each token (special tokens: their text).
    pub tokens: Vec<Vec<u8>>,
    /// Special ids (unknown, control and unused tokens), sorted.
    pub special_ids: Vec<TokenId>,
    /// End-of-generation ids (see the module docs), sorted.
    pub stop_ids: Vec<TokenId>,
}

impl GgufTokenizer {
    /// Read the tokenizer of the GGUF file at `path` (errors name the path).
    pub fn from_path(path: &Path) -> Result<Self> {
        let (file, len) = open(path)?;
        Self::from_reader(BufReader::with_capacity(1 << 20, file), len)
            .map_err(|e| with_path(&e, path))
    }

    /// Read the tokenizer from a GGUF file's bytes in `reader` (`len` bytes in all).
    pub fn from_reader<R: Read>(reader: R, len: u64) -> Result<Self> {
        let md = Metadata::read(reader, len, |k| {
            k == "tokenizer.ggml.model"
                || k == "tokenizer.ggml.tokens"
                || k == "tokenizer.ggml.token_type"
                || STOP_ID_KEYS.contains(&k)
        })?;
        Self::from_metadata(&md)
    }

    /// Read the tokenizer from a GGUF file held in memory.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        Self::from_reader(data, data.len() as u64)
    }

    /// Build the tokenizer from already-read metadata.
    pub fn from_metadata(md: &Metadata) -> Result<Self> {
        const MODEL: &str = "tokenizer.ggml.model";
        const TOKENS: &str = "tokenizer.ggml.tokens";
        const TYPES: &str = "tokenizer.ggml.token_type";
        let model_value = md.get(MODEL).ok_or_else(|| {
            vocab_err(format!(
                "GGUF file has no tokenizer (no metadata key {MODEL})"
            ))
        })?;
        let model = model_value
            .as_str()
            .ok_or_else(|| wrong_type(MODEL, model_value, "a string"))?
            .to_owned();
        let vocab_type = match model.as_str() {
            "gpt2" => VocabType::ByteLevel,
            "llama" => VocabType::SentencePiece,
            other => {
                return Err(vocab_err(format!(
                    "unsupported GGUF tokenizer model {other:?} (supported: \"gpt2\" byte-level BPE and \"llama\" SentencePiece)"
                )))
            }
        };
        let tokens_value = md.get(TOKENS).ok_or_else(|| {
            vocab_err(format!(
                "GGUF file has no token list (no metadata key {TOKENS})"
            ))
        })?;
        let pieces = match tokens_value.as_array() {
            Some(Array::String(s)) => s,
            _ => return Err(wrong_type(TOKENS, tokens_value, "an array of strings")),
        };
        let n = pieces.len();
        let types: Vec<i64> = match md.get(TYPES) {
            None => vec![1; n],
            Some(v) => {
                let t = v
                    .as_array()
                    .and_then(Array::to_i64s)
                    .ok_or_else(|| wrong_type(TYPES, v, "an array of integers"))?;
                if t.len() != n {
                    return Err(vocab_err(format!(
                        "{TYPES} has {} entries but {TOKENS} has {n}",
                        t.len()
                    )));
                }
                t
            }
        };

        let mut tokens = Vec::with_capacity(n);
        let mut special_ids = Vec::new();
        let mut stop_ids = Vec::new();
        for (i, (piece, &ty)) in pieces.iter().zip(&types).enumerate() {
            let id = i as TokenId;
            let Ok(text) = std::str::from_utf8(piece) else {
                // Not UTF-8: no decoding rule applies; keep the bytes.
                if matches!(ty, 2 | 3 | 5) {
                    special_ids.push(id);
                }
                tokens.push(piece.to_vec());
                continue;
            };
            let bytes = match ty {
                2 | 3 | 5 => {
                    special_ids.push(id);
                    if ty == 3 && END_OF_GENERATION_TEXTS.contains(&text) {
                        stop_ids.push(id);
                    }
                    text.as_bytes().to_vec()
                }
                4 if vocab_type == VocabType::SentencePiece => replace_space_mark(text),
                4 => text.as_bytes().to_vec(),
                6 => match parse_byte_piece(text) {
                    Some(b) => vec![b],
                    None => decode_piece(vocab_type, text),
                },
                _ => decode_piece(vocab_type, text),
            };
            tokens.push(bytes);
        }
        for key in STOP_ID_KEYS {
            let Some(v) = md.get(key) else { continue };
            let id = v
                .as_i128()
                .ok_or_else(|| wrong_type(key, v, "an integer"))?;
            match TokenId::try_from(id) {
                Ok(id) if (id as usize) < n => stop_ids.push(id),
                _ => {
                    return Err(vocab_err(format!(
                        "{key} = {id} is out of range (the vocabulary has {n} tokens)"
                    )))
                }
            }
        }
        stop_ids.sort_unstable();
        stop_ids.dedup();
        Ok(GgufTokenizer {
            model,
            vocab_type,
            tokens,
            special_ids,
            stop_ids,
        })
    }

    /// Build the vocabulary. `vocab_size` pads it (at least the number of
    /// tokens); `stop_ids` replaces the stop ids found in the file.
    pub fn into_vocabulary(
        self,
        vocab_size: Option<usize>,
        stop_ids: Option<Vec<TokenId>>,
    ) -> Result<Vocabulary> {
        let stops = stop_ids.unwrap_or(self.stop_ids);
        Ok(
            Vocabulary::new(self.tokens, vocab_size, stops, self.special_ids)?
                .with_vocab_type(self.vocab_type),
        )
    }
}

fn wrong_type(key: &str, v: &Value, expected: &str) -> Error {
    let found = match v {
        Value::Array(a) => format!("an array of {}", a.element_type().name()),
        Value::String(_) if v.as_str().is_none() => "a string that is not UTF-8".to_owned(),
        _ => format!("a {}", v.value_type().name()),
    };
    vocab_err(format!("{key} is {found}, expected {expected}"))
}
