//! Statement lines as RFC 4180 CSV, and the `Content-Digest` of a body.
//!
//! Amounts appear twice: as decimal strings in major units (`"10.00"`, `"-3.88"`, exact, from
//! the currency's ISO 4217 exponent, no floats) for people, and as integer minor units for
//! programs. Records end in CRLF as RFC 4180 says; a field is quoted only when it holds a comma,
//! a quote or a line break.

use crate::statement::StatementLine;
use base64::Engine;
use chrono::SecondsFormat;
use domain::Currency;
use sha2::{Digest, Sha256};

/// The header row's column names, in order.
pub const COLUMNS: [&str; 16] = [
    "kind",
    "object_id",
    "occurred_at",
    "currency",
    "gross",
    "fee",
    "refund",
    "fee_return",
    "adjustment",
    "net",
    "gross_minor",
    "fee_minor",
    "refund_minor",
    "fee_return_minor",
    "adjustment_minor",
    "net_minor",
];

/// The CSV of `lines` in `currency`: a header row, then one record per line in the order given.
pub fn render(currency: Currency, lines: &[StatementLine]) -> String {
    let mut out = String::new();
    push_record(&mut out, COLUMNS.iter().map(|c| (*c).to_owned()));
    for line in lines {
        let amounts = [
            line.gross,
            line.fee,
            line.refund,
            line.fee_return,
            line.adjustment,
            line.net,
        ];
        let fields = [
            line.kind.as_str().to_owned(),
            line.object_id.clone(),
            line.occurred_at
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
            currency.code().to_owned(),
        ]
        .into_iter()
        .chain(amounts.iter().map(|a| major_units(*a, currency)))
        .chain(amounts.iter().map(i64::to_string));
        push_record(&mut out, fields);
    }
    out
}

/// An RFC 9530 `Content-Digest` value for `body`: `sha-256=:<base64 of the SHA-256>:`.
pub fn digest_header(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// `minor` as a signed decimal string with exactly the currency's number of decimals
/// (`-388` USD → `"-3.88"`, `20` JPY → `"20"`, `1` KWD → `"0.001"`).
pub fn major_units(minor: i64, currency: Currency) -> String {
    let exp = usize::from(currency.exponent());
    // unsigned_abs: i64::MIN has no positive i64 counterpart.
    let digits = minor.unsigned_abs().to_string();
    let sign = if minor < 0 { "-" } else { "" };
    if exp == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = exp + 1);
    let (int_part, frac_part) = padded.split_at(padded.len() - exp);
    format!("{sign}{int_part}.{frac_part}")
}

fn push_record(out: &mut String, fields: impl Iterator<Item = String>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&field);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use domain::Money;

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    #[test]
    fn amounts_render_exactly_in_major_units() {
        assert_eq!(major_units(1000, cur("USD")), "10.00");
        assert_eq!(major_units(-388, cur("USD")), "-3.88");
        assert_eq!(major_units(-5, cur("USD")), "-0.05");
        assert_eq!(major_units(0, cur("USD")), "0.00");
        assert_eq!(major_units(20, cur("JPY")), "20");
        assert_eq!(major_units(-20, cur("JPY")), "-20");
        assert_eq!(major_units(1, cur("KWD")), "0.001");
        assert_eq!(major_units(i64::MIN, cur("USD")), "-92233720368547758.08");
        // Non-negative amounts agree with domain's own rendering.
        for minor in [0, 1, 99, 100, 123_456, i64::MAX] {
            for code in ["USD", "JPY", "KWD", "CLF"] {
                let money = Money::new(minor, cur(code)).unwrap();
                assert_eq!(major_units(minor, cur(code)), money.to_major_string());
            }
        }
    }

    #[test]
    fn csv_has_a_header_crlf_records_and_quotes_only_when_needed() {
        let at = Utc.with_ymd_and_hms(2025, 3, 5, 9, 30, 0).unwrap();
        let lines = [
            StatementLine::payment("pay_1", at, 1000, 59).unwrap(),
            StatementLine::adjustment("adj \"one\", fixed", at, -25).unwrap(),
        ];
        let csv = render(cur("USD"), &lines);
        let records: Vec<&str> = csv.split_terminator("\r\n").collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0], COLUMNS.join(","));
        assert_eq!(
            records[1],
            "payment,pay_1,2025-03-05T09:30:00Z,USD,10.00,0.59,0.00,0.00,0.00,9.41,1000,59,0,0,0,941"
        );
        assert_eq!(
            records[2],
            "adjustment,\"adj \"\"one\"\", fixed\",2025-03-05T09:30:00Z,USD,0.00,0.00,0.00,0.00,-0.25,-0.25,0,0,0,0,-25,-25"
        );
        assert!(csv.ends_with("\r\n"));
    }

    #[test]
    fn digest_header_is_rfc_9530_sha_256() {
        // SHA-256 of the empty string and of "hello", base64.
        assert_eq!(
            digest_header(b""),
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
        );
        assert_eq!(
            digest_header(b"hello"),
            "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:"
        );
    }
}
