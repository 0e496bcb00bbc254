//! Accounts: the rules for emails, names and passwords.

/// A syntactically valid email address, as typed (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// # Errors
    /// A sentence for the form when the text is not an email address.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let text = text.trim();
        if text.is_empty() {
            return Err("Enter an email address");
        }
        let valid = text.len() <= 254
            && !text.chars().any(|c| c.is_whitespace() || c.is_control())
            && text.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
            });
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err("Enter an email address like name@example.org")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form accounts are matched by: email addresses are compared without regard to case.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A person's name as shown on pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// # Errors
    /// A sentence for the form when the name is empty or too long.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            Err("Enter the person's name")
        } else if text.chars().count() > 200 || text.chars().any(char::is_control) {
            Err("Enter a name of at most 200 characters")
        } else {
            Ok(Self(text))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_CHARS: usize = 128;

/// Checks a new password against the policy: 12 to 128 characters of any kind, not a common
/// password, and not containing the person's email or name.
///
/// # Errors
/// The sentence to show beside the password field.
pub fn check_new_password(password: &str, email: &str, name: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < PASSWORD_MIN_CHARS {
        return Err(format!(
            "Use at least {PASSWORD_MIN_CHARS} characters (this has {length})"
        ));
    }
    if length > PASSWORD_MAX_CHARS {
        return Err(format!(
            "Use at most {PASSWORD_MAX_CHARS} characters (this has {length})"
        ));
    }
    let lower = password.to_lowercase();
    if passwords::analyzer::is_common_password(password)
        || passwords::analyzer::is_common_password(&lower)
    {
        return Err(
            "This is one of the most commonly used passwords; choose one that is harder to guess"
                .into(),
        );
    }
    let email = email.trim().to_lowercase();
    let local_part = email.split('@').next().unwrap_or_default();
    let name = name.to_lowercase();
    let personal = [email.as_str(), local_part, name.trim()]
        .into_iter()
        .chain(name.split_whitespace())
        .filter(|part| part.chars().count() >= 4);
    for part in personal {
        if lower.contains(part) {
            return Err("Do not use your name or email address in your password".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleven_characters_are_too_few_and_twelve_are_enough() {
        let error =
            check_new_password("kx7!pq2#vbn", "a@b.org", "Ann Lee").expect_err("11 is too few");
        assert!(error.contains("at least 12"), "{error}");
        assert!(check_new_password("kx7!pq2#vbnm", "a@b.org", "Ann Lee").is_ok());
    }

    #[test]
    fn one_hundred_and_twenty_eight_characters_are_allowed_and_one_more_is_not() {
        let long = "xq".repeat(64);
        assert!(check_new_password(&long, "a@b.org", "Ann Lee").is_ok());
        let error =
            check_new_password(&format!("{long}z"), "a@b.org", "Ann Lee").expect_err("too long");
        assert!(error.contains("at most 128"), "{error}");
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for common in [
            "123456789012",
            "111122223333",
            "password1234",
            "PASSWORD1234",
        ] {
            let error = check_new_password(common, "a@b.org", "Ann Lee").expect_err(common);
            assert!(error.contains("commonly used"), "{common}: {error}");
        }
    }

    #[test]
    fn passwords_with_the_persons_email_or_name_are_refused() {
        for password in [
            "jane.doe@example.org!",
            "my-jane.doe-secret",
            "Kensington-rocks-99",
        ] {
            let error = check_new_password(password, "Jane.Doe@example.org", "Jane Kensington")
                .expect_err(password);
            assert!(error.contains("name or email"), "{password}: {error}");
        }
    }

    #[test]
    fn any_characters_count_including_non_ascii_and_spaces() {
        assert!(check_new_password("ça marche très bien", "a@b.org", "Ann Lee").is_ok());
        assert!(check_new_password("密码是一个很长的句子啊啊", "a@b.org", "Ann Lee").is_ok());
        // Twelve characters, more than twelve bytes: counted as characters.
        assert!(check_new_password("ééééééééééé", "a@b.org", "Ann Lee").is_err());
    }

    #[test]
    fn emails_are_checked_and_compared_without_case() {
        let email = Email::parse("  Jane.Doe@Example.org ").expect("valid");
        assert_eq!(email.as_str(), "Jane.Doe@Example.org");
        assert_eq!(email.key(), "jane.doe@example.org");
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.org",
            "a b@example.org",
            "a@b@c.org",
            "a@localhost",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_must_not_be_empty() {
        assert_eq!(
            DisplayName::parse("  Ann   Lee ").expect("valid").as_str(),
            "Ann Lee"
        );
        assert!(DisplayName::parse("   ").is_err());
    }
}
