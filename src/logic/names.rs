//! The rules for names: people's names and room names. Plain logic, no I/O,
//! no locks.
//!
//! Reader threads check a name here before they claim it in the client
//! directory or ask to join a room, and the directory and the rooms compare
//! names through [`key`]. Both are here so that "which names are allowed" and
//! "which names are the same" are decided in one place.

use std::fmt;

/// What a kind of name may look like.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NameRule {
    /// What the name names, as error messages say it: "name", "room name".
    pub noun: &'static str,
    /// The longest name, in characters (all ASCII, so also in bytes).
    pub max_len: usize,
    /// The rule, in the words clients see after a refusal.
    pub rule: &'static str,
}

/// People's names.
pub(crate) const USER_NAME: NameRule = NameRule {
    noun: "name",
    max_len: 24,
    rule: "1-24 letters, digits, - or _",
};

/// Room names (typed with or without a leading `#`, which is not part of them).
pub(crate) const ROOM_NAME: NameRule = NameRule {
    noun: "room name",
    max_len: 32,
    rule: "1-32 letters, digits, - or _",
};

/// The rule for people's names, as clients see it.
pub(crate) const NAME_RULE: &str = USER_NAME.rule;

/// Why a name was refused, and under which rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NameError {
    pub rule: &'static NameRule,
    pub problem: Problem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    Empty,
    TooLong,
    BadCharacter(char),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let NameRule { noun, rule, .. } = self.rule;
        match self.problem {
            Problem::Empty => write!(f, "a {noun} cannot be empty: use {rule}"),
            Problem::TooLong => write!(f, "{noun} too long: use {rule}"),
            Problem::BadCharacter(c) if c.is_ascii_graphic() || c == ' ' => {
                write!(f, "{noun} cannot contain '{c}': use {rule}")
            }
            // Never echo a control character back: say which one it was.
            Problem::BadCharacter(c) => {
                write!(f, "{noun} cannot contain U+{:04X}: use {rule}", c as u32)
            }
        }
    }
}

impl NameRule {
    /// Checks `name`: 1 to `max_len` ASCII letters, digits, `-` or `_`.
    ///
    /// ASCII only, on purpose: names are shown in every terminal in the room,
    /// and Unicode would allow names that look the same but are not (`аlice`
    /// with a Cyrillic `а`), or that change how the rest of the line is drawn.
    pub(crate) fn check(&'static self, name: &str) -> Result<(), NameError> {
        let refuse = |problem| {
            Err(NameError {
                rule: self,
                problem,
            })
        };
        if name.is_empty() {
            return refuse(Problem::Empty);
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return refuse(Problem::BadCharacter(bad));
        }
        if name.len() > self.max_len {
            return refuse(Problem::TooLong);
        }
        Ok(())
    }
}

/// Checks a person's name against [`USER_NAME`].
pub(crate) fn validate(name: &str) -> Result<(), NameError> {
    USER_NAME.check(name)
}

/// Checks a room name as typed, dropping one leading `#` (`/join #rust`);
/// returns the name without it.
pub(crate) fn validate_room(typed: &str) -> Result<&str, NameError> {
    let name = typed.strip_prefix('#').unwrap_or(typed);
    ROOM_NAME.check(name)?;
    Ok(name)
}

/// The form names are compared in: `Alice` and `alice` are the same person.
pub(crate) fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(result: Result<(), NameError>) -> Option<Problem> {
        result.err().map(|error| error.problem)
    }

    #[test]
    fn accepts_letters_digits_dash_underscore() {
        assert_eq!(validate("alice"), Ok(()));
        assert_eq!(validate("Bob_2-x"), Ok(()));
        assert_eq!(validate(&"a".repeat(USER_NAME.max_len)), Ok(()));
    }

    #[test]
    fn refuses_empty_long_and_bad_characters() {
        assert_eq!(problem(validate("")), Some(Problem::Empty));
        assert_eq!(
            problem(validate(&"a".repeat(USER_NAME.max_len + 1))),
            Some(Problem::TooLong)
        );
        assert_eq!(
            problem(validate("al ice")),
            Some(Problem::BadCharacter(' '))
        );
        assert_eq!(problem(validate("bob!")), Some(Problem::BadCharacter('!')));
        assert_eq!(problem(validate("zoë")), Some(Problem::BadCharacter('ë')));
    }

    #[test]
    fn error_messages_state_the_rule() {
        let message = validate("bob!").unwrap_err().to_string();
        assert_eq!(
            message,
            "name cannot contain '!': use 1-24 letters, digits, - or _"
        );
        let message = validate("a\u{1b}").unwrap_err().to_string();
        assert!(message.contains("U+001B"), "{message}");
        assert!(!message.contains('\u{1b}'), "control byte echoed back");
        let message = validate_room("a.b").unwrap_err().to_string();
        assert_eq!(
            message,
            "room name cannot contain '.': use 1-32 letters, digits, - or _"
        );
    }

    #[test]
    fn room_names_drop_one_leading_hash_and_allow_32_characters() {
        assert_eq!(validate_room("#rust"), Ok("rust"));
        assert_eq!(validate_room("Rust-2"), Ok("Rust-2"));
        let longest = "r".repeat(32);
        assert_eq!(validate_room(&longest), Ok(longest.as_str()));
        let too_long = "r".repeat(33);
        assert_eq!(
            validate_room(&too_long).unwrap_err().problem,
            Problem::TooLong
        );
        assert_eq!(validate_room("#").unwrap_err().problem, Problem::Empty);
        assert_eq!(
            validate_room("##rust").unwrap_err().problem,
            Problem::BadCharacter('#')
        );
    }

    #[test]
    fn key_ignores_case() {
        assert_eq!(key("Alice"), key("aLICE"));
        assert_ne!(key("alice"), key("alice2"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A name is accepted exactly when it is 1 to 24 ASCII letters,
        /// digits, `-` or `_`; a refusal never echoes a control character.
        #[test]
        fn the_rule_is_exactly_what_it_says(name in "\\PC{0,30}|[a-zA-Z0-9_-]{0,30}") {
            let follows_rule = (1..=24).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            match validate(&name) {
                Ok(()) => prop_assert!(follows_rule, "{name:?} accepted"),
                Err(error) => {
                    prop_assert!(!follows_rule, "{name:?} refused: {error}");
                    prop_assert!(!error.to_string().chars().any(char::is_control));
                }
            }
        }

        #[test]
        fn same_name_ignoring_case_means_same_key(name in "[a-zA-Z0-9_-]{1,24}") {
            prop_assert_eq!(key(&name), key(&name.to_ascii_uppercase()));
        }
    }
}
