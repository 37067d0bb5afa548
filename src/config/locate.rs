//! Maps a configuration path (`cameras[1].url`) to the line it was written on.
//!
//! serde tells us *what* is wrong but, once deserialised, the typed config no
//! longer knows *where* a value came from. Installers fix configs by line
//! number, so every problem we report is resolved against the span-preserving
//! `toml_edit` document of the same text.

use toml_edit::{Item, Table, Value};

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into the configuration, printed as `cameras[1].url`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigPath(pub Vec<Seg>);

impl ConfigPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        Self(v)
    }
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }
    /// Parses the dotted form used in tests and messages (`bays[2].polygon`).
    pub fn parse(s: &str) -> Self {
        let mut segs = Vec::new();
        for part in s.split('.') {
            let (name, rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !name.is_empty() {
                segs.push(Seg::Key(name.to_string()));
            }
            for idx in rest.split('[').filter(|x| !x.is_empty()) {
                if let Ok(i) = idx.trim_end_matches(']').parse() {
                    segs.push(Seg::Index(i));
                }
            }
        }
        Self(segs)
    }
}

impl std::fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for s in &self.0 {
            match s {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        if first {
            f.write_str("(top level)")?;
        }
        Ok(())
    }
}

/// Span index over the raw text.
pub struct Locator {
    doc: Option<toml_edit::Document<String>>,
    line_starts: Vec<usize>,
}

enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a Table),
}

impl Locator {
    pub fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        Self {
            doc: toml_edit::Document::parse(text.to_string()).ok(),
            line_starts,
        }
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// The line where `path` (or its closest existing ancestor) is written.
    pub fn line(&self, path: &ConfigPath) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut node = Node::Table(doc.as_table());
        let mut best: Option<usize> = None;
        for seg in &path.0 {
            let (next, span) = match (&node, seg) {
                (Node::Table(t), Seg::Key(k)) => match t.get_key_value(k) {
                    Some((key, item)) => (Node::Item(item), key.span().or_else(|| item.span())),
                    None => break,
                },
                (Node::Item(item), Seg::Key(k)) => {
                    match item.as_table_like().and_then(|t| t.get_key_value(k)) {
                        Some((key, item)) => (Node::Item(item), key.span().or_else(|| item.span())),
                        None => break,
                    }
                }
                (Node::Value(Value::InlineTable(t)), Seg::Key(k)) => match t.get_key_value(k) {
                    Some((key, item)) => (Node::Item(item), key.span().or_else(|| item.span())),
                    None => break,
                },
                (Node::Item(Item::ArrayOfTables(a)), Seg::Index(i)) => match a.get(*i) {
                    Some(t) => (Node::Table(t), t.span()),
                    None => break,
                },
                (Node::Item(Item::Value(Value::Array(a))), Seg::Index(i))
                | (Node::Value(Value::Array(a)), Seg::Index(i)) => match a.get(*i) {
                    Some(v) => (Node::Value(v), v.span()),
                    None => break,
                },
                _ => break,
            };
            if let Some(s) = span {
                best = Some(self.line_of(s.start));
            }
            node = next;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_in_arrays_of_tables_and_inline_values() {
        let text = "[site]\nname = \"x\"\n\n[[cameras]]\nid = \"a\"\n\n[[cameras]]\nid = \"b\"\nurl = \"rtsp://h\"\npolygon = [[1, 2],\n  [3, 4]]\n";
        let loc = Locator::new(text);
        assert_eq!(loc.line(&ConfigPath::parse("site.name")), Some(2));
        assert_eq!(loc.line(&ConfigPath::parse("cameras[1].url")), Some(9));
        assert_eq!(
            loc.line(&ConfigPath::parse("cameras[1].polygon[1]")),
            Some(11)
        );
        // A missing key resolves to its closest ancestor.
        assert_eq!(loc.line(&ConfigPath::parse("cameras[1].fps")), Some(7));
        assert_eq!(
            ConfigPath::parse("bays[2].polygon").to_string(),
            "bays[2].polygon"
        );
    }
}
