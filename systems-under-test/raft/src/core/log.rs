//! The in-memory replicated log: a snapshot boundary followed by entries without gaps.

use super::types::{Entry, LogIndex, Snapshot, Term};

#[derive(Clone, Debug, Default)]
pub struct Log {
    /// Index and term of the last entry folded into the snapshot (0 and term 0 when none).
    snapshot_index: LogIndex,
    snapshot_term: Term,
    entries: Vec<Entry>,
}

impl Log {
    pub fn restore(snapshot: Option<&Snapshot>, entries: Vec<Entry>) -> Log {
        let (snapshot_index, snapshot_term) =
            snapshot.map_or((0, Term(0)), |s| (s.last_index, s.last_term));
        // Stored entries may start before the snapshot if the process died between writing
        // the snapshot and compacting the log; those are covered by the snapshot.
        let entries: Vec<Entry> = entries
            .into_iter()
            .filter(|e| e.index > snapshot_index)
            .collect();
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(
                e.index,
                snapshot_index + 1 + i as u64,
                "stored log has a gap (storage must return contiguous entries)"
            );
        }
        Log {
            snapshot_index,
            snapshot_term,
            entries,
        }
    }

    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    pub fn snapshot_term(&self) -> Term {
        self.snapshot_term
    }

    pub fn last_index(&self) -> LogIndex {
        self.snapshot_index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot_term, |e| e.term)
    }

    /// The term of the entry at `index`, if it is known (in the log or the snapshot boundary).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.get(index).map(|e| e.term)
    }

    pub fn get(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        self.entries.get((index - self.snapshot_index - 1) as usize)
    }

    /// Entries `from..=to`, at most `max` of them; `from` must be after the snapshot.
    pub fn slice(&self, from: LogIndex, to: LogIndex, max: usize) -> Vec<Entry> {
        if from > to || from <= self.snapshot_index {
            return Vec::new();
        }
        let start = (from - self.snapshot_index - 1) as usize;
        let end = ((to - self.snapshot_index) as usize).min(self.entries.len());
        let end = end.min(start.saturating_add(max));
        self.entries
            .get(start..end)
            .map_or_else(Vec::new, <[Entry]>::to_vec)
    }

    /// Like `slice`, but also stops once the entries' data reaches `max_bytes` (always at
    /// least one entry), so one message never grows past what a peer accepts.
    pub fn slice_bytes(
        &self,
        from: LogIndex,
        to: LogIndex,
        max: usize,
        max_bytes: usize,
    ) -> Vec<Entry> {
        let mut out = self.slice(from, to, max);
        let mut bytes = 0usize;
        let mut keep = 0;
        for e in &out {
            if keep > 0 && bytes + e.data.len() > max_bytes {
                break;
            }
            bytes += e.data.len();
            keep += 1;
        }
        out.truncate(keep);
        out
    }

    /// Entries from `from` to the end.
    pub fn tail(&self, from: LogIndex) -> &[Entry] {
        let start = from.saturating_sub(self.snapshot_index + 1) as usize;
        self.entries.get(start..).unwrap_or(&[])
    }

    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.entries.push(entry);
    }

    /// Drops every entry at or after `index`.
    pub fn truncate_from(&mut self, index: LogIndex) {
        debug_assert!(index > self.snapshot_index);
        let keep = (index - self.snapshot_index - 1) as usize;
        self.entries.truncate(keep);
    }

    /// The first index of the run of entries with the same term as the entry at `index`,
    /// going back no further than the snapshot.
    pub fn first_index_of_term_at(&self, index: LogIndex) -> LogIndex {
        let Some(term) = self.term_at(index) else {
            return index;
        };
        let mut i = index;
        while i > self.snapshot_index + 1 && self.term_at(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// The last index holding an entry of `term`, if the log has one.
    pub fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        // Terms only grow along the log, so search from the end.
        self.entries
            .iter()
            .rev()
            .find(|e| e.term <= term)
            .filter(|e| e.term == term)
            .map(|e| e.index)
    }

    /// Folds every entry up to `index` into a snapshot boundary.
    pub fn compact(&mut self, index: LogIndex, term: Term) {
        if index <= self.snapshot_index {
            return;
        }
        let drop = ((index - self.snapshot_index) as usize).min(self.entries.len());
        self.entries.drain(..drop);
        self.snapshot_index = index;
        self.snapshot_term = term;
    }

    /// Replaces the whole log by a snapshot boundary (the log did not contain its last entry).
    pub fn reset(&mut self, index: LogIndex, term: Term) {
        self.entries.clear();
        self.snapshot_index = index;
        self.snapshot_term = term;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(term: u64, index: u64) -> Entry {
        Entry {
            term: Term(term),
            index,
            data: vec![],
        }
    }

    #[test]
    fn terms_slices_and_compaction() {
        let mut log = Log::default();
        for (i, t) in [1, 1, 2, 2, 2, 4].iter().enumerate() {
            log.push(e(*t, i as u64 + 1));
        }
        assert_eq!(log.last_index(), 6);
        assert_eq!(log.term_at(0), Some(Term(0)));
        assert_eq!(log.term_at(7), None);
        assert_eq!(log.first_index_of_term_at(5), 3);
        assert_eq!(log.last_index_of_term(Term(2)), Some(5));
        assert_eq!(log.last_index_of_term(Term(3)), None);
        assert_eq!(log.slice(2, 6, 2).len(), 2);
        log.compact(4, Term(2));
        assert_eq!(log.term_at(4), Some(Term(2)));
        assert_eq!(log.get(4), None);
        assert_eq!(log.first_index_of_term_at(5), 5);
        assert_eq!(log.tail(5).len(), 2);
        log.truncate_from(6);
        assert_eq!(log.last_index(), 5);
        assert_eq!(log.last_term(), Term(2));
    }
}
