//! Checks on names other people see (display names, brand names): besides length, no
//! character that hides or reorders text. Control characters, bidirectional overrides,
//! isolates and marks, and zero-width characters let a name look like another (`admin` with
//! a zero-width space), reverse what follows it on screen (`U+202E`), or carry text no one
//! sees; such a name is refused with `VALIDATION`, never silently cleaned, so that what is
//! stored is what was typed.

use crate::error::{Error, Result};

/// Whether `c` hides or reorders text: a control character (C0, DEL, C1), a bidirectional
/// embedding or override (U+202A–U+202E), isolate (U+2066–U+2069) or mark (U+200E, U+200F,
/// U+061C), a zero-width space, joiner or non-joiner (U+200B–U+200D), the word joiner
/// (U+2060), a byte-order mark (U+FEFF), or a line or paragraph separator (U+2028, U+2029).
pub fn hides_text(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'
                | '\u{FEFF}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// A name of 1 to `max_chars` characters after trimming, with no character that
/// [hides text](hides_text); otherwise `VALIDATION` naming `field`.
pub fn name(field: &'static str, raw: &str, max_chars: usize) -> Result<String> {
    let s = raw.trim();
    let count = s.chars().count();
    if count == 0 {
        return Err(Error::validation(field, "must not be empty"));
    }
    if count > max_chars {
        return Err(Error::validation(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if s.chars().any(hides_text) {
        return Err(Error::validation(
            field,
            "must not contain control, bidirectional or zero-width characters",
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_hide_or_reorder_text_are_refused() {
        for bad in [
            "ad\u{0}min",
            "ad\u{7}min",
            "line\nbreak",
            "\u{202E}nimda",
            "a\u{2066}b\u{2069}",
            "zero\u{200B}width",
            "join\u{200D}er",
            "word\u{2060}joiner",
            "\u{FEFF}bom",
            "mark\u{200F}",
            "c\u{85}1",
        ] {
            let err = name("displayName", bad, 64).expect_err(bad);
            assert_eq!(
                (err.code(), err.field()),
                ("VALIDATION", Some("displayName"))
            );
        }
        for good in ["Ana", "推手 小王", "Zoë O'Brien", "ＡＢＣ", "😀 shop"] {
            assert_eq!(name("displayName", good, 64).expect(good), good);
        }
        assert_eq!(name("name", "  Acme  ", 10).expect("trimmed"), "Acme");
        assert_eq!(
            name("name", "   ", 10).err().map(|e| e.code()),
            Some("VALIDATION")
        );
        assert!(name("name", &"x".repeat(11), 10).is_err());
    }
}
