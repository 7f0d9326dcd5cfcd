package sqlite

import (
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"authql/auth"
)

// sessionCache keeps the answers of SessionWithUser, the read behind every
// authenticated request, each stamped with the wal-index header that was
// current before the read that produced it began. An answer is served only
// while the header is still that stamp: no transaction has committed since,
// in this process or another (the CLI), so the answer is what the read
// would return now. Any commit changes the header and turns every answer
// stale at once; the next request for a session reads it again. Any doubt
// about the header (see readWALStamp), or a -shm file that is no longer
// the one mapped, means a read.
type sessionCache struct {
	index *walIndexFile
	mem   []byte // index.mem
	shm   string // its path
	// off is set when the database closes, or once the -shm file at shm
	// is found to be another file than the one mapped: from then on every
	// request reads.
	off atomic.Bool
	// checked is when (Unix ns) the file's identity was last checked.
	checked atomic.Int64

	mu      sync.RWMutex
	entries map[string]*cachedSession
	bytes   int

	hits, misses atomic.Int64
	// beforeRead and afterRead, when set (tests), run between reading the
	// stamp and reading the row, and between reading the row and keeping
	// it.
	beforeRead, afterRead func()
	// readStamp reads the header; tests replace it to simulate doubt.
	readStamp func(mem []byte) (walStamp, bool)
}

type cachedSession struct {
	stamp   walStamp
	session auth.Session
	user    auth.User
}

// maxSessionCacheBytes bounds the cache. Only requests with a valid access
// token reach it, one entry per session.
const maxSessionCacheBytes = 8 << 20

// replacedCheckInterval is how often the -shm file's identity is checked:
// a file replaced under a running server (a restore done without stopping
// it) stops the cache within this long.
const replacedCheckInterval = 100 * time.Millisecond

// newSessionCache maps the wal-index of the database file at path (as
// SQLite names it, symbolic links resolved: its -shm is beside that), or
// returns nil when it cannot (then every request reads).
func newSessionCache(path string) *sessionCache {
	shm := path + "-shm"
	index, err := openWALIndex(shm)
	if err != nil || index.mem == nil {
		return nil
	}
	return &sessionCache{index: index, mem: index.mem, shm: shm,
		entries: map[string]*cachedSession{}, readStamp: readWALStamp}
}

// stamp returns the current header, or false when it cannot be trusted.
func (c *sessionCache) stamp() (walStamp, bool) {
	if c == nil || c.off.Load() {
		return walStamp{}, false
	}
	if now, last := time.Now().UnixNano(), c.checked.Load(); now-last > int64(replacedCheckInterval) && c.checked.CompareAndSwap(last, now) {
		if dev, ino, err := fileID(c.shm); err != nil || dev != c.index.dev || ino != c.index.ino {
			c.off.Store(true)
			return walStamp{}, false
		}
	}
	return c.readStamp(c.mem)
}

// get returns copies of the answer for session id if it was read at stamp.
// The copies share their scope lists with the cache: callers read them and
// never write them (clipped, an append makes a new list).
func (c *sessionCache) get(id string, stamp walStamp) (*auth.Session, *auth.User, bool) {
	c.mu.RLock()
	e := c.entries[id]
	c.mu.RUnlock()
	if e == nil || e.stamp != stamp {
		c.misses.Add(1)
		return nil, nil, false
	}
	c.hits.Add(1)
	s, u := e.session, e.user
	s.Scopes, u.Scopes = slices.Clip(s.Scopes), slices.Clip(u.Scopes)
	return &s, &u, true
}

// put keeps the answer for session id, read after stamp was current, if
// stamp still is (an answer already stale would only push out fresh ones).
// It keeps its own copies of the lists, apart from those of the caller.
func (c *sessionCache) put(id string, stamp walStamp, s *auth.Session, u *auth.User) {
	if current, ok := c.stamp(); !ok || current != stamp {
		return
	}
	e := &cachedSession{stamp: stamp, session: *s, user: *u}
	e.session.Scopes, e.user.Scopes = slices.Clone(s.Scopes), slices.Clone(u.Scopes)
	if s.RevokedAt != nil {
		revoked := *s.RevokedAt
		e.session.RevokedAt = &revoked
	}
	size := entryBytes(e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[id]; old != nil {
		c.bytes -= entryBytes(old)
		delete(c.entries, id)
	}
	if c.bytes+size > maxSessionCacheBytes {
		// Every entry older than this stamp is stale anyway; past the
		// bound with fresh ones, start over.
		for k, old := range c.entries {
			if old.stamp != stamp {
				c.bytes -= entryBytes(old)
				delete(c.entries, k)
			}
		}
		if c.bytes+size > maxSessionCacheBytes {
			clear(c.entries)
			c.bytes = 0
		}
	}
	c.entries[id] = e
	c.bytes += size
}

// entryBytes estimates what an entry holds: the map slot, the entry, and
// the strings it points to.
func entryBytes(e *cachedSession) int {
	n := 512 + 2*len(e.session.ID) + len(e.session.UserID) + len(e.session.ClientID) + len(e.session.UserAgent)
	n += len(e.user.ID) + len(e.user.Username) + len(e.user.Email) + len(e.user.FullName)
	for _, s := range e.session.Scopes {
		n += 16 + len(s)
	}
	for _, s := range e.user.Scopes {
		n += 16 + len(s)
	}
	return n
}

// stop turns the cache off: every request reads. The wal-index stays
// mapped (see walIndexFile).
func (c *sessionCache) stop() {
	if c != nil {
		c.off.Store(true)
	}
}

// walIndexFile is a -shm file opened, and mapped, in this process, shared
// by every DB open on its database. Neither is ever undone: closing any
// descriptor of a file drops every POSIX lock the process holds on it,
// SQLite's lock on the -shm included, even while a connection of another
// DB (or a transaction the closing DB's pool has not finished) still
// relies on it; without that lock another process (the CLI) takes itself
// for the only user and rebuilds the wal-index under this one. And a
// request still reading the header as the DB closes must not fault. It
// costs a descriptor and a page per database file a process opens.
type walIndexFile struct {
	f        *os.File
	mem      []byte // nil when the file could not be mapped
	dev, ino uint64
}

// walIndexes are the -shm files mapped in this process, by device and
// inode.
var walIndexes = struct {
	sync.Mutex
	files map[[2]uint64]*walIndexFile
}{files: map[[2]uint64]*walIndexFile{}}

// openWALIndex returns the -shm file at path, mapped if it could be,
// sharing it with the DBs of this process that have it already.
func openWALIndex(path string) (*walIndexFile, error) {
	dev, ino, err := fileID(path)
	if err != nil {
		return nil, err
	}
	walIndexes.Lock()
	defer walIndexes.Unlock()
	if w := walIndexes.files[[2]uint64{dev, ino}]; w != nil {
		return w, nil
	}
	f, mem, dev, ino, err := mapWALIndex(path)
	if f == nil {
		return nil, err
	}
	w := &walIndexFile{f: f, mem: mem, dev: dev, ino: ino}
	walIndexes.files[[2]uint64{dev, ino}] = w
	return w, nil
}

// SessionCacheStats returns how many SessionWithUser calls the session
// cache answered and how many read the database while it was on; both stay
// 0 when the wal-index cannot be read.
func (d *DB) SessionCacheStats() (hits, misses int64) {
	if d.cache == nil {
		return 0, 0
	}
	return d.cache.hits.Load(), d.cache.misses.Load()
}
