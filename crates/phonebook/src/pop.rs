//! A point of presence (POP): one line of a phone book.
//!
//! MS-CPSP §2.1 lists the eleven fields of a POP entry; [`PopFlags`] holds
//! the POP Flag bits with their mixed polarity (some bits say "has the
//! property" when set, others when clear).

/// MS-CPSP §2.1: the longest POP Name.
pub const MAX_NAME: usize = 31;
/// MS-CPSP §2.1: the longest Area Code.
pub const MAX_AREA_CODE: usize = 11;
/// MS-CPSP §2.1: the longest Access Number.
pub const MAX_ACCESS_NUMBER: usize = 41;
/// MS-CPSP §2.1: the longest Dialup Networking Name.
pub const MAX_DUN_NAME: usize = 50;

/// One POP entry (MS-CPSP §2.1), plus the administrator's in-service
/// status, which is not part of the published line: only in-service POPs
/// are published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pop {
    /// POP Index: the administrator's key of the POP (0 when absent).
    pub index: u32,
    /// Country Code (MS-CPSP calls it E.164; PBA stores the TAPI
    /// country/region id, which for most countries is the same number).
    pub country: u32,
    /// Region Id: 1-based index into the region file, 0 = all regions.
    pub region: u32,
    /// POP Name, at most [`MAX_NAME`] characters, no comma.
    pub name: String,
    /// Area Code: digits only, at most [`MAX_AREA_CODE`].
    pub area_code: String,
    /// Access Number: digits plus `#`, `*`, `-` and space, at most
    /// [`MAX_ACCESS_NUMBER`].
    pub access_number: String,
    /// Minimum analog speed.
    pub min_speed: u32,
    /// Maximum analog speed.
    pub max_speed: u32,
    /// Reserved Flag (kept as read, written back unchanged).
    pub reserved: u32,
    /// POP Flag.
    pub flags: PopFlags,
    /// Dialup Networking Name, at most [`MAX_DUN_NAME`] characters.
    pub dun_name: String,
}

/// The POP Flag field (MS-CPSP §2.1), as the raw decimal value of the file.
///
/// The polarity is mixed: bits 0 (sign-on), 2 (modem), 3 (ISDN) and 5
/// (multicast) mean "yes" when CLEAR; bits 1 (sign-up) and 6 (surcharge)
/// mean "yes" when SET. Bits 4 and 7 are Custom1/Custom2 (reserved). So
/// the spec's example value 96 (bits 5 and 6) is sign-on + modem + ISDN +
/// surcharge, without multicast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PopFlags(pub u32);

impl PopFlags {
    /// Bit 0, "Not Sign On" when set.
    pub const NOT_SIGN_ON: u32 = 0x01;
    /// Bit 1, "Sign Up" when set.
    pub const SIGN_UP: u32 = 0x02;
    /// Bit 2, "Not Modem" when set.
    pub const NOT_MODEM: u32 = 0x04;
    /// Bit 3, "Not ISDN" when set.
    pub const NOT_ISDN: u32 = 0x08;
    /// Bit 4, Custom 1 (reserved).
    pub const CUSTOM1: u32 = 0x10;
    /// Bit 5, "Not Multicast" when set.
    pub const NOT_MULTICAST: u32 = 0x20;
    /// Bit 6, "Surcharge" when set.
    pub const SURCHARGE: u32 = 0x40;
    /// Bit 7, Custom 2 (reserved, must be zero).
    pub const CUSTOM2: u32 = 0x80;

    /// Builds the flag word from the properties, in the file's polarity.
    pub fn from_properties(p: PopProperties) -> PopFlags {
        let mut v = 0;
        if !p.sign_on {
            v |= Self::NOT_SIGN_ON;
        }
        if p.sign_up {
            v |= Self::SIGN_UP;
        }
        if !p.modem {
            v |= Self::NOT_MODEM;
        }
        if !p.isdn {
            v |= Self::NOT_ISDN;
        }
        if !p.multicast {
            v |= Self::NOT_MULTICAST;
        }
        if p.surcharge {
            v |= Self::SURCHARGE;
        }
        PopFlags(v)
    }

    /// The properties this flag word says the POP has.
    pub fn properties(self) -> PopProperties {
        let set = |bit: u32| self.0 & bit != 0;
        PopProperties {
            sign_on: !set(Self::NOT_SIGN_ON),
            sign_up: set(Self::SIGN_UP),
            modem: !set(Self::NOT_MODEM),
            isdn: !set(Self::NOT_ISDN),
            multicast: !set(Self::NOT_MULTICAST),
            surcharge: set(Self::SURCHARGE),
        }
    }

    /// MS-CPSP §2.1: "Sign on ... MUST be zero. Otherwise, this POP entry
    /// MUST be ignored."
    pub fn is_usable(self) -> bool {
        self.0 & Self::NOT_SIGN_ON == 0
    }
}

/// The POP Flag properties in plain "has it" form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PopProperties {
    pub sign_on: bool,
    pub sign_up: bool,
    pub modem: bool,
    pub isdn: bool,
    pub multicast: bool,
    pub surcharge: bool,
}
