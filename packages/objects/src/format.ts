/**
 * The on-file layout of @persist/objects (FORMAT.md, "## Objects"). Every number here
 * is part of the file format: changing one means bumping OBJECTS_VERSION.
 *
 * All integers little-endian; every reference is a byte offset from the file start
 * (a heap block returned by @persist/heap, 16-byte aligned).
 */

/** Version of the objects layer's layout, stored in the meta block (om_version). */
export const OBJECTS_VERSION = 1

// ---- value slots (16 bytes) ---------------------------------------------------
// byte 0 is the tag; the rest is the payload described per tag in FORMAT.md.
export const SLOT = 16
export const T_UNDEF = 0 // undefined (an all-zero slot)
export const T_NULL = 1
export const T_FALSE = 2
export const T_TRUE = 3
export const T_INT = 4 // int64 at +8 (a safe integer; -0 is a float)
export const T_FLOAT = 5 // float64 at +8
export const T_BIGINT = 6 // bigint that fits int64, at +8
export const T_DATE = 7 // float64 ms since the epoch at +8 (NaN = invalid date)
export const T_SSTR = 8 // short latin1 string: u8 length (0..14) at +1, bytes at +2
export const T_SSTR16 = 9 // short UTF-16 string: u8 length in code units (0..7) at +1, UTF-16LE at +2
export const T_STR = 10 // owned string block: u8 encoding at +1, u32 byte length at +4, u64 block at +8
export const T_BYTES = 11 // owned byte block: u8 subtype at +1, u32 byte length at +4, u64 block (0 if empty) at +8
export const T_BIGREC = 12 // owned bigint magnitude: u8 sign at +1, u32 byte length at +4, u64 block at +8
export const T_REF = 13 // shared record: u8 record type at +1, u64 record offset at +8
export const T_MAX = 13
/** Key tag of a deleted dict entry (tombstone); never a value tag. */
export const T_DELETED = 0xff

export const ENC_LATIN1 = 0
export const ENC_UTF16 = 1
export const SSTR_MAX = 14 // latin1 bytes inline
export const SSTR16_MAX = 7 // UTF-16 code units inline

// ---- records ------------------------------------------------------------------
// Header, 16 bytes, common to dicts, lists and objects:
//   +0 u8 rc_type   +1 u8 rc_flags (0)   +2 u16 reserved (0)
//   +4 u32 rc_gen   +8 u32 rc_refs       +12 u32 rc_check = rc_gen ^ (off / 16) ^ CHECK_SALT
export const R_DICT = 1
export const R_LIST = 2
export const R_OBJECT = 3
export const RC_TYPE = 0
export const RC_GEN = 4
export const RC_REFS = 8
export const RC_CHECK = 12
export const CHECK_SALT = 0x5e11ab1e

// Dict / object record, 64 bytes:
export const DC_COUNT = 16 // u32 live entries
export const DC_USED = 20 // u32 entries used, tombstones included (next free entry index)
export const DC_CAP = 24 // u32 entry capacity (power of two, or 0 = no blocks yet)
export const DC_NBUCKETS = 28 // u32 index buckets = 2 * capacity (0 = no blocks yet)
export const DC_ENTRIES = 32 // u64 entries block: capacity * 32 bytes
export const DC_INDEX = 40 // u64 index block: nbuckets * 8 bytes
export const DC_CLASS = 48 // 16-byte string slot: the class name of an object record (T_UNDEF for dicts)
export const DICT_SIZE = 64
export const ENTRY = 32 // key slot (16) + value slot (16)
export const BUCKET = 8 // u32 ref (0 empty, EMPTY_DUMMY deleted, else entry index + 1), u32 hash
export const DUMMY = 0xffffffff

// List record, 32 bytes:
export const LS_LEN = 16 // u32 length
export const LS_CAP = 20 // u32 capacity in slots
export const LS_ITEMS = 24 // u64 items block: capacity * 16 bytes (0 when capacity is 0)
export const LIST_SIZE = 32

// Objects meta, 64 bytes, offset in heap root slot 0:
export const OM_MAGIC = 0 // 8 bytes "PRSTOBJS"
export const OM_VERSION = 8 // u32 OBJECTS_VERSION
export const OM_FLAGS = 12 // u32 0
export const OM_ROOT = 16 // u64 root dict record
export const OM_NEXT_GEN = 24 // u32 next generation to hand out (starts at 1; never 0)
export const META_SIZE = 64
export const META_MAGIC = 'PRSTOBJS'

/** Subtypes of T_BYTES: which class a byte value is read back as. */
export const BYTES_CLASSES = [
  'Uint8Array',
  'Int8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'ArrayBuffer',
  'DataView',
  'Buffer',
] as const
