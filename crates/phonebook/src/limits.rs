//! The limits of Phone Book Administrator and Phone Book Service (the
//! seed's "performance limitations and requirements").

/// Phone books can contain no more than 65,000 POPs.
pub const MAX_POPS: usize = 65_000;
/// An import into a phone book never published holds at most 32,000 POPs.
pub const MAX_FIRST_IMPORT: usize = 32_000;
/// After the first post, at most 6,000 POPs may be added, edited or
/// deleted (combined) for each post.
pub const MAX_CHANGES_PER_POST: usize = 6_000;
/// Phone books can be updated no more than 32,676 times.
pub const MAX_VERSION: u32 = 32_676;
/// Delta cabinets are made for the first five changes after a full one;
/// the sixth makes a full one again.
pub const DELTAS_BETWEEN_FULLS: u32 = 5;
/// A client at most this many versions behind gets a delta.
pub const MAX_DELTA_DISTANCE: u32 = 4;
