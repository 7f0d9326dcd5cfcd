//go:build unix

package sqlite

import (
	"fmt"
	"os"
	"syscall"
)

// mapWALIndex maps the start of the -shm file at path read-only, and
// returns the open file, the mapping, and the file's device and inode (to
// notice the file being replaced). Once opened, the file is returned even
// when mapping it fails, and must never be closed: closing any descriptor
// of a file drops every POSIX lock the process holds on it, SQLite's
// included, and without its lock on the -shm another process would take
// itself for the only user and rebuild the wal-index under this one.
func mapWALIndex(path string) (f *os.File, mem []byte, dev, ino uint64, err error) {
	f, err = os.Open(path)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return f, nil, 0, 0, err
	}
	// Reading a mapped page past the end of the file faults: map only a
	// file that SQLite has grown to its first 32 KiB region.
	if st.Size < walHeaderMapSize {
		return f, nil, uint64(st.Dev), uint64(st.Ino), fmt.Errorf("%s holds %d bytes, not a wal-index yet", path, st.Size)
	}
	mem, err = syscall.Mmap(int(f.Fd()), 0, walHeaderMapSize, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return f, nil, uint64(st.Dev), uint64(st.Ino), err
	}
	return f, mem, uint64(st.Dev), uint64(st.Ino), nil
}

// fileID returns the device and inode of the file at path.
func fileID(path string) (dev, ino uint64, err error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Dev), uint64(st.Ino), nil
}
