package web

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/logkey"
)

// pageState is what the page is rendered from: the state shown, and the update it is at.
type pageState struct {
	Epoch    string
	Seq      int
	At       string
	Error    string
	Fleet    template.HTML
	Timeline template.HTML
}

// The timeline's geometry and bounds, for the page's script (see layout there).
func (pageState) Left() int      { return tlLeft }
func (pageState) Width() int     { return tlWidth }
func (pageState) RowH() int      { return tlRowH }
func (pageState) Top() int       { return tlTop }
func (pageState) MinSpan() int64 { return minSpan.Milliseconds() }
func (pageState) MaxSpan() int64 { return maxSpan.Milliseconds() }

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	p := pageState{Epoch: s.epochLocked(), Seq: s.seq, At: s.at, Error: s.failed}
	shown := s.shown
	s.mu.Unlock()
	if shown != nil {
		// Rendered by the templates of rows and the timeline, which escape; a rendering is
		// never changed once shown.
		p.Fleet, p.Timeline = template.HTML(shown.Fleet()), template.HTML(shown.Timeline()) //nolint:gosec // see above
	} else if p.Error == "" {
		p.Error = "reading the fleet"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTemplate.Execute(w, p); err != nil {
		s.Logger.Debug("page not written", logkey.Err, err)
	}
}

// heartbeat keeps an idle event stream open through proxies.
const heartbeat = 15 * time.Second

// events streams the updates: first what the browser misses (the updates after the one it
// holds, named by Last-Event-ID when it reconnects, else by ?after= from the page; the whole
// state when it holds none, or one too old), then each update as it comes.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	wake, done := s.subscribe()
	defer done()
	holds := s.holds(r)
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		events, at := s.since(holds)
		for _, ev := range events {
			if _, err := w.Write(ev); err != nil {
				return
			}
		}
		holds = at
		flusher.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-wake:
		}
	}
}

// holds is the update the browser of r holds, by the id of the last event it received (epoch.seq;
// 0: none, or one of another run of the server).
func (s *Server) holds(r *http.Request) int {
	id := r.Header.Get("Last-Event-ID")
	if id == "" {
		id = r.URL.Query().Get("after")
	}
	epoch, seq, ok := strings.Cut(id, ".")
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := strconv.Atoi(seq)
	if !ok || err != nil || epoch != s.epochLocked() || n < 0 || n > s.seq {
		return 0
	}
	return n
}

// since are the events a browser that holds update seq misses (the updates after it, or the
// whole state), and the update it then holds.
func (s *Server) since(seq int) ([][]byte, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.seq == 0 || seq == s.seq:
		return nil, seq
	case seq > 0 && len(s.recent) > 0 && s.recent[0].seq <= seq+1:
		var out [][]byte
		for _, e := range s.recent {
			if e.seq > seq {
				out = append(out, e.event)
			}
		}
		return out, s.seq
	}
	if s.whole == nil {
		u := Whole(s.shown)
		u.Seq, u.At, u.Error = s.seq, s.at, s.failed
		ev, err := u.event(s.epochLocked())
		if err != nil {
			s.Logger.Warn("the whole state not sent", logkey.Err, err)
			return nil, seq
		}
		s.whole = &sent{seq: s.seq, event: ev}
	}
	return [][]byte{s.whole.event}, s.seq
}
