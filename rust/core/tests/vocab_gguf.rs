//! The GGUF reader on synthetic files written here: every value type,
//! versions 2 and 3 in both byte orders, truncation, bad magic, hostile
//! lengths, and the tokenizer rules of both families.

use corral_core::mask::{get_bit, words_for};
use corral_core::vocab::gguf::{Array, GgufTokenizer, Metadata, Value, ValueType};
use corral_core::vocab::VocabType;
use corral_core::{Compiler, ErrorKind, Matcher, Vocabulary};
use std::sync::Arc;

/// Writes a GGUF header and metadata (no tensors).
struct Writer {
    big_endian: bool,
    buf: Vec<u8>,
}

impl Writer {
    fn new(version: u32, kv_count: u64, big_endian: bool) -> Writer {
        let mut w = Writer {
            big_endian,
            buf: b"GGUF".to_vec(),
        };
        w.u32(version);
        w.u64(0); // tensor count
        w.u64(kv_count);
        w
    }

    fn num<const N: usize>(&mut self, mut le: [u8; N]) {
        if self.big_endian {
            le.reverse();
        }
        self.buf.extend_from_slice(&le);
    }

    fn u32(&mut self, x: u32) {
        self.num(x.to_le_bytes());
    }

    fn u64(&mut self, x: u64) {
        self.num(x.to_le_bytes());
    }

    fn str(&mut self, s: &[u8]) {
        self.u64(s.len() as u64);
        self.buf.extend_from_slice(s);
    }

    fn key(&mut self, k: &str, ty: ValueType) {
        self.str(k.as_bytes());
        self.u32(ty.tag());
    }

    fn array_header(&mut self, ty: ValueType, n: u64) {
        self.u32(ty.tag());
        self.u64(n);
    }

    fn str_array(&mut self, key: &str, items: &[&str]) {
        self.key(key, ValueType::Array);
        self.array_header(ValueType::String, items.len() as u64);
        for s in items {
            self.str(s.as_bytes());
        }
    }

    fn i32_array(&mut self, key: &str, items: &[i32]) {
        self.key(key, ValueType::Array);
        self.array_header(ValueType::I32, items.len() as u64);
        for &x in items {
            self.num(x.to_le_bytes());
        }
    }

    fn u32_kv(&mut self, key: &str, x: u32) {
        self.key(key, ValueType::U32);
        self.u32(x);
    }

    fn str_kv(&mut self, key: &str, s: &str) {
        self.key(key, ValueType::String);
        self.str(s.as_bytes());
    }
}

/// A file with one value of every scalar type, a string, and arrays of
/// every element type (nested and string arrays included).
fn all_types_file(version: u32, big_endian: bool) -> Vec<u8> {
    let mut w = Writer::new(version, 25, big_endian);
    w.key("u8", ValueType::U8);
    w.num(200u8.to_le_bytes());
    w.key("i8", ValueType::I8);
    w.num((-100i8).to_le_bytes());
    w.key("u16", ValueType::U16);
    w.num(60000u16.to_le_bytes());
    w.key("i16", ValueType::I16);
    w.num((-30000i16).to_le_bytes());
    w.key("u32", ValueType::U32);
    w.u32(4_000_000_000);
    w.key("i32", ValueType::I32);
    w.num((-2_000_000_000i32).to_le_bytes());
    w.key("f32", ValueType::F32);
    w.num(1.5f32.to_le_bytes());
    w.key("bool", ValueType::Bool);
    w.num([1u8]);
    w.key("u64", ValueType::U64);
    w.u64(u64::MAX - 1);
    w.key("i64", ValueType::I64);
    w.num(i64::MIN.to_le_bytes());
    w.key("f64", ValueType::F64);
    w.num((-2.25f64).to_le_bytes());
    w.str_kv("string", "héllo ▁ 😀");
    w.key("a.u8", ValueType::Array);
    w.array_header(ValueType::U8, 3);
    w.buf.extend_from_slice(&[1, 2, 255]);
    w.key("a.i8", ValueType::Array);
    w.array_header(ValueType::I8, 2);
    w.buf.extend_from_slice(&[0x80, 0x7F]);
    w.key("a.u16", ValueType::Array);
    w.array_header(ValueType::U16, 2);
    w.num(1u16.to_le_bytes());
    w.num(65535u16.to_le_bytes());
    w.key("a.i16", ValueType::Array);
    w.array_header(ValueType::I16, 1);
    w.num((-2i16).to_le_bytes());
    w.key("a.u32", ValueType::Array);
    w.array_header(ValueType::U32, 2);
    w.u32(7);
    w.u32(u32::MAX);
    w.i32_array("a.i32", &[-1, 0, 1]);
    w.key("a.f32", ValueType::Array);
    w.array_header(ValueType::F32, 2);
    w.num(0.5f32.to_le_bytes());
    w.num((-8.0f32).to_le_bytes());
    w.key("a.bool", ValueType::Array);
    w.array_header(ValueType::Bool, 3);
    w.buf.extend_from_slice(&[0, 1, 0]);
    w.key("a.u64", ValueType::Array);
    w.array_header(ValueType::U64, 1);
    w.u64(1 << 40);
    w.key("a.i64", ValueType::Array);
    w.array_header(ValueType::I64, 2);
    w.num((-5i64).to_le_bytes());
    w.num(5i64.to_le_bytes());
    w.key("a.f64", ValueType::Array);
    w.array_header(ValueType::F64, 1);
    w.num(3.0f64.to_le_bytes());
    w.str_array("a.string", &["", "a", "▁b", "日本"]);
    // An array of arrays: [[1, 2], []] of u32 and an empty array of strings.
    w.key("a.nested", ValueType::Array);
    w.array_header(ValueType::Array, 3);
    w.array_header(ValueType::U32, 2);
    w.u32(1);
    w.u32(2);
    w.array_header(ValueType::U32, 0);
    w.array_header(ValueType::String, 0);
    w.buf
}

fn read_all(data: &[u8]) -> corral_core::Result<Metadata> {
    Metadata::read(data, data.len() as u64, |_| true)
}

#[test]
fn reads_every_value_type_in_both_versions_and_byte_orders() {
    let reference = read_all(&all_types_file(3, false)).unwrap();
    assert_eq!(reference.entries().len(), 25);
    assert_eq!(reference.get("u8"), Some(&Value::U8(200)));
    assert_eq!(reference.get("i8"), Some(&Value::I8(-100)));
    assert_eq!(reference.get("u16"), Some(&Value::U16(60000)));
    assert_eq!(reference.get("i16"), Some(&Value::I16(-30000)));
    assert_eq!(reference.get("u32"), Some(&Value::U32(4_000_000_000)));
    assert_eq!(reference.get("i32"), Some(&Value::I32(-2_000_000_000)));
    assert_eq!(reference.get("f32"), Some(&Value::F32(1.5)));
    assert_eq!(reference.get("bool"), Some(&Value::Bool(true)));
    assert_eq!(reference.get("u64"), Some(&Value::U64(u64::MAX - 1)));
    assert_eq!(reference.get("i64"), Some(&Value::I64(i64::MIN)));
    assert_eq!(reference.get("f64"), Some(&Value::F64(-2.25)));
    assert_eq!(
        reference.get("string").and_then(Value::as_str),
        Some("héllo ▁ 😀")
    );
    let arr = |k: &str| reference.get(k).and_then(Value::as_array).unwrap().clone();
    assert_eq!(arr("a.u8"), Array::U8(vec![1, 2, 255]));
    assert_eq!(arr("a.i8"), Array::I8(vec![-128, 127]));
    assert_eq!(arr("a.u16"), Array::U16(vec![1, 65535]));
    assert_eq!(arr("a.i16"), Array::I16(vec![-2]));
    assert_eq!(arr("a.u32"), Array::U32(vec![7, u32::MAX]));
    assert_eq!(arr("a.i32"), Array::I32(vec![-1, 0, 1]));
    assert_eq!(arr("a.f32"), Array::F32(vec![0.5, -8.0]));
    assert_eq!(arr("a.bool"), Array::Bool(vec![false, true, false]));
    assert_eq!(arr("a.u64"), Array::U64(vec![1 << 40]));
    assert_eq!(arr("a.i64"), Array::I64(vec![-5, 5]));
    assert_eq!(arr("a.f64"), Array::F64(vec![3.0]));
    let Array::String(s) = arr("a.string") else {
        panic!("not a string array")
    };
    let strings: Vec<&[u8]> = s.iter().collect();
    assert_eq!(
        strings,
        vec![&b""[..], b"a", "▁b".as_bytes(), "日本".as_bytes()]
    );
    let Array::Array(nested) = arr("a.nested") else {
        panic!("not nested")
    };
    assert_eq!(nested.len(), 3);
    assert_eq!(nested[0], Array::U32(vec![1, 2]));
    assert!(nested[1].is_empty() && nested[2].is_empty());
    assert_eq!(nested[2].element_type(), ValueType::String);
    assert_eq!(arr("a.i8").to_i64s(), Some(vec![-128, 127]));
    assert_eq!(arr("a.f32").to_i64s(), None);
    assert_eq!(Value::I16(-3).as_i128(), Some(-3));
    assert_eq!(Value::F32(1.0).as_i128(), None);

    for (version, be) in [(2, false), (3, true), (2, true)] {
        let md = read_all(&all_types_file(version, be)).unwrap();
        assert_eq!((md.version, md.big_endian), (version, be));
        assert_eq!(md.entries(), reference.entries(), "v{version} be={be}");
    }
    assert_eq!(reference.version, 3);
    assert!(!reference.big_endian);
    assert_eq!(reference.kv_count, 25);
    assert_eq!(reference.end_offset, all_types_file(3, false).len() as u64);

    // Skipping (not keeping) every value lands at the same end offset.
    let data = all_types_file(3, true);
    let skipped = Metadata::read(&data[..], data.len() as u64, |_| false).unwrap();
    assert!(skipped.entries().is_empty());
    assert_eq!(skipped.end_offset, data.len() as u64);
}

#[test]
fn every_truncation_is_an_error() {
    for keep in [true, false] {
        let data = all_types_file(3, false);
        for cut in 0..data.len() {
            let e = Metadata::read(&data[..cut], cut as u64, |_| keep).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Vocab);
            if cut >= 4 {
                assert!(e.message().contains("truncated GGUF file"), "{cut}: {e}");
            }
        }
    }
    // A reader that ends before the length it claims is also caught.
    let data = all_types_file(3, false);
    let e = Metadata::read(&data[..100], data.len() as u64, |_| true).unwrap_err();
    assert!(e.message().contains("truncated"), "{e}");
    let e = Metadata::read(&data[..100], data.len() as u64, |_| false).unwrap_err();
    assert!(e.message().contains("truncated"), "{e}");
}

#[test]
fn bad_magic_and_versions() {
    for data in [
        &b""[..],
        b"GG",
        b"GGUF"[..3].as_ref(),
        b"GGML\x03\0\0\0",
        b"\x89PNG\r\n\x1a\n",
        b"{\"model\": 1}",
    ] {
        let e = read_all(data).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Vocab);
        assert!(e.message().contains("not a GGUF file"), "{e}");
    }
    for v in [0u32, 1, 4, 0x0100_0000, 0xFFFF_FFFF] {
        let w = Writer::new(v, 0, false);
        let e = read_all(&w.buf).unwrap_err();
        assert!(e.message().contains("unsupported GGUF version"), "{v}: {e}");
    }
    // A version 1 file written big-endian reads as version 1 too.
    let e = read_all(&Writer::new(1, 0, true).buf).unwrap_err();
    assert!(e.message().contains("version 1 "), "{e}");
    // Only a header: fine, no entries.
    let md = read_all(&Writer::new(3, 0, false).buf).unwrap();
    assert!(md.entries().is_empty());
}

#[test]
fn hostile_lengths_fail_without_allocating() {
    for n in [u64::MAX, 1 << 62, 1 << 40, 1000] {
        for ty in [
            ValueType::U8,
            ValueType::F64,
            ValueType::String,
            ValueType::Array,
        ] {
            for keep in [true, false] {
                let mut w = Writer::new(3, 1, false);
                w.key("tokenizer.ggml.tokens", ValueType::Array);
                w.array_header(ty, n);
                w.buf.extend_from_slice(&[0; 64]);
                let e = Metadata::read(&w.buf[..], w.buf.len() as u64, |_| keep).unwrap_err();
                assert!(e.message().contains("does not fit"), "{e}");
            }
        }
        // A huge string length, as a value and as a key.
        let mut w = Writer::new(3, 1, false);
        w.key("s", ValueType::String);
        w.u64(n);
        assert!(read_all(&w.buf)
            .unwrap_err()
            .message()
            .contains("truncated"));
        let mut w = Writer::new(3, 1, false);
        w.u64(n);
        assert!(read_all(&w.buf)
            .unwrap_err()
            .message()
            .contains("truncated"));
    }
    // A huge metadata count with nothing behind it.
    let w = Writer::new(3, u64::MAX, false);
    assert!(read_all(&w.buf)
        .unwrap_err()
        .message()
        .contains("truncated"));
    // Unknown type tags.
    let mut w = Writer::new(3, 1, false);
    w.str(b"k");
    w.u32(13);
    let e = read_all(&w.buf).unwrap_err();
    assert!(e.message().contains("unknown value type 13"), "{e}");
    let mut w = Writer::new(3, 1, false);
    w.key("k", ValueType::Array);
    w.array_header(ValueType::String, 0);
    let at = w.buf.len() - 12;
    w.buf[at] = 99;
    assert!(read_all(&w.buf)
        .unwrap_err()
        .message()
        .contains("unknown array element type 99"));
    // Arrays nested past the limit.
    for keep in [true, false] {
        let mut w = Writer::new(3, 1, false);
        w.key("deep", ValueType::Array);
        for _ in 0..100 {
            w.array_header(ValueType::Array, 1);
        }
        let e = Metadata::read(&w.buf[..], w.buf.len() as u64, |_| keep).unwrap_err();
        assert!(e.message().contains("nested"), "{e}");
    }
}

// ---- tokenizers ----

const GPT2_TOKENS: &[&str] = &[
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "a",
    "Ġb",
    "ĊĊ",
    "Ã©",
    "ð",
    "<tool>",
    "<pad>",
];
const GPT2_TYPES: &[i32] = &[3, 3, 3, 1, 1, 1, 1, 1, 4, 3];

fn gpt2_file(extra: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new(3, 0, false);
    let mut kv = 0;
    w.str_kv("general.architecture", "llama");
    kv += 1;
    w.str_kv("tokenizer.ggml.model", "gpt2");
    kv += 1;
    w.str_array("tokenizer.ggml.tokens", GPT2_TOKENS);
    kv += 1;
    w.i32_array("tokenizer.ggml.token_type", GPT2_TYPES);
    kv += 1;
    // Skipped keys: merges (strings), scores (floats), ids that are not stops.
    w.str_array("tokenizer.ggml.merges", &["Ġ b", "a b"]);
    kv += 1;
    w.key("tokenizer.ggml.scores", ValueType::Array);
    w.array_header(ValueType::F32, 2);
    w.u32(0);
    w.u32(0);
    kv += 1;
    w.u32_kv("tokenizer.ggml.bos_token_id", 1);
    kv += 1;
    w.u32_kv("tokenizer.ggml.padding_token_id", 9);
    kv += 1;
    w.u32_kv("tokenizer.ggml.eos_token_id", 2);
    kv += 1;
    let start = w.buf.len();
    extra(&mut w);
    // Count the extra entries by re-reading is overkill; callers add at most one.
    if w.buf.len() > start {
        kv += 1;
    }
    w.buf[16..24].copy_from_slice(&(kv as u64).to_le_bytes());
    // Tensor data after the metadata is never read.
    w.buf.extend_from_slice(&[0xAB; 64]);
    w.buf
}

#[test]
fn gpt2_tokenizer() {
    let t = GgufTokenizer::from_bytes(&gpt2_file(|_| {})).unwrap();
    assert_eq!(t.model, "gpt2");
    assert_eq!(t.vocab_type, VocabType::ByteLevel);
    let expect: Vec<&[u8]> = vec![
        b"<|endoftext|>",
        b"<|im_start|>",
        b"<|im_end|>",
        b"a",
        b" b",
        b"\n\n",
        "é".as_bytes(),
        &[0xF0],
        b"<tool>",
        b"<pad>",
    ];
    assert_eq!(t.tokens, expect);
    assert_eq!(t.special_ids, vec![0, 1, 2, 9]);
    // The declared EOS plus <|endoftext|> (a control token that ends generation).
    assert_eq!(t.stop_ids, vec![0, 2]);
    let v = t.clone().into_vocabulary(None, None).unwrap();
    assert_eq!(v.vocab_type(), VocabType::ByteLevel);
    assert_eq!((v.vocab_size(), v.tokenizer_size()), (10, 10));
    assert_eq!(v.stop_ids(), &[0, 2]);
    assert_eq!(v.special_ids(), &[0, 1, 2, 9]);
    // The user-defined <tool> is text.
    assert!(!v.is_special(8));
    let v = t.into_vocabulary(Some(64), Some(vec![9])).unwrap();
    assert_eq!((v.vocab_size(), v.stop_ids()), (64, &[9][..]));

    // EOT and EOM ids are stops too, in any integer type.
    let data = gpt2_file(|w| {
        w.key("tokenizer.ggml.eot_token_id", ValueType::I64);
        w.num(5i64.to_le_bytes());
    });
    assert_eq!(
        GgufTokenizer::from_bytes(&data).unwrap().stop_ids,
        vec![0, 2, 5]
    );
    let data = gpt2_file(|w| {
        w.key("tokenizer.ggml.eom_token_id", ValueType::U16);
        w.num(7u16.to_le_bytes());
    });
    assert_eq!(
        GgufTokenizer::from_bytes(&data).unwrap().stop_ids,
        vec![0, 2, 7]
    );
}

#[test]
fn gpt2_tokenizer_errors() {
    let err = |f: &dyn Fn(&mut Writer)| {
        let e = GgufTokenizer::from_bytes(&gpt2_file(f)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Vocab);
        e.message().to_owned()
    };
    let m = err(&|w| w.u32_kv("tokenizer.ggml.eot_token_id", 10));
    assert!(
        m.contains("tokenizer.ggml.eot_token_id = 10 is out of range"),
        "{m}"
    );
    let m = err(&|w| {
        w.key("tokenizer.ggml.eom_token_id", ValueType::I32);
        w.num((-1i32).to_le_bytes());
    });
    assert!(m.contains("= -1 is out of range"), "{m}");
    let m = err(&|w| w.str_kv("tokenizer.ggml.eot_token_id", "2"));
    assert!(m.contains("is a string, expected an integer"), "{m}");
    // Later keys of the same name are ignored: the first one wins, so write a
    // file with a wrong-length token_type list from scratch.
    let mut w = Writer::new(3, 3, false);
    w.str_kv("tokenizer.ggml.model", "gpt2");
    w.str_array("tokenizer.ggml.tokens", &["a", "b"]);
    w.i32_array("tokenizer.ggml.token_type", &[1]);
    let m = GgufTokenizer::from_bytes(&w.buf).unwrap_err().to_string();
    assert!(
        m.contains("token_type has 1 entries but tokenizer.ggml.tokens has 2"),
        "{m}"
    );

    let mut w = Writer::new(3, 2, false);
    w.str_kv("tokenizer.ggml.model", "bert");
    w.str_array("tokenizer.ggml.tokens", &["a"]);
    let m = GgufTokenizer::from_bytes(&w.buf).unwrap_err().to_string();
    assert!(
        m.contains("unsupported GGUF tokenizer model \"bert\""),
        "{m}"
    );

    let mut w = Writer::new(3, 1, false);
    w.str_array("tokenizer.ggml.tokens", &["a"]);
    let m = GgufTokenizer::from_bytes(&w.buf).unwrap_err().to_string();
    assert!(
        m.contains("no tokenizer (no metadata key tokenizer.ggml.model)"),
        "{m}"
    );

    let mut w = Writer::new(3, 1, false);
    w.str_kv("tokenizer.ggml.model", "llama");
    let m = GgufTokenizer::from_bytes(&w.buf).unwrap_err().to_string();
    assert!(m.contains("no token list"), "{m}");

    let mut w = Writer::new(3, 2, false);
    w.str_kv("tokenizer.ggml.model", "llama");
    w.i32_array("tokenizer.ggml.tokens", &[1, 2]);
    let m = GgufTokenizer::from_bytes(&w.buf).unwrap_err().to_string();
    assert!(
        m.contains("tokens is an array of i32, expected an array of strings"),
        "{m}"
    );

    let mut w = Writer::new(3, 1, false);
    w.u32_kv("tokenizer.ggml.model", 1);
    let m = GgufTokenizer::from_bytes(&w.buf).unwrap_err().to_string();
    assert!(m.contains("model is a u32, expected a string"), "{m}");

    let mut w = Writer::new(3, 2, false);
    w.str_kv("tokenizer.ggml.model", "llama");
    w.str_array("tokenizer.ggml.tokens", &[]);
    let m = GgufTokenizer::from_bytes(&w.buf)
        .unwrap()
        .into_vocabulary(None, None)
        .unwrap_err()
        .to_string();
    assert!(m.contains("empty"), "{m}");

    let t = GgufTokenizer::from_bytes(&gpt2_file(|_| {})).unwrap();
    let m = t
        .clone()
        .into_vocabulary(Some(5), None)
        .unwrap_err()
        .to_string();
    assert!(m.contains("vocab_size 5 is smaller"), "{m}");
    let m = t
        .into_vocabulary(None, Some(vec![10]))
        .unwrap_err()
        .to_string();
    assert!(m.contains("stop token id 10 is out of range"), "{m}");
}

fn llama_file() -> Vec<u8> {
    let mut w = Writer::new(2, 5, false);
    w.str_kv("tokenizer.ggml.model", "llama");
    w.str_array(
        "tokenizer.ggml.tokens",
        &[
            "<unk>",
            "<s>",
            "</s>",
            "<0x0A>",
            "<0xC3>",
            "<0xA9>",
            "▁hello",
            "é",
            "▁▁",
            "<end_of_turn>",
            "<unused0>",
            "▁x▁",
            "<0x41>",
            "\u{a0}",
        ],
    );
    w.i32_array(
        "tokenizer.ggml.token_type",
        &[2, 3, 3, 6, 6, 6, 1, 1, 4, 3, 5, 4, 1, 1],
    );
    w.u32_kv("tokenizer.ggml.eos_token_id", 2);
    w.u32_kv("tokenizer.ggml.bos_token_id", 1);
    w.buf
}

#[test]
fn sentencepiece_tokenizer_with_byte_fallback() {
    let t = GgufTokenizer::from_bytes(&llama_file()).unwrap();
    assert_eq!(t.vocab_type, VocabType::SentencePiece);
    let expect: Vec<&[u8]> = vec![
        b"<unk>",
        b"<s>",
        b"</s>",
        b"\n",
        &[0xC3],
        &[0xA9],
        b" hello",
        "é".as_bytes(),
        b"  ",
        b"<end_of_turn>",
        b"<unused0>",
        b" x ",
        // A normal token that looks like a byte piece still decodes as one.
        b"A",
        "\u{a0}".as_bytes(),
    ];
    assert_eq!(t.tokens, expect);
    assert_eq!(t.special_ids, vec![0, 1, 2, 9, 10]);
    assert_eq!(t.stop_ids, vec![2, 9]);

    // End to end: "é" is one token or the two byte tokens; EOS ends it.
    let vocab = Arc::new(t.into_vocabulary(None, None).unwrap());
    let g = Compiler::new(vocab.clone())
        .compile_gbnf("root ::= \"é\\n\"".as_bytes(), "root")
        .unwrap();
    let mut m = Matcher::new(g);
    let mut mask = vec![0u32; words_for(vocab.vocab_size())];
    m.fill_mask(&mut mask);
    let allowed: Vec<u32> = (0..14).filter(|&i| get_bit(&mask, i)).collect();
    assert_eq!(allowed, vec![4, 7]);
    assert!(m.accept_token(4) && !m.accept_token(7) && m.accept_token(5));
    assert!(m.accept_token(3) && m.can_terminate());
    m.fill_mask(&mut mask);
    let allowed: Vec<u32> = (0..14).filter(|&i| get_bit(&mask, i)).collect();
    assert_eq!(allowed, vec![2, 9]);
    assert!(m.accept_token(9) && m.is_terminated());
}

#[test]
fn file_loading_and_missing_files() {
    let dir = std::env::temp_dir().join(format!("corral-gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tiny.gguf");
    std::fs::write(&path, llama_file()).unwrap();
    let v = Vocabulary::from_gguf(&path).unwrap();
    assert_eq!(v.vocab_type(), VocabType::SentencePiece);
    assert_eq!(v.tokenizer_size(), 14);
    assert_eq!(v.stop_ids(), &[2, 9]);
    let md = Metadata::read_path(&path).unwrap();
    assert_eq!(md.version, 2);
    assert_eq!(md.entries().len(), 5);

    let bad = dir.join("bad.gguf");
    std::fs::write(&bad, b"not a model").unwrap();
    let e = Vocabulary::from_gguf(&bad).unwrap_err();
    assert!(e.message().contains("bad.gguf: not a GGUF file"), "{e}");
    let truncated = dir.join("trunc.gguf");
    std::fs::write(&truncated, &llama_file()[..60]).unwrap();
    let e = Vocabulary::from_gguf(&truncated).unwrap_err();
    assert!(
        e.message().contains("trunc.gguf: truncated GGUF file"),
        "{e}"
    );
    let missing = dir.join("missing.gguf");
    let e = Vocabulary::from_gguf(&missing).unwrap_err();
    assert!(
        e.message().contains("cannot read") && e.message().contains("missing.gguf"),
        "{e}"
    );
    let e = Vocabulary::from_gguf(&dir).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Vocab);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Flip, truncate and overwrite bytes of valid files: always Ok or Err, never a panic.
#[test]
fn mutated_files_never_panic() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for base in [gpt2_file(|_| {}), llama_file(), all_types_file(3, true)] {
        for cut in 0..base.len() {
            let _ = GgufTokenizer::from_bytes(&base[..cut]);
        }
        for _ in 0..3000 {
            let mut data = base.clone();
            for _ in 0..(1 + rand() % 4) {
                let i = (rand() as usize) % data.len();
                data[i] = match rand() % 3 {
                    0 => data[i] ^ (1 << (rand() % 8)),
                    1 => 0xFF,
                    _ => rand() as u8,
                };
            }
            if let Ok(t) = GgufTokenizer::from_bytes(&data) {
                let _ = t.into_vocabulary(None, None);
            }
            let _ = Metadata::read(&data[..], data.len() as u64, |_| true);
        }
    }
}
