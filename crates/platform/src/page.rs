//! Keyset paging for list RPCs: a page is the rows after a cursor (the last id of the page
//! before), in id order, at most `limit` of them. The cursor travels as an opaque token;
//! a list's answer carries the next one, empty on the last page.

use base64::Engine as _;

/// Rows a page holds when the caller names no limit.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most rows one page may hold.
pub const MAX_LIMIT: u32 = 1000;

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const PREFIX: &str = "after:";

/// A batch of ids a list is asked for: at most [`MAX_LIMIT`], else refused naming the
/// field.
pub fn check_batch<T>(ids: &[T]) -> Result<(), (&'static str, String)> {
    if ids.len() > usize::try_from(MAX_LIMIT).unwrap_or(usize::MAX) {
        return Err(("ids", format!("at most {MAX_LIMIT} ids at once")));
    }
    Ok(())
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows with an id above this one.
    pub after: i64,
    pub limit: u32,
}

impl Page {
    /// The page a request asks for: `limit` 0 is [`DEFAULT_LIMIT`]; more than [`MAX_LIMIT`]
    /// or a token this module did not make is refused, naming the field.
    pub fn parse(limit: u32, token: &str) -> Result<Self, (&'static str, String)> {
        let limit = match limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => {
                return Err(("limit", format!("limit must be at most {MAX_LIMIT}")));
            }
            n => n,
        };
        let after = if token.is_empty() {
            0
        } else {
            ENGINE
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| text.strip_prefix(PREFIX)?.parse::<i64>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| {
                    (
                        "page_token",
                        "page_token is not one this service gave".into(),
                    )
                })?
        };
        Ok(Self { after, limit })
    }

    /// Rows to fetch: one more than the page, to learn whether another follows.
    pub fn fetch(self) -> u64 {
        u64::from(self.limit) + 1
    }

    /// Trims what was fetched to the page and gives the next page's token ("" when this is
    /// the last page). `id` reads a row's id.
    pub fn finish<T>(self, mut rows: Vec<T>, id: impl Fn(&T) -> i64) -> (Vec<T>, String) {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        if rows.len() <= limit {
            return (rows, String::new());
        }
        rows.truncate(limit);
        let token = rows
            .last()
            .map(|last| ENGINE.encode(format!("{PREFIX}{}", id(last))))
            .unwrap_or_default();
        (rows, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_one_another_to_the_end() {
        let rows: Vec<i64> = (1..=25).collect();
        let mut page = Page::parse(10, "").expect("first page");
        let mut seen = Vec::new();
        loop {
            let fetched: Vec<i64> = rows
                .iter()
                .copied()
                .filter(|id| *id > page.after)
                .take(usize::try_from(page.fetch()).expect("small"))
                .collect();
            let (got, next) = page.finish(fetched, |id| *id);
            seen.extend(got);
            if next.is_empty() {
                break;
            }
            page = Page::parse(10, &next).expect("next page");
        }
        assert_eq!(seen, rows);
    }

    #[test]
    fn limits_and_tokens_are_checked() {
        assert_eq!(Page::parse(0, "").expect("default").limit, DEFAULT_LIMIT);
        assert_eq!(
            Page::parse(MAX_LIMIT + 1, "").expect_err("too many").0,
            "limit"
        );
        assert_eq!(
            Page::parse(10, "bogus").expect_err("garbage").0,
            "page_token"
        );
        let forged = ENGINE.encode("after:-5");
        assert_eq!(
            Page::parse(10, &forged).expect_err("negative").0,
            "page_token"
        );
        assert!(check_batch(&[0u8; 1000]).is_ok());
        assert_eq!(check_batch(&[0u8; 1001]).expect_err("too many").0, "ids");
    }
}
