package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// rawRequest sends one prepared HTTP/1.1 request over keep-alive
// connections of its own, one per worker, and checks each answer. It is
// the load of the throughput phases: Go's HTTP client spent about 50 µs of
// CPU per request here, 40% of the two CPUs it shares with the servers it
// measures; writing the request's bytes and reading the answer's is what
// wrk and the like do, and leaves the CPUs to the servers.
//
// It reads answers with a Content-Length only (what authql and uvicorn send
// for these requests) and fails on anything else, so nothing is measured
// that was not read whole.
type rawRequest struct {
	addrs []string // host:port of each instance
	reqs  [][]byte // the request, as sent to each instance
	check func(status int, body []byte) error
	// conns are the workers' connections, by worker: each is used by one
	// goroutine at a time, and the phases that share a worker's follow
	// each other.
	conns [maxWorkers]*rawConn
}

// maxWorkers bounds the workers of a rawRequest (the -c of a phase).
const maxWorkers = 1024

// rawTimeout bounds one request and its answer: a server that stops
// answering fails the phase instead of hanging it.
const rawTimeout = 10 * time.Second

// newRawRequest prepares method path with header and body for each of
// bases (URLs of http:// servers).
func newRawRequest(bases []string, method, path string, header http.Header, body string, check func(int, []byte) error) *rawRequest {
	r := &rawRequest{check: check}
	for _, base := range bases {
		u, err := url.Parse(base)
		if err != nil || u.Scheme != "http" {
			panic(fmt.Sprintf("loadbench: not an http:// URL: %q", base))
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, u.Host)
		header.Write(&b)
		if body != "" {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
		}
		b.WriteString("\r\n")
		b.WriteString(body)
		r.addrs, r.reqs = append(r.addrs, u.Host), append(r.reqs, b.Bytes())
	}
	return r
}

// do sends the request as worker, to instance worker % instances, on the
// worker's connection, opened on first use and again after an error.
func (r *rawRequest) do(worker int) error {
	if worker >= maxWorkers {
		return fmt.Errorf("worker %d: at most %d", worker, maxWorkers)
	}
	i := worker % len(r.addrs)
	c, reused := r.conns[worker], true
	if c == nil {
		conn, err := net.DialTimeout("tcp", r.addrs[i], rawTimeout)
		if err != nil {
			return err
		}
		c, reused = &rawConn{conn: conn, r: bufio.NewReaderSize(conn, 16<<10)}, false
		r.conns[worker] = c
	}
	status, body, keep, err := c.roundTrip(r.reqs[i])
	if err != nil || !keep {
		c.conn.Close()
		r.conns[worker] = nil
	}
	if errors.Is(err, errNoAnswer) && reused {
		// The server closed the idle connection (uvicorn does after 5s,
		// while the other phases run): once more, on a new one.
		return r.do(worker)
	}
	if err == nil {
		err = r.check(status, body)
	}
	return err
}

// close closes the connections, once no phase drives r.
func (r *rawRequest) close() {
	for w, c := range r.conns {
		if c != nil {
			c.conn.Close()
			r.conns[w] = nil
		}
	}
}

// rawConn is one keep-alive connection.
type rawConn struct {
	conn net.Conn
	r    *bufio.Reader
	body []byte // the last answer's body, reused
}

var (
	errUnframed = errors.New("an answer without Content-Length")
	// errNoAnswer: the connection failed before a byte of the answer.
	errNoAnswer = errors.New("no answer")
)

// roundTrip writes req and reads the answer's status and body, and whether
// the connection stays open. The body is valid until the next roundTrip.
func (c *rawConn) roundTrip(req []byte) (status int, body []byte, keep bool, err error) {
	c.conn.SetDeadline(time.Now().Add(rawTimeout))
	if _, err := c.conn.Write(req); err != nil {
		return 0, nil, false, fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && !errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w: %w", errNoAnswer, err)
		}
		return 0, nil, false, err
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	length, closing := -1, false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, nil, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, nil, false, errUnframed
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	if length < 0 {
		return 0, nil, false, errUnframed
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	c.body = c.body[:length]
	if _, err := io.ReadFull(c.r, c.body); err != nil {
		return 0, nil, false, err
	}
	return status, c.body, !closing, nil
}
