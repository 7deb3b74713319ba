//! Public API behaviour that does not depend on a grammar front-end.

use corral_core::error::Span;
use corral_core::{Error, ErrorKind, Vocabulary};

#[test]
fn vocabulary_rejects_bad_ids_with_numbers() {
    let toks = || vec![b"a".to_vec(), b"b".to_vec()];
    let e = Vocabulary::new(toks(), None, vec![5], vec![]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Vocab);
    assert!(
        e.to_string()
            .contains("stop token id 5 is out of range (the tokenizer has 2 tokens)"),
        "{e}"
    );
    let e = Vocabulary::new(toks(), Some(1), vec![0], vec![]).unwrap_err();
    assert!(
        e.to_string()
            .contains("vocab_size 1 is smaller than the tokenizer's 2 tokens"),
        "{e}"
    );
    let e = Vocabulary::new(vec![], None, vec![], vec![]).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn vocabulary_padding_duplicates_and_specials() {
    let toks = vec![
        b"ab".to_vec(),
        b"a".to_vec(),
        b"ab".to_vec(),
        b"<s>".to_vec(),
        Vec::new(),
    ];
    let v = Vocabulary::new(toks, Some(64), vec![3], vec![]).unwrap();
    assert_eq!((v.vocab_size(), v.tokenizer_size()), (64, 5));
    assert!(v.is_special(3) && v.is_stop(3) && !v.is_special(0));
    // Special and empty tokens are not text tokens; duplicates share a trie node.
    let mut in_trie = v.trie().tokens_in_order().to_vec();
    in_trie.sort_unstable();
    assert_eq!(in_trie, vec![0, 1, 2]);
    assert_eq!(v.trie().num_nodes(), 2);
    assert_eq!(v.ids_for_text(b"<s>"), &[3]);
    assert_eq!(v.token_bytes(99), b"");
}

#[test]
fn error_display_has_position_and_caret() {
    let src = "root ::= \"a\"\nexpr := term\n";
    let e = Error::syntax(
        "expected `::=`",
        Span {
            line: 2,
            column: 6,
            width: 2,
        },
        src,
    );
    assert_eq!(
        e.to_string(),
        "2:6: error: expected `::=`\n  expr := term\n       ^^"
    );
    assert_eq!(e.span().map(|s| (s.line, s.column)), Some((2, 6)));
    assert_eq!(Error::limit("too big").to_string(), "error: too big");
}
