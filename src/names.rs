//! The rule for user names. Plain logic, no I/O, no locks.
//!
//! Reader threads call [`validate`] before they try to claim a name in the
//! client directory, and the directory compares names through [`key`]. Both
//! are here so that "which names are allowed" and "which names are the same"
//! are decided in one place.

use std::fmt;

/// The longest name, in characters (all of them ASCII, so also in bytes).
pub const MAX_NAME_LEN: usize = 24;

/// The rule, in the words clients see after a refusal.
pub const NAME_RULE: &str = "1-24 letters, digits, - or _";

/// Why a name was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong,
    BadCharacter(char),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "a name cannot be empty: use {NAME_RULE}"),
            NameError::TooLong => write!(f, "name too long: use {NAME_RULE}"),
            NameError::BadCharacter(c) if c.is_ascii_graphic() || *c == ' ' => {
                write!(f, "name cannot contain '{c}': use {NAME_RULE}")
            }
            NameError::BadCharacter(c) => {
                write!(
                    f,
                    "name cannot contain U+{:04X}: use {NAME_RULE}",
                    *c as u32
                )
            }
        }
    }
}

/// Checks `name` against the rule: 1 to 24 ASCII letters, digits, `-` or `_`.
///
/// ASCII only, on purpose: names are shown in every terminal in the room, and
/// Unicode would allow names that look the same but are not (`аlice` with a
/// Cyrillic `а`), or that change how the rest of the line is drawn.
pub fn validate(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(NameError::BadCharacter(bad));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    Ok(())
}

/// The form names are compared in: `Alice` and `alice` are the same person.
pub fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_dash_underscore() {
        assert_eq!(validate("alice"), Ok(()));
        assert_eq!(validate("Bob_2-x"), Ok(()));
        assert_eq!(validate(&"a".repeat(MAX_NAME_LEN)), Ok(()));
    }

    #[test]
    fn refuses_empty_long_and_bad_characters() {
        assert_eq!(validate(""), Err(NameError::Empty));
        assert_eq!(
            validate(&"a".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong)
        );
        assert_eq!(validate("al ice"), Err(NameError::BadCharacter(' ')));
        assert_eq!(validate("bob!"), Err(NameError::BadCharacter('!')));
        assert_eq!(validate("zoë"), Err(NameError::BadCharacter('ë')));
    }

    #[test]
    fn error_messages_state_the_rule() {
        let message = NameError::BadCharacter('!').to_string();
        assert!(message.contains("'!'"), "{message}");
        assert!(message.contains(NAME_RULE), "{message}");
        let message = NameError::BadCharacter('\u{1b}').to_string();
        assert!(message.contains("U+001B"), "{message}");
        assert!(!message.contains('\u{1b}'), "control byte echoed back");
    }

    #[test]
    fn key_ignores_case() {
        assert_eq!(key("Alice"), key("aLICE"));
        assert_ne!(key("alice"), key("alice2"));
    }
}
