package systemd

import (
	"net"
	"path/filepath"
	"testing"
)

func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := Notifier{Socket: path}
	if err := n.Ready("waiting:\n lock held by n7"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	k, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf[:k]), "READY=1\nSTATUS=waiting: lock held by n7"; got != want {
		t.Fatalf("sent %q, want %q", got, want)
	}
	if err := (Notifier{}).Ready("x"); err != nil {
		t.Fatalf("without a socket: %v", err)
	}
}
