//! From source text to the paths it names: comments and literals blanked, tokens,
//! `#[cfg(test)]` items dropped, `use` trees expanded.

/// Every path in `source` that may lead into the crate, outside `#[cfg(test)]` items, and
/// the names of `#[cfg(test)] mod name;` children (whose files are test code too).
pub fn read_paths(source: &str) -> (Vec<NamedPath>, Vec<String>) {
    let (toks, test_children) = without_test_items(tokens(&blank_comments_and_literals(source)));
    (named_paths(&toks), test_children)
}

/// A path as written (`["super", "store", "Store"]`), the line of its last segment, and for
/// a `use` leaf the name it brings into scope (`B` in `use a::B`, `C` in `use a::B as C`).
#[derive(Debug, Clone)]
pub struct NamedPath {
    pub segments: Vec<String>,
    pub line: usize,
    pub binds: Option<String>,
}

#[derive(Debug, Clone)]
struct Token {
    text: String,
    line: usize,
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The text with comments and string and char literals turned into spaces. Newlines stay,
/// so line numbers still match the file.
fn blank_comments_and_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        match comment_or_literal_end(&chars, i) {
            Some(end) => {
                for c in &mut out[i..end] {
                    if *c != '\n' {
                        *c = ' ';
                    }
                }
                i = end;
            }
            None => i += 1,
        }
    }
    out.into_iter().collect()
}

/// If a comment or a literal starts at `i`, the index just past its end.
fn comment_or_literal_end(s: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| s.get(k).copied().unwrap_or('\0');
    let starts_word = |k: usize| k == 0 || !is_ident_char(s[k - 1]);
    match (at(i), at(i + 1)) {
        ('/', '/') => Some(position_from(s, i, '\n').unwrap_or(s.len())),
        ('/', '*') => Some(block_comment_end(s, i)),
        ('"', _) => Some(string_end(s, i + 1)),
        ('\'', '\\') => position_from(s, i + 3, '\'').map(|end| end + 1),
        ('\'', _) if at(i + 2) == '\'' => Some(i + 3),
        ('r', '#' | '"')
            if starts_word(i)
                || (matches!(at(i.wrapping_sub(1)), 'b' | 'c') && starts_word(i - 1)) =>
        {
            raw_string_end(s, i + 1)
        }
        _ => None,
    }
}

fn position_from(s: &[char], from: usize, wanted: char) -> Option<usize> {
    (from..s.len()).find(|&k| s[k] == wanted)
}

fn block_comment_end(s: &[char], start: usize) -> usize {
    let (mut depth, mut i) = (0, start);
    while i + 1 < s.len() {
        match (s[i], s[i + 1]) {
            ('/', '*') => (depth, i) = (depth + 1, i + 2),
            ('*', '/') if depth == 1 => return i + 2,
            ('*', '/') => (depth, i) = (depth - 1, i + 2),
            _ => i += 1,
        }
    }
    s.len()
}

fn string_end(s: &[char], mut i: usize) -> usize {
    while i < s.len() {
        match s[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    s.len()
}

/// `r#"..."#` from just after the `r`; `None` for a raw identifier such as `r#type`.
fn raw_string_end(s: &[char], after_r: usize) -> Option<usize> {
    let hashes = (after_r..s.len()).take_while(|&k| s[k] == '#').count();
    let open = after_r + hashes;
    if s.get(open) != Some(&'"') {
        return None;
    }
    let closes = |k: usize| s[k] == '"' && (1..=hashes).all(|h| s.get(k + h) == Some(&'#'));
    Some(
        (open + 1..s.len())
            .find(|&k| closes(k))
            .map_or(s.len(), |k| k + 1 + hashes),
    )
}

/// Identifiers, `::`, and single punctuation characters, each with its line.
fn tokens(code: &str) -> Vec<Token> {
    let mut out = Vec::new();
    for (index, line) in code.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let start = i;
            if is_ident_char(chars[i]) {
                i += (i..chars.len())
                    .take_while(|&k| is_ident_char(chars[k]))
                    .count();
            } else if chars[i] == ':' && chars.get(i + 1) == Some(&':') {
                i += 2;
            } else {
                i += 1;
            }
            if !chars[start].is_whitespace() {
                let text = chars[start..i].iter().collect();
                out.push(Token {
                    text,
                    line: index + 1,
                });
            }
        }
    }
    out
}

const ITEM_KEYWORDS: &[&str] = &[
    "mod",
    "use",
    "fn",
    "impl",
    "const",
    "static",
    "struct",
    "enum",
    "type",
    "trait",
    "macro_rules",
    "async",
    "unsafe",
    "extern",
];

fn text_at(toks: &[Token], i: usize) -> &str {
    toks.get(i).map_or("", |tok| tok.text.as_str())
}

fn is_cfg_test(toks: &[Token], i: usize) -> bool {
    ["#", "[", "cfg", "(", "test", ")", "]"]
        .iter()
        .enumerate()
        .all(|(k, want)| text_at(toks, i + k) == *want)
}

/// Index just past the bracket that closes the one opening at `open`.
fn after_matching(toks: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, tok) in toks.iter().enumerate().skip(open) {
        match tok.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// Index just past the item starting at `i`: its `;` or its closing `}`.
fn item_end(toks: &[Token], i: usize) -> usize {
    let mut k = i;
    while k < toks.len() {
        match text_at(toks, k) {
            ";" => return k + 1,
            "{" => return after_matching(toks, k),
            "(" | "[" => k = after_matching(toks, k),
            _ => k += 1,
        }
    }
    toks.len()
}

/// The tokens outside `#[cfg(test)]` items, and the names of `#[cfg(test)] mod name;`
/// children, whose files are test code too.
fn without_test_items(toks: Vec<Token>) -> (Vec<Token>, Vec<String>) {
    let (mut kept, mut test_children) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < toks.len() {
        if !is_cfg_test(&toks, i) {
            kept.push(toks[i].clone());
            i += 1;
            continue;
        }
        let mut item = i + 7;
        while text_at(&toks, item) == "#" {
            item = after_matching(&toks, item + 1);
        }
        let mut keyword = item;
        if text_at(&toks, keyword) == "pub" {
            keyword += 1;
            if text_at(&toks, keyword) == "(" {
                keyword = after_matching(&toks, keyword);
            }
        }
        if !ITEM_KEYWORDS.contains(&text_at(&toks, keyword)) {
            kept.push(toks[i].clone());
            i += 1;
            continue;
        }
        if text_at(&toks, keyword) == "mod" && text_at(&toks, keyword + 2) == ";" {
            test_children.push(text_at(&toks, keyword + 1).to_string());
        }
        i = item_end(&toks, keyword);
    }
    (kept, test_children)
}

fn is_ident(text: &str) -> bool {
    text.chars().next().is_some_and(is_ident_char)
}

/// Every path the code names that may lead into the crate: each leaf of every `use` tree,
/// and inline paths starting with `crate`, `super` or `self`.
fn named_paths(toks: &[Token]) -> Vec<NamedPath> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let before = |back: usize| i.checked_sub(back).map_or("", |k| toks[k].text.as_str());
        let text = toks[i].text.as_str();
        if text == "use" && before(1) != "::" {
            i += 1;
            use_tree(toks, &mut i, Vec::new(), &mut out);
        } else if matches!(text, "crate" | "super" | "self")
            && text_at(toks, i + 1) == "::"
            && !matches!(before(1), "::" | "$" | ".")
            && !(before(1) == "in" && before(2) == "(")
        {
            let mut path = vec![text.to_string()];
            let mut line = toks[i].line;
            i += 1;
            while text_at(toks, i) == "::" && is_ident(text_at(toks, i + 1)) {
                path.push(toks[i + 1].text.clone());
                line = toks[i + 1].line;
                i += 2;
            }
            out.push(NamedPath {
                segments: path,
                line,
                binds: None,
            });
        } else {
            i += 1;
        }
    }
    out
}

/// One use tree from `*i`: `a::b`, `a::{…}`, `a::*`, `a as b`.
fn use_tree(toks: &[Token], i: &mut usize, mut path: Vec<String>, out: &mut Vec<NamedPath>) {
    let mut line = toks.get(*i).map_or(0, |tok| tok.line);
    let mut alias = None;
    while let Some(tok) = toks.get(*i) {
        match tok.text.as_str() {
            "::" if path.is_empty() => {
                // `use ::name` is always another crate.
                path.push("::".to_string());
                *i += 1;
            }
            "::" => *i += 1,
            "{" => {
                *i += 1;
                use_group(toks, i, &path, out);
                return;
            }
            "*" => {
                *i += 1;
                let line = tok.line;
                out.push(NamedPath {
                    segments: path,
                    line,
                    binds: None,
                });
                return;
            }
            "as" => {
                alias = toks.get(*i + 1).map(|tok| tok.text.clone());
                *i += 2;
            }
            "," | "}" | ";" => break,
            segment => {
                path.push(segment.to_string());
                line = tok.line;
                *i += 1;
            }
        }
    }
    if path.is_empty() {
        return;
    }
    // `use a::b::{self}` binds `b`; `use a::B as _` binds nothing.
    let named = path
        .iter()
        .rev()
        .find(|segment| *segment != "self")
        .cloned();
    let binds = alias.or(named).filter(|name| name != "_");
    out.push(NamedPath {
        segments: path,
        line,
        binds,
    });
}

/// The trees of a `{…}` group, up to and including its `}`.
fn use_group(toks: &[Token], i: &mut usize, prefix: &[String], out: &mut Vec<NamedPath>) {
    loop {
        match text_at(toks, *i) {
            "}" => {
                *i += 1;
                return;
            }
            "," => *i += 1,
            ";" | "" => return,
            _ => use_tree(toks, i, prefix.to_vec(), out),
        }
    }
}
