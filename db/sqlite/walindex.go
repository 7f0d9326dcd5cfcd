package sqlite

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// A WAL-mode SQLite database keeps, at the start of its -shm file, the
// wal-index header that every connection of every process on the host
// reads before it reads the database, and that the writer rewrites at
// every commit. Its layout is SQLite's file format, documented in "WAL-mode
// File Format" (sqlite.org/walformat.html, section 2.2, "The WAL-Index
// Header") and in struct WalIndexHdr of src/wal.c; it has not changed since
// SQLite 3.7.0 (2010), whose version number is in every header
// (WALINDEX_MAX_VERSION 3007000), and it is tested against the SQLite that
// go-sqlite3 in go.mod embeds (3.54.1):
//
//	offset  size  field
//	     0     4  iVersion     3007000
//	     4     4  unused
//	     8     4  iChange      incremented by every commit
//	    12     1  isInit       1 once the header is written
//	    13     1  bigEndCksum
//	    14     2  szPage
//	    16     4  mxFrame      the last valid frame of the WAL
//	    20     4  nPage        the database's size in pages
//	    24     8  aFrameCksum  checksum of the last frame
//	    32     8  aSalt        salts of the WAL header, new at each restart
//	    40     8  aCksum       checksum of bytes 0..39
//
// in the host's byte order, twice: bytes 0..47 and 48..95. The writer
// (walIndexWriteHdr) writes the second copy, then a memory barrier, then
// the first; a reader (walIndexTryHdr) reads the first, then the second,
// and trusts them only when they are equal and the checksum holds.
const (
	walHeaderWords   = 12 // one copy: 48 bytes
	walIndexVersion  = 3007000
	walHeaderMapSize = 4096 // one page; the -shm file is at least 32 KiB
)

// walStamp is one copy of the wal-index header. Every commit, in any
// process, changes it (iChange, mxFrame, the frame checksum); reads and
// checkpoints do not change iChange, and a WAL restart changes the salts
// with it. A recovery (walIndexRecover, after a process died while writing
// the header) rebuilds the header from the WAL: from an empty WAL it
// writes the same header every time, with iChange 0, whatever committed
// before. So a header with iChange 0 is never trusted; with any other,
// while the stamp is the same, no transaction has committed since.
type walStamp [walHeaderWords]uint32

// readWALStamp reads the header from mem, the mapped start of a -shm file,
// as SQLite's readers do: the first copy, then the second, each word with
// an atomic load (the writer's barrier orders its stores). It reports
// false on any doubt: copies that differ (a commit in the middle of
// writing them), a header not yet written, another version, a wrong
// checksum, or iChange 0 (see walStamp).
func readWALStamp(mem []byte) (walStamp, bool) {
	if len(mem) < 2*walHeaderWords*4 {
		return walStamp{}, false
	}
	var h [2]walStamp
	for c := range h {
		for w := range walHeaderWords {
			h[c][w] = atomic.LoadUint32((*uint32)(unsafe.Pointer(&mem[(c*walHeaderWords+w)*4])))
		}
	}
	if h[0] != h[1] || h[0][0] != walIndexVersion || h[0][2] == 0 {
		return walStamp{}, false
	}
	var word3 [4]byte
	binary.NativeEndian.PutUint32(word3[:], h[0][3])
	if word3[0] != 1 { // isInit
		return walStamp{}, false
	}
	// walChecksumBytes in native byte order over the first 40 bytes.
	var s1, s2 uint32
	for w := 0; w < 10; w += 2 {
		s1 += h[0][w] + s2
		s2 += h[0][w+1] + s1
	}
	if s1 != h[0][10] || s2 != h[0][11] {
		return walStamp{}, false
	}
	return h[0], true
}
