// Package sdtest is systemd's side of sd_notify for tests: a notify socket that hears what a
// service tells systemd.
package sdtest

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Socket is a notify socket, as systemd gives a service in $NOTIFY_SOCKET.
type Socket struct {
	// Path is what NOTIFY_SOCKET holds.
	Path string
	conn *net.UnixConn
}

// Listen opens a notify socket, closed when the test ends. Its path is short (a temporary
// directory of its own, not the test's, whose name may pass the 108 bytes a socket's path
// may have).
func Listen(t testing.TB) *Socket {
	t.Helper()
	dir, err := os.MkdirTemp("", "rebootmgr-sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &Socket{Path: path, conn: conn}
}

// Next is the next message told, waiting at most timeout; the test fails without one.
func (s *Socket) Next(t testing.TB, timeout time.Duration) string {
	t.Helper()
	if err := s.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := s.conn.Read(buf)
	if err != nil {
		t.Fatalf("nothing told to systemd: %v", err)
	}
	return string(buf[:n])
}
