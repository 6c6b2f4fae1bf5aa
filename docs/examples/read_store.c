/*
 * read_store.c — read a persist store from C, following the protocol of FORMAT.md
 * ("Interop: reading a store from another language").
 *
 *   cc -std=c11 -Wall -Wextra -Werror -I packages/pager/include \
 *      docs/examples/read_store.c -o read_store -lpthread
 *   ./read_store site.persist
 *
 * Prints one "name=value" line per header field it reads, e.g.
 *   format=1
 *   page_count=33
 *   txid=12
 *   free_pages=0
 *   heap_meta_page=33
 *   objects_meta=139280
 *
 * What it does, step by step (numbers as in FORMAT.md):
 *   1. open O_RDWR (the lock lives in the file, so even a reader writes the mutex word);
 *   2. take the open lock: an OFD lock on byte 0 — exclusive if nobody else has the
 *      store open (then this program is the "first opener": it re-initialises the
 *      robust mutex and rolls back a leftover journal), else shared; keep it while open;
 *   3. validate the header (magic, endian mark, format, page size, page count);
 *   4. map hd_page_count * 4096 bytes MAP_SHARED;
 *   5. for a consistent read: lock hd_lock.lk_mutex (robust, process-shared); on
 *      EOWNERDEAD roll the dead holder's journal back, then pthread_mutex_consistent;
 *      if hd_jr_entries != 0 with the lock held, roll back as well (invariant H5);
 *      re-map if hd_page_count grew; read; unlock.
 * Exit status: 0 ok, 1 not a store / damaged, 2 usage or I/O error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "persist_format.h"

#define JR_CHUNK_BYTES ((uint64_t)PST_JOURNAL_CHUNK_PAGES * PST_PAGE_SIZE)
#define JR_ENTRIES_OFF ((uint64_t)__builtin_offsetof(pst_header, hd_jr_entries))

static int fail(int code, const char* what, const char* path) {
  fprintf(stderr, "read_store: %s: %s\n", path, what);
  return code;
}

static uint64_t pad8(uint64_t n) { return (n + 7u) & ~(uint64_t)7u; }

/* A journal chunk at `page` is usable if it lies inside the mapping and has the magic. */
static int chunk_ok(const uint8_t* base, uint64_t mapped, uint64_t page) {
  if (page == 0 || (page + PST_JOURNAL_CHUNK_PAGES) * PST_PAGE_SIZE > mapped) return 0;
  const pst_journal_chunk* c = (const pst_journal_chunk*)(base + page * PST_PAGE_SIZE);
  return c->jc_magic == PST_JOURNAL_MAGIC;
}

/*
 * Rolls back the first hd_jr_entries journal entries, newest first (FORMAT.md
 * "Journal"): after undoing entry i, store hd_jr_entries = i - 1, so a crash during
 * the rollback leaves a shorter valid journal. hd_jr_entries itself is never
 * restored from an entry. Returns 0, or -1 if the journal is damaged.
 */
static int rollback(uint8_t* base, uint64_t mapped) {
  pst_header* h = (pst_header*)base;
  uint64_t n = __atomic_load_n(&h->hd_jr_entries, __ATOMIC_ACQUIRE);
  if (n == 0) return 0;
  uint64_t* pos = malloc(n * sizeof *pos); /* byte offset of each entry header */
  if (!pos) return -1;
  uint64_t c = h->hd_jr_first, off = sizeof(pst_journal_chunk), hops = 0;
  if (!chunk_ok(base, mapped, c)) goto bad;
  for (uint64_t i = 1; i <= n; ++i) {
    const pst_journal_entry* e = NULL;
    if (off + sizeof *e <= JR_CHUNK_BYTES) e = (const pst_journal_entry*)(base + c * PST_PAGE_SIZE + off);
    if (e != NULL && e->je_len == 0 && e->je_off == PST_JOURNAL_END) { n = i - 1; break; } /* damaged count */
    if (e == NULL || e->je_len == 0) { /* terminator or no room: continue at jc_next */
      c = ((const pst_journal_chunk*)(base + c * PST_PAGE_SIZE))->jc_next;
      if (++hops > mapped / JR_CHUNK_BYTES + 1 || !chunk_ok(base, mapped, c)) goto bad;
      off = sizeof(pst_journal_chunk);
      e = (const pst_journal_entry*)(base + c * PST_PAGE_SIZE + off);
      if (e->je_len == 0 && e->je_off == PST_JOURNAL_END) { n = i - 1; break; }
    }
    if (e->je_seq != (uint32_t)i || e->je_len == 0 || off + sizeof *e + e->je_len > JR_CHUNK_BYTES) goto bad;
    if (e->je_off + e->je_len < e->je_off || e->je_off + e->je_len > mapped) goto bad;
    pos[i - 1] = c * PST_PAGE_SIZE + off;
    off += sizeof *e + pad8(e->je_len);
  }
  for (uint64_t i = n; i > 0; --i) {
    const pst_journal_entry* e = (const pst_journal_entry*)(base + pos[i - 1]);
    const uint8_t* data = (const uint8_t*)(e + 1);
    for (uint64_t k = 0; k < e->je_len; ++k) {
      uint64_t at = e->je_off + k;
      if (at >= JR_ENTRIES_OFF && at < JR_ENTRIES_OFF + 8) continue; /* never restore hd_jr_entries */
      base[at] = data[k];
    }
    __atomic_store_n(&h->hd_jr_entries, i - 1, __ATOMIC_RELEASE);
  }
  free(pos);
  return 0;
bad:
  free(pos);
  return -1;
}

static void init_mutex(pst_header* h) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
  memset(h->hd_lock.lk_mutex, 0, sizeof h->hd_lock.lk_mutex);
  pthread_mutex_init((pthread_mutex_t*)h->hd_lock.lk_mutex, &a);
  /* lock format 3: the group-commit area of durability 'full' (page 0, offset 1024) */
  pst_wal_lock* g = (pst_wal_lock*)((uint8_t*)h + PST_WAL_LOCK_OFFSET);
  memset(g, 0, sizeof *g);
  pthread_mutex_init((pthread_mutex_t*)g->wl_sync_mutex, &a);
  g->wl_written = g->wl_synced = g->wl_applied = PST_WAL_FIRST_RECORD;
  pthread_mutexattr_destroy(&a);
  h->hd_lock.lk_format = PST_LOCK_FORMAT;
  h->hd_lock.lk_owner_pid = 0;
  h->hd_lock.lk_watchers = 0;
}

static int header_ok(const pst_header* h, uint64_t file_bytes) {
  return memcmp(h->hd_magic, PST_MAGIC_BYTES, 8) == 0 && h->hd_endian == PST_ENDIAN_MARK &&
         h->hd_format >= 1 && h->hd_format <= PST_FORMAT_VERSION && h->hd_page_size == PST_PAGE_SIZE &&
         h->hd_page_count >= PST_INITIAL_PAGES && h->hd_page_count * PST_PAGE_SIZE <= file_bytes;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: read_store FILE\n");
    return 2;
  }
  const char* path = argv[1];
  int fd = open(path, O_RDWR | O_CLOEXEC); /* step 1 */
  if (fd < 0) return fail(2, strerror(errno), path);
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(2, strerror(errno), path);
  pst_header hd;
  if ((uint64_t)st.st_size < PST_INITIAL_PAGES * PST_PAGE_SIZE || pread(fd, &hd, sizeof hd, 0) != (ssize_t)sizeof hd ||
      !header_ok(&hd, (uint64_t)st.st_size))
    return fail(1, "not a persist store of a format this program reads", path); /* step 3 */

  /* step 2: the open lock. F_OFD_SETLK locks belong to this open file description. */
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  int first = fcntl(fd, F_OFD_SETLK, &fl) == 0;

  /* Durability 'full' (FORMAT.md "Durability 'full'"): this example does not replay the
   * redo log, so as the only opener it refuses a store that has one. */
  char wal[4096];
  snprintf(wal, sizeof wal, "%s-wal", path);
  if (first && access(wal, F_OK) == 0)
    return fail(2, "has a -wal redo log this example cannot replay; open the store once with persist first", path);

  /* step 4 */
  uint64_t mapped = hd.hd_page_count * PST_PAGE_SIZE;
  uint8_t* base = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return fail(2, strerror(errno), path);
  pst_header* h = (pst_header*)base;

  if (first) {
    /* Nobody else has the store open: the lock area may be stale (reboot, crash). */
    init_mutex(h);
    if (rollback(base, mapped) != 0) return fail(1, "the journal is damaged", path);
    fl.l_type = F_RDLCK;
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) return fail(2, strerror(errno), path);
  } else {
    fl.l_type = F_RDLCK;
    while (fcntl(fd, F_OFD_SETLKW, &fl) != 0)
      if (errno != EINTR) return fail(2, strerror(errno), path);
    if (h->hd_lock.lk_format != PST_LOCK_FORMAT)
      return fail(2, "the store is open in a program using another lock format", path);
  }

  /* step 5: one read transaction under the store lock (10 s timeout). */
  pthread_mutex_t* mx = (pthread_mutex_t*)h->hd_lock.lk_mutex;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  int e = pthread_mutex_timedlock(mx, &until);
  if (e == ETIMEDOUT) return fail(2, "timed out waiting for the store lock", path);
  if (e != 0 && e != EOWNERDEAD) return fail(2, strerror(e), path);
  /* The store may have grown since we mapped it: extend the mapping first. */
  if (h->hd_page_count * PST_PAGE_SIZE > mapped) {
    uint64_t want = h->hd_page_count * PST_PAGE_SIZE;
    uint8_t* nb = mremap(base, mapped, want, MREMAP_MAYMOVE);
    if (nb == MAP_FAILED) return fail(2, strerror(errno), path);
    base = nb;
    mapped = want;
    h = (pst_header*)base;
    mx = (pthread_mutex_t*)h->hd_lock.lk_mutex;
  }
  if (h->hd_lock.lk_wal_flags & PST_WAL_REPLAY_NEEDED) {
    /* a 'full' commit is durable in the log but not yet in the store: leave it to persist */
    if (e == EOWNERDEAD) pthread_mutex_consistent(mx);
    pthread_mutex_unlock(mx);
    return fail(2, "the redo log must be replayed first; open the store once with persist", path);
  }
  if (e == EOWNERDEAD || __atomic_load_n(&h->hd_jr_entries, __ATOMIC_ACQUIRE) != 0) {
    /* A holder died mid-transaction: undo it before reading anything. */
    if (rollback(base, mapped) != 0) return fail(1, "the journal is damaged", path);
    if (e == EOWNERDEAD) pthread_mutex_consistent(mx);
  }
  h->hd_lock.lk_owner_pid = (uint64_t)getpid();

  printf("format=%" PRIu32 "\n", h->hd_format);
  printf("page_count=%" PRIu64 "\n", h->hd_page_count);
  printf("txid=%" PRIu64 "\n", h->hd_txid);
  printf("free_pages=%" PRIu64 "\n", h->hd_free_pages);
  uint64_t heap_page = h->hd_slots[0];
  printf("heap_meta_page=%" PRIu64 "\n", heap_page);
  if (heap_page != 0 && (heap_page + 1) * PST_PAGE_SIZE <= mapped) {
    const pst_heap_meta* hm = (const pst_heap_meta*)(base + heap_page * PST_PAGE_SIZE);
    if (hm->hp_magic == PST_HEAP_META_MAGIC) {
      printf("heap_large_bytes_live=%" PRIu64 "\n", hm->hp_bytes_live); /* live LARGE blocks only */
      printf("objects_meta=%" PRIu64 "\n", hm->hp_roots[0]);
    }
  }

  h->hd_lock.lk_owner_pid = 0;
  pthread_mutex_unlock(mx);
  munmap(base, mapped);
  close(fd); /* releases the OFD lock */
  return 0;
}
