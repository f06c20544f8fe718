// Package web serves a read-only live view of the fleet: every group with its limit, holders
// and stop flag, every node with its phase, its daemon and the gate that holds it back with its
// evidence, each group's queue with the estimated start of each waiting node, the last failures
// and the roll as a timeline (SVG). It reads what status reads (see fleet.Snapshot), again
// whenever a blocking query says it may have changed, and pushes to the browsers by server-sent
// events what changed: the rows of nodes, groups and the timeline that changed, and the parts
// (see Update). A browser that connects receives the whole state once. It writes nothing.
package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// Server is the live view.
type Server struct {
	// Read reads the fleet now.
	Read func(ctx context.Context) (fleet.Snapshot, error)
	// Watch calls changed whenever what Read reads may have changed, until ctx ends.
	Watch  func(ctx context.Context, changed func()) error
	Logger *slog.Logger

	mu sync.Mutex
	// epoch names this server's run in the events' ids: an id of another run means nothing.
	epoch string
	// seq is the last update's, shown the last rendering, failed why the last read failed ("" when it did
	// not), at when the page's state was last read or tried.
	seq    int
	shown  *Rendering
	failed string
	at     string
	// recent are the last updates, as events, oldest first: a browser that missed fewer
	// receives them, one that missed more the whole state.
	recent []sent
	// whole is the whole state at seq as an event, once a browser asked for it.
	whole *sent
	subs  map[chan struct{}]struct{}
}

// sent is an update as an event of the stream.
type sent struct {
	seq   int
	event []byte
}

// The updates kept for browsers that missed some: at most this many, of at most this many
// bytes in all.
const (
	keepUpdates = 64
	keepBytes   = 4 << 20
)

// Run reads and renders the fleet, then again at every change, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	changes := make(chan struct{}, 1)
	watched := make(chan error, 1)
	go func() {
		watched <- s.Watch(ctx, func() {
			select {
			case changes <- struct{}{}:
			default: // a read is due already: it reads this change too
			}
		})
	}()
	for {
		s.refresh(ctx)
		select {
		case <-ctx.Done():
			return nil
		case err := <-watched:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watching the fleet: %w", err)
		case <-changes:
		}
	}
}

// refresh reads the fleet, renders it and hands what changed to every browser.
func (s *Server) refresh(ctx context.Context) {
	snap, err := s.Read(ctx)
	if ctx.Err() != nil {
		return
	}
	var r *Rendering
	if err == nil {
		s.mu.Lock()
		prev := s.shown
		s.mu.Unlock()
		r, err = Render(snap, prev)
	}
	if err != nil {
		s.Logger.Warn("cannot read the fleet: the page keeps the last view", logkey.Err, err)
	}
	s.publish(r, err)
}

// publish makes r the rendering shown (nil: the fleet could not be read, for err), and hands
// the update to every browser.
func (s *Server) publish(r *Rendering, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	var u Update
	if r != nil {
		u = Diff(s.shown, r)
		s.shown, s.failed, s.at = r, "", r.At
	} else {
		s.failed = err.Error()
		if s.at == "" {
			s.at = time.Now().UTC().Format(time.RFC3339)
		}
		u = Update{At: s.at}
	}
	u.Seq, u.Error = s.seq, s.failed
	s.whole = nil
	ev, encErr := u.event(s.epochLocked())
	if encErr != nil {
		// A browser that misses it receives the whole state: the recent ones stop here.
		s.Logger.Warn("update not sent", logkey.Err, encErr)
		s.recent = nil
	} else {
		s.keep(sent{seq: u.Seq, event: ev})
	}
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default: // woken already: it reads this update too
		}
	}
}

// keep adds e to the recent updates, dropping the oldest beyond the bounds.
func (s *Server) keep(e sent) {
	s.recent = append(s.recent, e)
	total := 0
	for i := len(s.recent) - 1; i >= 0; i-- {
		total += len(s.recent[i].event)
		if total > keepBytes || len(s.recent)-i > keepUpdates {
			s.recent = s.recent[i+1:]
			return
		}
	}
}

// epochLocked is the server's epoch, chosen at first use (s.mu held).
func (s *Server) epochLocked() string {
	if s.epoch == "" {
		s.epoch = strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return s.epoch
}

// subscribe is a channel that is woken at every update, until done.
func (s *Server) subscribe() (wake chan struct{}, done func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs == nil {
		s.subs = map[chan struct{}]struct{}{}
	}
	s.subs[ch] = struct{}{}
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, ch)
	}
}

// Handler serves the page (/) and its events (/events). Only GET and HEAD are answered.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /events", s.events)
	return readOnly(mux)
}

// readOnly refuses every method but GET and HEAD, and tells browsers to frame nothing and run
// only the page's own script.
func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "this view is read-only: GET or HEAD", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}
