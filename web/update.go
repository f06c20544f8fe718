package web

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Update is one event of the view's stream: the whole state (Full), which a browser receives
// when it connects without the state it holds being known, or what changed since the update
// before it (Seq-1): the rows and parts that changed or came, and the rows that went.
type Update struct {
	// Seq counts the updates since the server started.
	Seq int    `json:"seq"`
	At  string `json:"at"`
	// Error says why the fleet could not be read ("" when it could): the page keeps what it
	// shows, and says so.
	Error string `json:"error,omitempty"`
	Full  bool   `json:"full,omitempty"`
	// Fleet and Timeline are the whole of the page's two parts, on a full update: the groups, nodes
	// and failures (HTML), and the roll (SVG).
	Fleet    string `json:"fleet,omitempty"`
	Timeline string `json:"timeline,omitempty"`
	// Rows are the rows that changed or came, by section and name (see Row); Gone the names of
	// those that went.
	Rows map[string]map[string]string `json:"rows,omitempty"`
	Gone map[string][]string          `json:"gone,omitempty"`
	// Parts are the parts that changed, by their element's id (HTML; "" empties one).
	Parts map[string]string `json:"parts,omitempty"`
}

// Diff is what changed from prev to cur (nil prev: all of cur is new), as an update of
// neither Seq nor error.
func Diff(prev, cur *Rendering) Update {
	u := Update{At: cur.At}
	if prev == nil {
		prev = &Rendering{}
	}
	for section, rows := range cur.Rows {
		was := map[string]string{}
		for _, r := range prev.Rows[section] {
			was[r.ID] = r.Key
		}
		for _, r := range rows {
			if key, ok := was[r.ID]; ok && key == r.Key {
				delete(was, r.ID)
				continue
			}
			delete(was, r.ID)
			if u.Rows == nil {
				u.Rows = map[string]map[string]string{}
			}
			if u.Rows[section] == nil {
				u.Rows[section] = map[string]string{}
			}
			u.Rows[section][r.ID] = r.HTML
		}
		for id := range was {
			u.gone(section, id)
		}
	}
	for section, rows := range prev.Rows {
		if _, ok := cur.Rows[section]; !ok {
			for _, r := range rows {
				u.gone(section, r.ID)
			}
		}
	}
	for id, html := range cur.Parts {
		if old, ok := prev.Parts[id]; !ok || old != html {
			if u.Parts == nil {
				u.Parts = map[string]string{}
			}
			u.Parts[id] = html
		}
	}
	return u
}

// gone notes that the row id of section went.
func (u *Update) gone(section, id string) {
	if u.Gone == nil {
		u.Gone = map[string][]string{}
	}
	u.Gone[section] = append(u.Gone[section], id)
}

// Whole is the whole state of r, as a full update of neither Seq nor error (nil r: nothing
// read yet).
func Whole(r *Rendering) Update {
	if r == nil {
		return Update{Full: true}
	}
	return Update{At: r.At, Full: true, Fleet: r.Fleet(), Timeline: r.Timeline()}
}

// event is u as an event of the stream, its id epoch.seq: a browser that reconnects sends the
// id of the last it received (Last-Event-ID), and receives what it missed.
func (u Update) event(epoch string) ([]byte, error) {
	var data bytes.Buffer
	enc := json.NewEncoder(&data)
	// The HTML is the templates' own, escaped already; JSON's escapes of <, > and & would make
	// every tag six bytes longer.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(u); err != nil {
		return nil, fmt.Errorf("encode update %d: %w", u.Seq, err)
	}
	return fmt.Appendf(nil, "id: %s.%d\nevent: update\ndata: %s\n\n", epoch, u.Seq, bytes.TrimRight(data.Bytes(), "\n")), nil
}
