//! Placeholder: the data-structures issue fills this in.

#[derive(Clone, Debug, Default, PartialEq)]
pub struct List {}

impl List {
    pub fn len(&self) -> usize {
        0
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }
    /// Approximate heap bytes held (MEMORY USAGE).
    pub fn heap_size(&self) -> usize {
        0
    }
}
