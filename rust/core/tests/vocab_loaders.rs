//! `Vocabulary::from_tiktoken` and `Vocabulary::from_pieces`.

use corral_core::vocab::tiktoken::{parse_ranks, MAX_TOKENS};
use corral_core::vocab::VocabType;
use corral_core::{ErrorKind, Vocabulary};

fn specials(list: &[(&str, u32)]) -> Vec<(String, u32)> {
    list.iter().map(|&(s, i)| (s.to_owned(), i)).collect()
}

fn err(data: &[u8], sp: &[(&str, u32)]) -> String {
    let e = Vocabulary::from_tiktoken(data, &specials(sp), vec![], None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Vocab);
    e.message().to_owned()
}

#[test]
fn tiktoken_ranks_specials_and_padding() {
    // "a"=YQ==, "bc"=YmM=, " d"=IGQ=, 0xFF=/w==; blank lines and CRLF are fine.
    let data = b"YQ== 0\r\nYmM= 1\n\n  \nIGQ= 2\n/w== 3\n";
    let v = Vocabulary::from_tiktoken(
        data,
        &specials(&[("<|endoftext|>", 4), ("<|im_end|>", 5)]),
        vec![4, 5],
        Some(64),
    )
    .unwrap();
    assert_eq!(v.vocab_type(), VocabType::Raw);
    assert_eq!((v.tokenizer_size(), v.vocab_size()), (6, 64));
    let toks: Vec<&[u8]> = (0..6).map(|i| v.token_bytes(i)).collect();
    assert_eq!(
        toks,
        vec![
            &b"a"[..],
            b"bc",
            b" d",
            &[0xFF],
            b"<|endoftext|>",
            b"<|im_end|>"
        ]
    );
    assert_eq!(v.stop_ids(), &[4, 5]);
    assert_eq!(v.special_ids(), &[4, 5]);
    assert_eq!(v.ids_for_text(b"<|im_end|>"), &[5]);
}

#[test]
fn tiktoken_gaps_become_empty_tokens() {
    // Ranks 0 and 3, a special at 6: ids 1, 2, 4 and 5 are empty, never text.
    let v = Vocabulary::from_tiktoken(b"YQ== 3\nYmM= 0\n", &specials(&[("<s>", 6)]), vec![6], None)
        .unwrap();
    assert_eq!(v.tokenizer_size(), 7);
    assert_eq!(v.token_bytes(0), b"bc");
    assert_eq!(v.token_bytes(3), b"a");
    for id in [1, 2, 4, 5] {
        assert_eq!(v.token_bytes(id), b"");
        assert!(!v.is_special(id));
    }
    let mut in_trie = v.trie().tokens_in_order().to_vec();
    in_trie.sort_unstable();
    assert_eq!(in_trie, vec![0, 3]);
    // Only specials, no ranks.
    let v = Vocabulary::from_tiktoken(b"", &specials(&[("<s>", 0)]), vec![0], None).unwrap();
    assert_eq!(v.tokenizer_size(), 1);
}

#[test]
fn tiktoken_bad_lines_name_the_line() {
    let m = err(b"YQ== 0\nYmM=\n", &[]);
    assert!(m.contains("line 2: not two fields"), "{m}");
    let m = err(b"YQ== 0\nYmM= 1 2\n", &[]);
    assert!(m.contains("line 2: not two fields"), "{m}");
    let m = err(b"YQ== 0\n\nY*M= 1\n", &[]);
    assert!(m.contains("line 3: invalid base64"), "{m}");
    let m = err(b"YQ== zero\n", &[]);
    assert!(m.contains("line 1: the rank is not a token id"), "{m}");
    let m = err(b"YQ== -1\n", &[]);
    assert!(m.contains("line 1: the rank is not a token id"), "{m}");
    let m = err(b"YQ== 99999999999\n", &[]);
    assert!(m.contains("line 1: the rank is not a token id"), "{m}");
    let m = err(b"YQ== +1\n", &[]);
    assert!(m.contains("line 1: the rank is not a token id"), "{m}");
    let m = err(b"\xff\xfe 0\n", &[]);
    assert!(m.contains("line 1: invalid base64"), "{m}");
    let m = err(b"YQ== 0\nYmM= 0\n", &[]);
    assert!(m.contains("rank 0 appears twice (entries 1 and 2)"), "{m}");
    let m = err(b"YQ== 0\n", &[("<s>", 0)]);
    assert!(
        m.contains("special token \"<s>\" has id 0, which another token already has"),
        "{m}"
    );
    let m = err(b"YQ== 0\n", &[("<s>", 1), ("</s>", 1)]);
    assert!(
        m.contains("has id 1, which another token already has"),
        "{m}"
    );
    let m = err(format!("YQ== {MAX_TOKENS}\n").as_bytes(), &[]);
    assert!(m.contains("tiktoken rank 4194304 is too large"), "{m}");
    let m = err(b"YQ== 0\n", &[("<s>", u32::MAX)]);
    assert!(
        m.contains("special token \"<s>\" id 4294967295 is too large"),
        "{m}"
    );
    let m = err(b"", &[]);
    assert!(m.contains("empty"), "{m}");
    // Stop ids and vocab_size are checked like everywhere else.
    let e = Vocabulary::from_tiktoken(b"YQ== 0\n", &[], vec![1], None).unwrap_err();
    assert!(
        e.message().contains("stop token id 1 is out of range"),
        "{e}"
    );
    let e = Vocabulary::from_tiktoken(b"YQ== 0\nYQ== 1\n", &[], vec![], Some(1)).unwrap_err();
    assert!(e.message().contains("vocab_size 1 is smaller"), "{e}");
}

#[test]
fn tiktoken_parse_ranks_keeps_file_order() {
    let r = parse_ranks(b"YmM= 5\r\nYQ== 2").unwrap();
    assert_eq!(r, vec![(b"bc".to_vec(), 5), (b"a".to_vec(), 2)]);
    // Tabs separate fields too.
    assert_eq!(parse_ranks(b"YQ==\t7\n").unwrap(), vec![(b"a".to_vec(), 7)]);
}

#[test]
fn pieces_of_each_family() {
    let bl = Vocabulary::from_pieces(
        &[
            Some("Ġhi"),
            Some("Ċ"),
            Some("ðŁĺ"),
            Some("<|im_end|>"),
            None,
            Some("Ġ"),
        ],
        VocabType::ByteLevel,
        &[],
        Some(8),
        vec![3],
        vec![],
    )
    .unwrap();
    assert_eq!(bl.vocab_type(), VocabType::ByteLevel);
    assert_eq!(bl.token_bytes(0), b" hi");
    assert_eq!(bl.token_bytes(1), b"\n");
    assert_eq!(bl.token_bytes(2), &[0xF0, 0x9F, 0x98]);
    assert_eq!(bl.token_bytes(3), b"<|im_end|>");
    assert_eq!(bl.token_bytes(4), b"");
    assert_eq!(bl.token_bytes(5), b" ");
    assert_eq!((bl.vocab_size(), bl.stop_ids()), (8, &[3][..]));

    // Special ids keep their text even when it looks like a piece to decode.
    let sp = Vocabulary::from_pieces(
        &[
            Some("▁a"),
            Some("<0x0A>"),
            Some("<s>"),
            Some("▁<special>"),
            Some("<0xE2>"),
        ],
        VocabType::SentencePiece,
        &[],
        None,
        vec![2],
        vec![3],
    )
    .unwrap();
    assert_eq!(sp.token_bytes(0), b" a");
    assert_eq!(sp.token_bytes(1), b"\n");
    assert_eq!(sp.token_bytes(2), b"<s>");
    assert_eq!(sp.token_bytes(3), "▁<special>".as_bytes());
    assert_eq!(sp.token_bytes(4), &[0xE2]);
    assert_eq!(sp.special_ids(), &[2, 3]);

    // Byte tokens override decoding; raw pieces are their UTF-8 text.
    let raw = Vocabulary::from_pieces(
        &[Some("▁a"), Some("byte"), Some("Ġ")],
        VocabType::Raw,
        &[(1, 0x80)],
        None,
        vec![],
        vec![],
    )
    .unwrap();
    assert_eq!(raw.token_bytes(0), "▁a".as_bytes());
    assert_eq!(raw.token_bytes(1), &[0x80]);
    assert_eq!(raw.token_bytes(2), "Ġ".as_bytes());

    let e = Vocabulary::from_pieces(
        &[Some("a")],
        VocabType::Raw,
        &[(1, 0)],
        None,
        vec![],
        vec![],
    )
    .unwrap_err();
    assert!(
        e.message().contains("byte token id 1 is out of range"),
        "{e}"
    );
    let e = Vocabulary::from_pieces(&[Some("a")], VocabType::Raw, &[], None, vec![3], vec![])
        .unwrap_err();
    assert!(
        e.message().contains("stop token id 3 is out of range"),
        "{e}"
    );
    let e = Vocabulary::from_pieces::<&str>(&[], VocabType::Raw, &[], None, vec![], vec![])
        .unwrap_err();
    assert!(e.message().contains("empty"), "{e}");
}
