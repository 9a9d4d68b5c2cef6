//! Line-protocol conformance: every escaping rule and field type of the
//! reference (`shared/reference/metrics-protocols.md`), errors with line and
//! column, precisions, and a property test: any point written parses back equal.

use metrics::line::{Precision, parse_batch, parse_line, write_point};
use metrics::model::{FieldValue, Point};
use proptest::prelude::*;

fn one(line: &str) -> Point {
    parse_line(line.as_bytes(), Precision::Ns).unwrap_or_else(|e| panic!("{line:?}: {e:?}")).expect("a point")
}

fn err(line: &str) -> String {
    parse_line(line.as_bytes(), Precision::Ns).expect_err(line).1
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn escaping_rules() {
    let p = one(r"my\ cpu\,x,ta\,g\=k\ ey=va\ l\,u\=e f\=i\ el\,d=1 5");
    assert_eq!(p.measurement, "my cpu,x");
    assert_eq!(p.tags, vec![(s("ta,g=k ey"), s("va l,u=e"))]);
    assert_eq!(p.fields, vec![(s("f=i el,d"), FieldValue::Float(1.0))]);
    assert_eq!(p.timestamp, Some(5));
    // `=` needs no escape in a measurement; a backslash before anything else is literal.
    assert_eq!(one(r"a=b\x v=1").measurement, r"a=b\x");
    assert_eq!(one(r"m,t=a\b v=1").tags[0].1, r"a\b");
    // String values escape `"` and `\`; commas, spaces and `=` are plain inside them.
    let p = one(r#"m s="a \"quoted\" \\ back, slash = x",n=2i"#);
    assert_eq!(p.fields[0].1, FieldValue::Str(s(r#"a "quoted" \ back, slash = x"#)));
    assert_eq!(p.fields[1].1, FieldValue::Int(2));
    // Other backslashes in strings are literal.
    assert_eq!(one(r#"m s="a\nb""#).fields[0].1, FieldValue::Str(s(r"a\nb")));
    // Unicode anywhere.
    assert_eq!(one("température,pièce=salon °C=21.5").tags[0].1, "salon");
}

#[test]
fn field_types() {
    let cases: &[(&str, FieldValue)] = &[
        ("1", FieldValue::Float(1.0)),
        ("-1.5e3", FieldValue::Float(-1500.0)),
        (".5", FieldValue::Float(0.5)),
        ("1.", FieldValue::Float(1.0)),
        ("1E-2", FieldValue::Float(0.01)),
        ("12i", FieldValue::Int(12)),
        ("-9223372036854775808i", FieldValue::Int(i64::MIN)),
        ("12u", FieldValue::UInt(12)),
        ("18446744073709551615u", FieldValue::UInt(u64::MAX)),
        ("\"\"", FieldValue::Str(String::new())),
    ];
    for (text, want) in cases {
        assert_eq!(&one(&format!("m v={text}")).fields[0].1, want, "{text}");
    }
    for b in ["t", "T", "true", "True", "TRUE"] {
        assert_eq!(one(&format!("m v={b}")).fields[0].1, FieldValue::Bool(true), "{b}");
    }
    for b in ["f", "F", "false", "False", "FALSE"] {
        assert_eq!(one(&format!("m v={b}")).fields[0].1, FieldValue::Bool(false), "{b}");
    }
    for bad in [
        "tRUE",
        "yes",
        "1.2.3",
        "NaN",
        "inf",
        "+Inf",
        "0x10",
        "1i2",
        "9223372036854775808i",
        "-1u",
        "1e",
        "--1",
        "+1",
        "1_000",
    ] {
        let e = err(&format!("m v={bad}"));
        assert!(e.contains("invalid") || e.contains("out of range"), "{bad}: {e}");
    }
    let long = format!("m v=\"{}\"", "x".repeat(64 * 1024 + 1));
    assert!(err(&long).contains("longer than 65536"));
    assert!(parse_line(format!("m v=\"{}\"", "x".repeat(64 * 1024)).as_bytes(), Precision::Ns).is_ok());
}

#[test]
fn structure_errors_name_the_column() {
    let cases: &[(&str, usize, &str)] = &[
        ("m", 2, "missing fields"),
        ("m ", 3, "missing field key"),
        (",t=1 v=1", 1, "missing measurement"),
        ("m,t v=1", 4, "missing tag value"),
        ("m,t= v=1", 5, "missing tag value"),
        ("m,=x v=1", 3, "missing tag key"),
        ("m v", 4, "missing field value"),
        ("m v=", 5, "missing field value"),
        ("m v=1,", 7, "missing field key"),
        ("m v=1 12x", 7, "invalid timestamp"),
        ("m v=1 1 2", 9, "unexpected text"),
        ("m v=\"open", 5, "unterminated string"),
        ("m v=1 99999999999999999999", 7, "out of range"),
        ("m\u{1}x v=1", 2, "control character"),
    ];
    for (line, column, message) in cases {
        let (c, m) = parse_line(line.as_bytes(), Precision::Ns).expect_err(line);
        assert!(m.contains(message), "{line:?}: {m:?} should contain {message:?}");
        assert_eq!(c, *column, "{line:?}: {m}");
    }
}

#[test]
fn batches_comments_blank_lines_crlf_and_line_numbers() {
    let body = b"# comment\n\n   \r\n  m,t=a v=1 1\r\nm v=2 2\n  # indented comment\nbad\nm v=x\n";
    let b = parse_batch(body, Precision::Ns);
    assert_eq!(b.points.len(), 2);
    assert_eq!(b.points[0].timestamp, Some(1));
    assert_eq!(b.errors.len(), 2);
    assert_eq!((b.errors[0].line, b.errors[0].text.as_str()), (7, "bad"));
    assert_eq!(b.errors[1].line, 8);
    assert!(b.errors[1].to_string().starts_with("line 8, column 5: invalid number field value"), "{}", b.errors[1]);
    let b = parse_batch(&[b'm', b' ', b'v', b'=', 0xff], Precision::Ns);
    assert!(b.errors[0].message.contains("UTF-8"));
}

#[test]
fn precisions_scale_to_nanoseconds() {
    for (p, factor) in [
        ("n", 1),
        ("ns", 1),
        ("u", 1_000),
        ("us", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000i64),
    ] {
        let precision = Precision::parse(p).unwrap();
        let point = parse_line(b"m v=1 -7", precision).unwrap().unwrap();
        assert_eq!(point.timestamp, Some(-7 * factor), "{p}");
    }
    assert!(Precision::parse("d").unwrap_err().to_string().contains("invalid precision \"d\""));
    let (_, m) = parse_line(b"m v=1 9223372036854775807", Precision::S).unwrap_err();
    assert!(m.contains("out of range"), "{m}");
    assert_eq!(parse_line(b"m v=1", Precision::S).unwrap().unwrap().timestamp, None);
}

fn name() -> impl Strategy<Value = String> {
    // Names with every special character (the few line protocol cannot express are skipped).
    "[a-z ,=\"\\\\é_]{0,8}[a-z]".prop_map(|s| s)
}

fn field_value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(FieldValue::Float),
        any::<i64>().prop_map(FieldValue::Int),
        any::<u64>().prop_map(FieldValue::UInt),
        any::<bool>().prop_map(FieldValue::Bool),
        "[a-z \"\\\\,=]{0,12}".prop_map(FieldValue::Str),
    ]
}

proptest! {
    #[test]
    fn written_points_parse_back_equal(
        measurement in name(),
        tags in prop::collection::vec((name(), name()), 0..4),
        fields in prop::collection::vec((name(), field_value()), 1..4),
        timestamp in prop::option::of(any::<i64>()),
    ) {
        let point = Point { measurement, tags, fields, timestamp };
        prop_assume!(metrics::line::expressible(&point));
        let mut line = String::new();
        write_point(&point, &mut line);
        let back = parse_line(line.as_bytes(), Precision::Ns);
        prop_assert_eq!(back, Ok(Some(point)), "{}", line);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_batch(&body, Precision::Ms);
    }
}
