//! Matcher behaviour on grammars built directly as IR (independent of the GBNF front-end).

use corral_core::grammar::{Expr, Grammar, Rule};
use corral_core::mask::{get_bit, words_for};
use corral_core::{CompiledGrammar, Compiler, Limits, Matcher, Vocabulary};
use std::sync::Arc;

fn rule(name: &str, body: Expr) -> Rule {
    Rule {
        name: name.into(),
        body,
        span: None,
    }
}

fn lit(s: &str) -> Expr {
    Expr::Literal(s.as_bytes().to_vec())
}

fn compile(rules: Vec<Rule>) -> Arc<CompiledGrammar> {
    let vocab = Arc::new(Vocabulary::byte_level());
    let g = Grammar { rules, root: 0 };
    Arc::new(CompiledGrammar::from_grammar(&g, vocab, &Limits::default(), None).unwrap())
}

fn allowed(m: &mut Matcher) -> Vec<u32> {
    let mut mask = vec![0u32; words_for(257)];
    m.fill_mask(&mut mask);
    (0..257).filter(|&i| get_bit(&mask, i)).collect()
}

fn accepts(g: &Arc<CompiledGrammar>, s: &str) -> bool {
    let mut m = Matcher::new(g.clone());
    m.accept_bytes(s.as_bytes()) && m.can_terminate()
}

/// Mask must equal the set of tokens `accept_token` takes, at every prefix of `s`.
fn check_mask_vs_accept(g: &Arc<CompiledGrammar>, s: &str) {
    let mut m = Matcher::new(g.clone());
    for &b in s.as_bytes() {
        let mask = allowed(&mut m);
        let by_accept: Vec<u32> = (0..257)
            .filter(|&t| {
                let mut f = m.clone();
                f.accept_token(t)
            })
            .collect();
        assert_eq!(mask, by_accept, "at prefix before byte {b}");
        assert!(m.accept_token(u32::from(b)));
    }
}

#[test]
fn left_recursive_sum() {
    // root ::= root "+" num | num ; num ::= [0-9]+
    let num = Expr::Repeat {
        expr: Box::new(Expr::Class {
            negated: false,
            ranges: vec![(48, 57)],
        }),
        min: 1,
        max: None,
    };
    let g = compile(vec![
        rule(
            "root",
            Expr::Alt(vec![
                Expr::Seq(vec![Expr::Rule(0), lit("+"), Expr::Rule(1)]),
                Expr::Rule(1),
            ]),
        ),
        rule("num", num),
    ]);
    assert!(accepts(&g, "1+22+333"));
    assert!(!accepts(&g, "1+"));
    assert!(!accepts(&g, "+1"));
    check_mask_vs_accept(&g, "12+3+45");
    let mut m = Matcher::new(g.clone());
    assert_eq!(allowed(&mut m), (48..58).collect::<Vec<_>>());
    assert!(m.accept_token(u32::from(b'1')));
    let mut want: Vec<u32> = (48..58).collect();
    want.insert(0, u32::from(b'+'));
    want.push(256);
    assert_eq!(allowed(&mut m), want);
}

#[test]
fn nullable_and_utf8() {
    // root ::= ws "é" ws ; ws ::= " "*
    let ws = Expr::Repeat {
        expr: Box::new(lit(" ")),
        min: 0,
        max: None,
    };
    let g = compile(vec![
        rule(
            "root",
            Expr::Seq(vec![Expr::Rule(1), lit("é"), Expr::Rule(1)]),
        ),
        rule("ws", ws),
    ]);
    assert!(accepts(&g, "é"));
    assert!(accepts(&g, "  é "));
    check_mask_vs_accept(&g, "  é  ");
    let mut m = Matcher::new(g.clone());
    assert_eq!(allowed(&mut m), vec![32, 0xC3]);
}

#[test]
fn rollback_and_fork() {
    let g = compile(vec![rule("root", Expr::Alt(vec![lit("abc"), lit("abd")]))]);
    let mut m = Matcher::new(g);
    let m0 = allowed(&mut m);
    assert!(m.accept_token(u32::from(b'a')));
    assert!(m.accept_token(u32::from(b'b')));
    let mut f = m.clone();
    assert!(f.accept_token(u32::from(b'c')));
    assert_eq!(allowed(&mut m), vec![u32::from(b'c'), u32::from(b'd')]);
    m.rollback(2).unwrap();
    assert_eq!(allowed(&mut m), m0);
    assert!(f.can_terminate());
}

#[test]
fn unproductive_branches_are_trimmed() {
    // root ::= "a" x | "b" ; x ::= x "c"   (x never completes)
    let g = compile(vec![
        rule(
            "root",
            Expr::Alt(vec![Expr::Seq(vec![lit("a"), Expr::Rule(1)]), lit("b")]),
        ),
        rule("x", Expr::Seq(vec![Expr::Rule(1), lit("c")])),
    ]);
    let mut m = Matcher::new(g);
    assert_eq!(allowed(&mut m), vec![u32::from(b'b')]);
}

/// A rule instance that completes inside a token must not be confused with a
/// nested instance of the same rule (regression: `"a" root "b"` allowed `bb`
/// after `a`).
#[test]
fn self_embedding_rule_with_multibyte_tokens() {
    let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    tokens.extend([
        b"<eos>".to_vec(),
        b"bb".to_vec(),
        b"bbb".to_vec(),
        b"ab".to_vec(),
        b"abb".to_vec(),
    ]);
    let vocab = Arc::new(Vocabulary::new(tokens, None, vec![256], vec![]).unwrap());
    let compiler = Compiler::new(vocab.clone());
    for src in [
        r#"root ::= "a" root "b" | """#,
        "root ::= \"a\" x \"b\" | \"\"\nx ::= root",
    ] {
        let g = compiler.compile_gbnf(src.as_bytes(), "root").unwrap();
        for prefix in [&b""[..], b"a", b"aa", b"aab", b"aaab"] {
            let mut m = Matcher::new(g.clone());
            assert!(m.accept_bytes(prefix));
            let mut mask = vec![0u32; words_for(vocab.vocab_size())];
            m.fill_mask(&mut mask);
            for t in 0..vocab.vocab_size() as u32 {
                let ok = m.clone().accept_token(t);
                assert_eq!(get_bit(&mask, t), ok, "{src:?} after {prefix:?}: token {t}");
            }
        }
    }
}

/// Repetitions bounded far beyond a DFA's reach stay counters: building is
/// immediate and the masks at the bounds are exact.
#[test]
fn huge_counted_repetitions() {
    let g = compile(vec![rule(
        "root",
        Expr::Seq(vec![
            Expr::Repeat {
                expr: Box::new(Expr::Class {
                    negated: false,
                    ranges: vec![(u32::from('a'), u32::from('z'))],
                }),
                min: 2,
                max: Some(3_000_000),
            },
            lit("."),
        ]),
    )]);
    assert!(g.num_states() < 16, "{} states", g.num_states());
    assert!(!accepts(&g, "a."));
    assert!(accepts(&g, "ab."));
    assert!(accepts(&g, &("q".repeat(10_000) + ".")));
    check_mask_vs_accept(&g, "abcdefghij.");

    // (((([^x]*){0,99}){0,99}){0,99}){0,99}: nullable items, nested counters.
    let mut e = Expr::Repeat {
        expr: Box::new(Expr::Class {
            negated: true,
            ranges: vec![(u32::from('x'), u32::from('x'))],
        }),
        min: 0,
        max: None,
    };
    for _ in 0..4 {
        e = Expr::Repeat {
            expr: Box::new(e),
            min: 0,
            max: Some(99),
        };
    }
    let g = compile(vec![rule("root", Expr::Seq(vec![e, lit("x")]))]);
    assert!(accepts(&g, "x"));
    assert!(accepts(&g, "abcx"));
    assert!(!accepts(&g, "abxx"));
}

/// Permutation: any order, each member at most once, required ones present.
#[test]
fn permutation_members() {
    let perm = Expr::Permutation {
        members: vec![lit("a"), lit("bb"), lit("c")],
        required: vec![true, false, false],
        sep: Box::new(lit(",")),
        min: 0,
        max: Some(2),
    };
    let g = compile(vec![rule(
        "root",
        Expr::Seq(vec![lit("{"), perm, lit("}")]),
    )]);
    for ok in ["{a}", "{a,bb}", "{bb,a}", "{c,a}", "{a,c}"] {
        assert!(accepts(&g, ok), "{ok}");
        check_mask_vs_accept(&g, ok);
    }
    for bad in [
        "{}", "{bb}", "{a,a}", "{a,bb,c}", "{bb,c}", "{a,}", "{,a}", "{c,bb}",
    ] {
        assert!(!accepts(&g, bad), "{bad}");
    }
}
