/*
 * persist_format.h — the on-file format of a persist store, as C structs and constants.
 *
 * This header is the single source of truth for the layout: the native code of
 * @persist/pager and @persist/heap includes it, FORMAT.md at the repository root
 * describes the same bytes in prose tables, and every offset below is checked with
 * static_assert so the two cannot drift. A C, C++, Rust (bindgen) or Python (ctypes)
 * program can include it to read a store. Plain C99; no dependencies.
 *
 * Conventions: all integers little-endian; every reference to another place in the
 * file is a byte offset (or a page number) from the start of the file — never a
 * pointer — so the file can be mapped at any address. Pages are 4096 bytes.
 *
 * Field prefixes (grep-friendly, LMDB style):
 *   hd_  store header (page 0)          lk_  lock area inside the header
 *   jc_  journal chunk header           je_  journal entry
 *   hp_  heap meta page                 sl_  slab page header
 *   lg_  large-block header
 */
#ifndef PERSIST_FORMAT_H
#define PERSIST_FORMAT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- store-wide constants ---------------------------------------------- */

#define PST_PAGE_SIZE 4096u
#define PST_PAGE_SHIFT 12u
/* Bump when the meaning of any byte changes. Readers refuse a newer version
 * (PERSIST_VERSION). The lock-area format has its own version (PST_LOCK_FORMAT). */
#define PST_FORMAT_VERSION 1u
/* Lock format 4: group commit of durability 'full' (pst_wal_lock at page 0 offset
 * PST_WAL_LOCK_OFFSET; lk_wal_flags bit 1); 3 added the sync wake-up word and the
 * group-gathering fields (wl_sync_seq, wl_records..); 4 the sleepers' bit in
 * wl_sync_seq (PST_SYNC_WAITERS). A process whose lock format differs refuses to join a
 * store that others have open (PERSIST_VERSION); the first opener re-initialises the
 * lock area. */
#define PST_LOCK_FORMAT 4u
/* wl_sync_seq bit 31: set by a process about to sleep on the word; the sync leader
 * clears it with its increment of the low 31 bits and wakes only if it was set. */
#define PST_SYNC_WAITERS 0x80000000u
/* Written little-endian; read back on a big-endian machine it shows as 0x0D0C0B0A. */
#define PST_ENDIAN_MARK 0x0A0B0C0Du
/* The 8 magic bytes "\x89PERSIST": a high byte first (catches 7-bit transfers),
 * then ASCII. As a little-endian u64 this is PST_MAGIC_U64. */
#define PST_MAGIC_BYTES "\x89PERSIST"
#define PST_MAGIC_U64 0x5453495352455089ull

#define PST_SLOT_COUNT 8u /* u64 slots for the layers above the pager */

/* Page map: fixed-position bitmap chunks. Chunk k covers pages
 * [k*PST_MAP_SPAN, (k+1)*PST_MAP_SPAN) and lives at page PST_MAP_PAGE(k): page 1 for
 * k = 0, else the first page of its own range. A chunk is PST_MAP_CHUNK_PAGES pages:
 * the first half holds one "allocated" bit per page, the second half one
 * "run start" bit per page (bit i of byte j = page j*8+i of the range). */
#define PST_MAP_CHUNK_PAGES 16u
#define PST_MAP_SPAN (PST_MAP_CHUNK_PAGES * PST_PAGE_SIZE / 2u * 8u) /* 262144 pages = 1 GiB */
#define PST_MAP_PAGE(k) ((k) == 0 ? 1ull : (uint64_t)(k) * PST_MAP_SPAN)

/* Journal: a chain of chunks; the first chunk is created with the store and never freed. */
#define PST_JOURNAL_CHUNK_PAGES 16u
#define PST_JOURNAL_MAGIC 0x4B4E4843524E524Aull /* "JRNLCHNK" */
/* je_off of the END marker: an entry header with je_len 0 and this je_off follows the
 * last entry of the transaction (FORMAT.md, journal). je_len 0 with another je_off means
 * "continue at jc_next". */
#define PST_JOURNAL_END 0xFFFFFFFFFFFFFFFFull

/* Layout of a freshly created store: header, map chunk 0, journal chunk 0. */
#define PST_FIRST_JOURNAL_PAGE (1u + PST_MAP_CHUNK_PAGES)
#define PST_INITIAL_PAGES (PST_FIRST_JOURNAL_PAGE + PST_JOURNAL_CHUNK_PAGES)

/* ---- page 0: the store header ----------------------------------------- */

/* The lock area. lk_mutex is a process-shared, robust pthread mutex (glibc x86-64:
 * 40 bytes) serialising every transaction of every process. It is re-initialised
 * only by a first opener holding an exclusive OFD lock on byte 0 of the file. */
typedef struct pst_lock {
  uint32_t lk_format;      /* PST_LOCK_FORMAT */
  uint32_t lk_pad;
  uint64_t lk_owner_pid;   /* pid of the current holder (diagnostics only; 0 = none) */
  uint8_t lk_mutex[64];    /* pthread_mutex_t, padded */
  uint32_t lk_commit_seq;  /* low 32 bits of hd_txid: futex word for change watchers */
  uint32_t lk_watchers;    /* number of processes waiting on lk_commit_seq */
  uint32_t lk_mode;        /* durability of every opener: 0 unset (= process), 1 process, 2 full */
  uint32_t lk_wal_flags;   /* full mode: bit 0 PST_WAL_REPLAY_NEEDED while the log holds records
                            * the store file lacks (lk_wal_end > wl_applied: a foreign reader
                            * must replay or refuse); bit 1 PST_WAL_RECOVER after a failed log
                            * sync or store write (the next begin() replays the whole log) */
  uint64_t lk_wal_epoch;   /* full mode: current epoch of the write-ahead log */
  uint64_t lk_wal_end;     /* full mode: byte offset in the log where the next record goes
                            * ("written" end: every record below it is completely written) */
  uint8_t lk_reserved[24];
} pst_lock;

#define PST_MODE_PROCESS 1u
#define PST_MODE_FULL 2u
#define PST_WAL_REPLAY_NEEDED 1u
#define PST_WAL_RECOVER 2u

/* Group commit of durability 'full' (lock format 3): shared state of the log at byte
 * PST_WAL_LOCK_OFFSET of page 0 (the lock area part of page 0, never logged). Log
 * positions are LSNs: wl_base + byte offset in the current epoch, so they only grow
 * (a new epoch adds the old epoch's end to wl_base). Reset by the first opener. */
#define PST_WAL_LOCK_OFFSET 1024u
typedef struct pst_wal_lock {
  uint8_t wl_sync_mutex[64]; /*  0 pthread_mutex_t (robust, process-shared): held by the process
                              *    running fdatasync(log) for everyone (the sync leader) */
  uint64_t wl_written;       /* 64 LSN of lk_wal_end (updated with it, under lk_mutex) */
  uint64_t wl_synced;        /* 72 LSN below which the log is durable (only grows) */
  uint64_t wl_base;          /* 80 LSN of byte 0 of the current epoch */
  uint64_t wl_applied;       /* 88 byte offset in the current epoch: records below it are
                              *    in the store file (page cache); under lk_mutex */
  uint32_t wl_fails;         /* 96 log syncs that failed since the lock area was initialised */
  uint32_t wl_sync_seq;      /* 100 futex word: +1 (low 31 bits) after every log sync; bit 31 PST_SYNC_WAITERS */
  uint64_t wl_applied_txid;  /* 104 wr_txid of the last record applied (0 = none) */
  uint32_t wl_records;       /* 112 records published (wraps; +1 under lk_mutex); futex word of
                              *     a sync leader gathering a group */
  uint32_t wl_gather;        /* 116 1 while a sync leader sleeps on wl_records (publishers wake it) */
  uint32_t wl_group;         /* 120 records the latest log sync covered (a hint for the next) */
  uint32_t wl_group_start;   /* 124 wl_records read by the latest sync leader before its sync */
} pst_wal_lock;

/* ---- write-ahead log of durability 'full' (file "<store>-wal") ------------ */

/* Two header slots at byte 0 and byte 512 (one 512-byte sector each, so a torn write
 * damages at most one); the valid slot with the larger wh_epoch is current. Epoch e is
 * written to slot e % 2. Records start at PST_WAL_FIRST_RECORD and follow each other. */
#define PST_WAL_HEADER_MAGIC 0x4448574C41575350ull /* "PSWALWHD" */
#define PST_WAL_RECORD_MAGIC 0x4352574C41575350ull /* "PSWALWRC" */
#define PST_WAL_VERSION 1u
#define PST_WAL_FIRST_RECORD 4096u
typedef struct pst_wal_header {
  uint64_t wh_magic;   /*  0 PST_WAL_HEADER_MAGIC */
  uint32_t wh_version; /*  8 PST_WAL_VERSION */
  uint32_t wh_pad;     /* 12 0 */
  uint64_t wh_epoch;   /* 16 records of other epochs are ignored */
  uint64_t wh_reserved[4]; /* 24 0 */
  uint32_t wh_crc;     /* 56 CRC32C of bytes [0, 56) */
  uint32_t wh_pad2;    /* 60 0 */
} pst_wal_header;

/* A redo record: this header, wr_ranges times (pst_wal_range + wg_len bytes padded to
 * 8), then a u32 CRC32C of every preceding byte of the record and a u32 0. wr_bytes
 * counts all of it (a multiple of 8). Replay writes each range at wg_off in the store. */
typedef struct pst_wal_record {
  uint64_t wr_magic;      /*  0 PST_WAL_RECORD_MAGIC */
  uint64_t wr_epoch;      /*  8 the log's epoch when written */
  uint64_t wr_txid;       /* 16 hd_txid of the committed transaction (increasing in a log) */
  uint64_t wr_page_count; /* 24 hd_page_count after it (the store file is at least this long) */
  uint64_t wr_bytes;      /* 32 total record length */
  uint32_t wr_ranges;     /* 40 number of ranges */
  uint32_t wr_pad;        /* 44 0 */
} pst_wal_record;
typedef struct pst_wal_range {
  uint64_t wg_off; /* byte offset in the store */
  uint64_t wg_len; /* bytes that follow (> 0) */
} pst_wal_range;

/* Invariants (checked by the pager's check()):
 *  H1 hd_magic, hd_format, hd_endian, hd_page_size hold the constants above.
 *  H2 PST_INITIAL_PAGES <= hd_page_count and hd_page_count * 4096 <= file size, and
 *     hd_page_count never ends inside a map chunk (count % PST_MAP_SPAN is 0 or >= 16).
 *  H3 hd_free_pages == number of clear "allocated" bits below hd_page_count.
 *  H4 hd_free_hint <= the first free page (a search may start there).
 *  H5 hd_jr_entries == 0 whenever no process holds lk_mutex (a non-zero count with
 *     the lock free means its holder died: the next locker rolls the journal back). */
typedef struct pst_header {
  uint8_t hd_magic[8];      /*   0 PST_MAGIC_BYTES */
  uint32_t hd_format;       /*   8 PST_FORMAT_VERSION */
  uint32_t hd_endian;       /*  12 PST_ENDIAN_MARK */
  uint32_t hd_page_size;    /*  16 PST_PAGE_SIZE */
  uint32_t hd_flags;        /*  20 reserved, 0 */
  uint64_t hd_page_count;   /*  24 pages managed by the store (the file may be longer) */
  uint64_t hd_txid;         /*  32 number of committed write transactions */
  uint64_t hd_free_pages;   /*  40 free pages below hd_page_count */
  uint64_t hd_free_hint;    /*  48 no free page below this one */
  uint64_t hd_jr_first;     /*  56 first page of journal chunk 0 */
  uint64_t hd_jr_entries;   /*  64 valid journal entries; 0 = nothing to roll back */
  uint64_t hd_created_ms;   /*  72 creation time, ms since the epoch (informative) */
  uint8_t hd_reserved1[48]; /*  80 zero */
  uint64_t hd_slots[PST_SLOT_COUNT]; /* 128 u64 slots for upper layers (slot 0: heap meta page) */
  uint8_t hd_reserved2[64]; /* 192 zero */
  pst_lock hd_lock;         /* 256 */
} pst_header;

/* ---- journal ------------------------------------------------------------ */

/* Each chunk is PST_JOURNAL_CHUNK_PAGES pages: this header, then entries packed one
 * after another. An entry never crosses a chunk; a long range is split. */
typedef struct pst_journal_chunk {
  uint64_t jc_magic; /* PST_JOURNAL_MAGIC */
  uint64_t jc_next;  /* page of the next chunk in the chain, 0 = last */
  uint64_t jc_pages; /* pages in this chunk (PST_JOURNAL_CHUNK_PAGES) */
  uint64_t jc_reserved;
} pst_journal_chunk;

/* An undo record: the bytes [je_off, je_off+je_len) as they were before the
 * transaction first wrote them, followed by je_len bytes of data padded to 8.
 * Rollback applies entries newest first, so the oldest copy of a byte wins. */
typedef struct pst_journal_entry {
  uint64_t je_off;  /* byte offset in the file */
  uint32_t je_len;  /* bytes saved (> 0) */
  uint32_t je_seq;  /* 1-based index of this entry in the transaction (sanity check) */
} pst_journal_entry;

/* ---- heap (@persist/heap) ------------------------------------------------ */

/* Size classes for small blocks; larger blocks are page runs with a pst_large header. */
#define PST_HEAP_CLASS_COUNT 40u
#define PST_HEAP_MAX_SMALL 32768u
#define PST_HEAP_ALIGN 16u
#define PST_HEAP_META_MAGIC 0x5041454854535250ull  /* "PRSTHEAP" */
#define PST_SLAB_MAGIC 0x42414C53u                 /* "SLAB" */
#define PST_LARGE_MAGIC 0x4752414Cu                /* "LARG" */
#define PST_HEAP_ROOT_COUNT 8u

/* The heap meta page (its page number is in hd_slots[0]). */
typedef struct pst_heap_meta {
  uint64_t hp_magic;              /*    0 PST_HEAP_META_MAGIC */
  uint32_t hp_version;            /*    8 1 */
  uint32_t hp_class_count;        /*   12 PST_HEAP_CLASS_COUNT */
  uint64_t hp_roots[PST_HEAP_ROOT_COUNT]; /* 16 user root slots (slot 0: @persist/objects) */
  uint64_t hp_partial[PST_HEAP_CLASS_COUNT]; /* 80 first slab page with a free block, per class */
  uint64_t hp_bytes_live;         /*  400 usable bytes of live LARGE blocks (small: the slabs' sl_live) */
  uint64_t hp_blocks_live;        /*  408 live large blocks */
  uint64_t hp_slab_pages;         /*  416 pages held by slabs */
  uint64_t hp_large_pages;        /*  424 pages held by large blocks */
} pst_heap_meta;

/* A slab: sl_pages contiguous pages holding blocks of one size class. Blocks start at
 * offset PST_SLAB_HEADER from the slab's first page; bit i of sl_bitmap = block i live. */
#define PST_SLAB_HEADER 128u
#define PST_SLAB_MAX_BLOCKS 512u
typedef struct pst_slab {
  uint32_t sl_magic;      /*   0 PST_SLAB_MAGIC (0x424C5344 "DSLB": freed in the open transaction) */
  uint16_t sl_class;      /*   4 size class index */
  uint16_t sl_pages;      /*   6 pages in this slab */
  uint32_t sl_block_size; /*   8 bytes per block */
  uint16_t sl_capacity;   /*  12 blocks in this slab */
  uint16_t sl_live;       /*  14 live blocks */
  uint64_t sl_next;       /*  16 next slab page in the class's partial list (0 = end) */
  uint64_t sl_prev;       /*  24 previous slab page in the partial list (0 = head) */
  uint64_t sl_bitmap[PST_SLAB_MAX_BLOCKS / 64]; /* 32 */
  uint8_t sl_reserved[32]; /* 96 */
} pst_slab;

/* A large block: a page run; the user's block starts PST_LARGE_HEADER bytes in. */
#define PST_LARGE_HEADER 64u
typedef struct pst_large {
  uint32_t lg_magic;     /*  0 PST_LARGE_MAGIC (0x47524C44 "DLRG": freed in the open transaction) */
  uint32_t lg_flags;     /*  4 reserved */
  uint64_t lg_pages;     /*  8 pages in the run */
  uint64_t lg_size;      /* 16 usable bytes (pages*4096 - PST_LARGE_HEADER) */
  uint8_t lg_reserved[40];
} pst_large;

#ifdef __cplusplus
} /* extern "C" */
#define PST_STATIC_ASSERT static_assert
#else
#define PST_STATIC_ASSERT _Static_assert
#endif

/* Layout checks: every offset documented in FORMAT.md. */
PST_STATIC_ASSERT(sizeof(pst_lock) == 136, "pst_lock size");
PST_STATIC_ASSERT(__builtin_offsetof(pst_lock, lk_mutex) == 16, "lk_mutex");
PST_STATIC_ASSERT(__builtin_offsetof(pst_lock, lk_commit_seq) == 80, "lk_commit_seq");
PST_STATIC_ASSERT(__builtin_offsetof(pst_lock, lk_mode) == 88, "lk_mode");
PST_STATIC_ASSERT(__builtin_offsetof(pst_lock, lk_wal_epoch) == 96, "lk_wal_epoch");
PST_STATIC_ASSERT(__builtin_offsetof(pst_lock, lk_wal_end) == 104, "lk_wal_end");
PST_STATIC_ASSERT(sizeof(pst_wal_lock) == 128, "pst_wal_lock size");
PST_STATIC_ASSERT(__builtin_offsetof(pst_wal_lock, wl_written) == 64, "wl_written");
PST_STATIC_ASSERT(__builtin_offsetof(pst_wal_lock, wl_applied) == 88, "wl_applied");
PST_STATIC_ASSERT(__builtin_offsetof(pst_wal_lock, wl_fails) == 96, "wl_fails");
PST_STATIC_ASSERT(__builtin_offsetof(pst_wal_lock, wl_applied_txid) == 104, "wl_applied_txid");
PST_STATIC_ASSERT(__builtin_offsetof(pst_wal_lock, wl_sync_seq) == 100, "wl_sync_seq");
PST_STATIC_ASSERT(__builtin_offsetof(pst_wal_lock, wl_records) == 112, "wl_records");
PST_STATIC_ASSERT(__builtin_offsetof(pst_wal_lock, wl_gather) == 116, "wl_gather");
PST_STATIC_ASSERT(__builtin_offsetof(pst_wal_lock, wl_group) == 120, "wl_group");
PST_STATIC_ASSERT(__builtin_offsetof(pst_wal_lock, wl_group_start) == 124, "wl_group_start");
PST_STATIC_ASSERT(PST_WAL_LOCK_OFFSET >= 256 + sizeof(pst_lock) && PST_WAL_LOCK_OFFSET + sizeof(pst_wal_lock) <= PST_PAGE_SIZE,
                  "the group-commit area lies in the unlogged part of page 0");
PST_STATIC_ASSERT(sizeof(pst_wal_header) == 64, "pst_wal_header size");
PST_STATIC_ASSERT(sizeof(pst_wal_record) == 48, "pst_wal_record size");
PST_STATIC_ASSERT(sizeof(pst_wal_range) == 16, "pst_wal_range size");
PST_STATIC_ASSERT(__builtin_offsetof(pst_header, hd_format) == 8, "hd_format");
PST_STATIC_ASSERT(__builtin_offsetof(pst_header, hd_page_count) == 24, "hd_page_count");
PST_STATIC_ASSERT(__builtin_offsetof(pst_header, hd_txid) == 32, "hd_txid");
PST_STATIC_ASSERT(__builtin_offsetof(pst_header, hd_jr_entries) == 64, "hd_jr_entries");
PST_STATIC_ASSERT(__builtin_offsetof(pst_header, hd_slots) == 128, "hd_slots");
PST_STATIC_ASSERT(__builtin_offsetof(pst_header, hd_lock) == 256, "hd_lock");
PST_STATIC_ASSERT(sizeof(pst_header) == 392, "pst_header size");
PST_STATIC_ASSERT(sizeof(pst_header) <= PST_PAGE_SIZE, "header fits page 0");
PST_STATIC_ASSERT(sizeof(pst_journal_chunk) == 32, "journal chunk header");
PST_STATIC_ASSERT(sizeof(pst_journal_entry) == 16, "journal entry header");
PST_STATIC_ASSERT(PST_MAP_SPAN == 262144u, "a map chunk covers 1 GiB");
PST_STATIC_ASSERT(__builtin_offsetof(pst_heap_meta, hp_roots) == 16, "hp_roots");
PST_STATIC_ASSERT(__builtin_offsetof(pst_heap_meta, hp_partial) == 80, "hp_partial");
PST_STATIC_ASSERT(__builtin_offsetof(pst_heap_meta, hp_bytes_live) == 400, "hp_bytes_live");
PST_STATIC_ASSERT(sizeof(pst_heap_meta) == 432, "pst_heap_meta size");
PST_STATIC_ASSERT(sizeof(pst_slab) == PST_SLAB_HEADER, "slab header is 128 bytes");
PST_STATIC_ASSERT(__builtin_offsetof(pst_slab, sl_bitmap) == 32, "sl_bitmap");
PST_STATIC_ASSERT(sizeof(pst_large) == PST_LARGE_HEADER, "large header is 64 bytes");

#endif /* PERSIST_FORMAT_H */
