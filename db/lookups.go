package db

import (
	"context"
	"encoding/json"
	"errors"

	"authql/auth"
)

// sessionLookups coalesces concurrent SessionWithUser calls, which every
// authenticated request makes, into one query: under load one read
// transaction (most of the cost of a point read in WAL mode) serves many
// requests, and when the server is idle a lookup runs at once, alone. Every
// request still reads its session and user from the database.
type sessionLookups struct {
	queue chan *sessionLookup
	stop  chan struct{} // closed by DB.Close
}

type sessionLookup struct {
	id   string
	done chan struct{}
	sess *auth.Session
	user *auth.User
	err  error
}

// maxLookupBatch bounds the ids of one query.
const maxLookupBatch = 64

// lookupWorkers run the coalesced queries; two keep one query in flight
// while the next batch gathers.
const lookupWorkers = 2

func (db *DB) startLookups() {
	db.lookups = &sessionLookups{queue: make(chan *sessionLookup), stop: make(chan struct{})}
	for range lookupWorkers {
		go db.lookupWorker()
	}
}

// lookupWorker takes a lookup, gathers those already waiting, and runs them
// as one query, until the database closes.
func (db *DB) lookupWorker() {
	for {
		var batch []*sessionLookup
		select {
		case l := <-db.lookups.queue:
			batch = append(batch, l)
		case <-db.lookups.stop:
			return
		}
	gather:
		for len(batch) < maxLookupBatch {
			select {
			case l := <-db.lookups.queue:
				batch = append(batch, l)
			default:
				break gather
			}
		}
		db.runLookups(batch)
	}
}

// errClosed answers a lookup on a closed database.
var errClosed = errors.New("the database is closed")

// runLookups reads the sessions of batch in one query and answers each.
func (db *DB) runLookups(batch []*sessionLookup) {
	ids := make([]string, len(batch))
	for i, l := range batch {
		ids[i] = l.id
	}
	found := map[string]*sessionLookup{}
	idList, _ := json.Marshal(ids)
	rows, err := db.query(context.Background(), `
		SELECT `+sessionColumns+`, `+userColumns+`
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id IN (SELECT value FROM json_each(?))`, string(idList))
	if err == nil {
		for rows.Next() {
			s, u, scanErr := scanSessionUser(rows)
			if scanErr != nil {
				err = scanErr
				break
			}
			found[s.ID] = &sessionLookup{sess: s, user: u}
		}
		err = errors.Join(err, rows.Err(), rows.Close())
	}
	for _, l := range batch {
		switch r, ok := found[l.id]; {
		case err != nil:
			l.err = dbError(err)
		case ok:
			l.sess, l.user = r.sess, r.user
		default:
			l.err = auth.ErrNotFound
		}
		close(l.done)
	}
}

// SessionWithUser returns session id and its user, or auth.ErrNotFound. It
// runs on every authenticated request, coalesced with those running at the
// same time.
func (db *DB) SessionWithUser(ctx context.Context, id string) (*auth.Session, *auth.User, error) {
	l := &sessionLookup{id: id, done: make(chan struct{})}
	select {
	case db.lookups.queue <- l:
	case <-db.lookups.stop:
		return nil, nil, errClosed
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	select {
	case <-l.done:
		return l.sess, l.user, l.err
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}
