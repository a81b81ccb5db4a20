//! Making helpdesk text safe and short for Slack: escaping of Slack's
//! control characters, removal of control and bidi-override characters, and
//! cutting to a length in characters (never bytes, never inside an entity).
//! Layout lives in [`super::message`].

/// Bidirectional overrides and isolates: they can make a name or comment
/// display as something else (and reverse the text around it).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// One line: control characters become spaces (a newline could start a
/// mrkdwn `>` quote or break the field layout), bidi controls go, runs of
/// whitespace collapse.
pub fn clean_inline(text: &str) -> String {
    let spaced: String = text
        .chars()
        .filter(|c| !is_bidi_control(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Multi-line text (a comment): keeps newlines, drops other controls.
pub fn clean_block(text: &str) -> String {
    text.trim()
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| !is_bidi_control(*c) && (!c.is_control() || *c == '\n' || *c == '\t'))
        .collect()
}

/// `text` cut to at most `max` characters, ending in "…" when cut. Counts
/// characters, not bytes, so it never splits one.
pub fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` with Slack's control characters `&`, `<`, `>` escaped, cut to at
/// most `max` characters after escaping (never inside an `&amp;`).
pub fn fit_escaped(text: &str, max: usize) -> String {
    let escaped = escape(text);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let budget = max.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let piece = escape(c.encode_utf8(&mut [0; 4]));
        let n = piece.chars().count();
        if used + n > budget {
            break;
        }
        out.push_str(&piece);
        used += n;
    }
    out.push('…');
    out
}

/// Escapes `&`, `<` and `>` (in that order) and nothing else: Slack decodes
/// only these three, so `'` as `&#39;` would show literally.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_counts_characters_and_never_splits_an_entity() {
        assert_eq!(fit("ééé", 3), "ééé");
        assert_eq!(fit("éééé", 3), "éé…");
        assert_eq!(fit_escaped("a<b", 4), "a…");
        assert_eq!(fit_escaped("a<b", 6), "a&lt;b");
        assert_eq!(escape("&lt;<>"), "&amp;lt;&lt;&gt;");
    }

    #[test]
    fn cleaning_drops_bidi_overrides_and_flattens_lines() {
        assert_eq!(clean_inline(" a\u{202E}b\n> c\t "), "ab > c");
        assert_eq!(clean_block("x\r\ny\u{2066}\u{0}"), "x\ny");
    }
}
