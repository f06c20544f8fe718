// Package systemd speaks the sd_notify protocol: readiness and a one-line status for
// `systemctl status`, sent as datagrams to $NOTIFY_SOCKET.
package systemd

import (
	"fmt"
	"net"
	"strings"

	"github.com/rebootmgr/rebootmgr/clip"
)

// Notifier sends to the socket systemd gave the service; with no socket it does nothing.
type Notifier struct {
	// Socket is $NOTIFY_SOCKET ("" outside systemd; "@..." for an abstract socket).
	Socket string
}

// Notify sends state lines such as "READY=1" or "STATUS=waiting: lock held by n7".
func (n Notifier) Notify(state ...string) error {
	if n.Socket == "" {
		return nil
	}
	addr := &net.UnixAddr{Name: n.Socket, Net: "unixgram"}
	if strings.HasPrefix(n.Socket, "@") {
		addr.Name = "\x00" + n.Socket[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(state, "\n"))); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Ready tells systemd the service is up.
func (n Notifier) Ready(status string) error {
	return n.Notify("READY=1", "STATUS="+clip.OneLine(status))
}

// Status sets the one-line status.
func (n Notifier) Status(status string) error {
	return n.Notify("STATUS=" + clip.OneLine(status))
}

// Stopping tells systemd the service is shutting down.
func (n Notifier) Stopping() error {
	return n.Notify("STOPPING=1")
}
