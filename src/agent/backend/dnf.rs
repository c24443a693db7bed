//! Placeholder; filled in by the backend work.
