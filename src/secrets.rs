//! Passwords and ids from the operating system's CSPRNG.

use rand::rngs::OsRng;
use rand::Rng;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// 32 alphanumeric characters (about 190 bits). Alphanumeric only, so the
/// value needs no quoting in .env, YAML, a URL or a shell.
pub fn password() -> String {
    let mut rng = OsRng;
    (0..32)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `db_` + 8 hex digits.
pub fn instance_id() -> String {
    format!("db_{:08x}", OsRng.gen::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_alphanumeric_and_differ() {
        let a = password();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, password());
    }

    #[test]
    fn ids_have_the_documented_shape() {
        let id = instance_id();
        assert_eq!(id.len(), 11);
        assert!(id.starts_with("db_"));
        assert!(id[3..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
