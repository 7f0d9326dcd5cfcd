//go:build !unix

package sqlite

import (
	"errors"
	"os"
)

var errNoMmap = errors.New("the wal-index is read only on Unix")

// mapWALIndex is not available here: every SessionWithUser reads the
// database.
func mapWALIndex(string) (*os.File, []byte, uint64, uint64, error) {
	return nil, nil, 0, 0, errNoMmap
}

func fileID(string) (uint64, uint64, error) { return 0, 0, errNoMmap }
